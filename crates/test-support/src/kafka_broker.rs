//! A Tansu broker in its own process, storing everything in memory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};

use crate::error::{Error, Result};
use crate::process::{free_port, wait_for_port, ChildGuard};
use crate::tansu_install::tansu_binary;

/// How long a start or restart may take before it is given up.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a start is retried with a new port when another process took the chosen one.
const START_ATTEMPTS: u32 = 3;
/// Tansu variables that would otherwise leak in from the environment of the test.
const SCRUBBED_ENV: &[&str] = &[
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// A single-broker Kafka-compatible cluster: Tansu with the `memory://` storage engine, running
/// as a separate process on a free port of 127.0.0.1.
///
/// The API is synchronous and needs no async runtime; from a tokio test it can be called
/// directly (it blocks for the few milliseconds a start takes) or through `spawn_blocking`.
///
/// Dropping it (also while a test panics) kills the broker and reaps it. Storage is in memory, so
/// [`KafkaBroker::restart`] and [`KafkaBroker::stop`] lose every topic and record; an outage that
/// keeps data is simulated with [`KafkaBroker::pause`] and [`KafkaBroker::resume`].
///
/// Known Tansu behaviour to design tests around (see the crate README): high watermarks of the
/// memory engine are wrong, so count records by consuming them; a JoinGroup takes about half the
/// session timeout, so consumer groups in tests should use `session.timeout.ms` of about 6000.
#[derive(Debug)]
pub struct KafkaBroker {
    child: Option<ChildGuard>,
    paused: bool,
    port: u16,
    cluster_id: String,
    /// `host:port` the broker tells clients to connect to; `None`: its own address.
    advertised: Option<String>,
    binary: PathBuf,
    log: PathBuf,
    // Holds the log file; removed when the broker is dropped.
    _dir: tempfile::TempDir,
}

impl KafkaBroker {
    /// Installs Tansu if needed (see [`crate::tansu_binary`]), starts a broker on a free port and
    /// returns once it answers a metadata request.
    pub fn start() -> Result<KafkaBroker> {
        KafkaBroker::start_with(None, |_| {})
    }

    /// Like [`KafkaBroker::start`], but the broker advertises `advertised` (`host:port`) in its
    /// metadata, so clients connect there after bootstrapping: a proxy in front of it, for
    /// instance. `on_port` gets the broker's port before the broker is started and asked for
    /// metadata, so such a proxy learns where to forward before any client is sent to it.
    pub fn start_advertising(advertised: &str, on_port: impl Fn(u16)) -> Result<KafkaBroker> {
        KafkaBroker::start_with(Some(advertised.to_owned()), on_port)
    }

    fn start_with(advertised: Option<String>, on_port: impl Fn(u16)) -> Result<KafkaBroker> {
        let binary = tansu_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("mmm-tansu-")
            .tempdir()
            .map_err(|source| Error::io("creating a temp dir for a broker", source))?;
        let log = dir.path().join("tansu.log");
        let mut broker = KafkaBroker {
            child: None,
            paused: false,
            port: 0,
            cluster_id: crate::random_name("cluster"),
            advertised,
            binary,
            log,
            _dir: dir,
        };
        let mut attempt = 1;
        loop {
            broker.port = free_port()?;
            on_port(broker.port);
            match broker.launch() {
                Ok(()) => return Ok(broker),
                // Another process may have bound the port between our probe and Tansu's bind.
                Err(err) if attempt < START_ATTEMPTS => {
                    tracing::warn!(attempt, port = broker.port, %err, "broker did not start; retrying on another port");
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's port on 127.0.0.1 (it stays the same across [`KafkaBroker::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster id the broker was started with.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The process id of the running broker, `None` after [`KafkaBroker::stop`].
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(ChildGuard::pid)
    }

    /// The broker's stdout and stderr (all starts append to the same file).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Whether the broker process runs (a paused broker counts as running).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.ensure_running().is_ok(),
            None => false,
        }
    }

    /// Whether the broker is stopped with [`KafkaBroker::pause`].
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Kills the broker (SIGKILL) and reaps it. Its data is gone; clients see connection refused.
    pub fn stop(&mut self) -> Result<()> {
        self.paused = false;
        match self.child.take() {
            Some(mut child) => child.kill(),
            None => Ok(()),
        }
    }

    /// Freezes the broker with SIGSTOP: connections stay open but nothing is answered, like a hung
    /// or partitioned broker. Its data survives, unlike with [`KafkaBroker::restart`].
    pub fn pause(&mut self) -> Result<()> {
        let child = self.running_child("pause")?;
        child.signal(libc::SIGSTOP)?;
        self.paused = true;
        Ok(())
    }

    /// Lets a paused broker go on (SIGCONT), with all its data.
    pub fn resume(&mut self) -> Result<()> {
        let child = self.running_child("resume")?;
        child.signal(libc::SIGCONT)?;
        self.paused = false;
        Ok(())
    }

    /// Kills the broker and starts a new one on the same port and cluster id, returning once it
    /// answers. The in-memory storage starts empty: topics must be created again. Fails if
    /// another process took the port meanwhile.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.launch()
    }

    fn running_child(&mut self, action: &str) -> Result<&mut ChildGuard> {
        match self.child.as_mut() {
            Some(child) => Ok(child),
            None => Err(Error::InvalidArgument(format!(
                "cannot {action} the broker on port {}: it is stopped",
                self.port
            ))),
        }
    }

    fn launch(&mut self) -> Result<()> {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = match &self.advertised {
            Some(addr) => format!("tcp://{addr}"),
            None => url.clone(),
        };
        let mut command = Command::new(&self.binary);
        command
            .arg("broker")
            .args([
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .args(["--cluster-id", &self.cluster_id]);
        for var in SCRUBBED_ENV {
            command.env_remove(var);
        }
        let log_level = std::env::var("MMM_TANSU_LOG").unwrap_or_else(|_| "warn".into());
        command.env("RUST_LOG", log_level);
        let name = format!("tansu broker on port {}", self.port);
        let mut child = ChildGuard::spawn_logged(name, command, &self.log)?;
        let deadline = Instant::now() + READY_TIMEOUT;
        wait_for_port(&mut child, self.port, READY_TIMEOUT)?;
        wait_for_metadata(&mut child, &self.bootstrap(), deadline, &self.log)?;
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }
}

/// Waits until the broker answers a metadata request that lists itself.
fn wait_for_metadata(
    child: &mut ChildGuard,
    bootstrap: &str,
    deadline: Instant,
    log: &Path,
) -> Result<()> {
    let client: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()
        .map_err(|source| Error::kafka(format!("creating a client for {bootstrap}"), source))?;
    let started = Instant::now();
    loop {
        child.ensure_running()?;
        match client
            .client()
            .fetch_metadata(None, Duration::from_millis(500))
        {
            Ok(metadata) if !metadata.brokers().is_empty() => return Ok(()),
            Ok(_) => tracing::debug!(bootstrap, "metadata lists no broker yet"),
            Err(err) => tracing::debug!(bootstrap, %err, "metadata not answered yet"),
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!("the broker at {bootstrap} to answer a metadata request"),
                waited: started.elapsed(),
                log: Some(log.to_path_buf()),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
