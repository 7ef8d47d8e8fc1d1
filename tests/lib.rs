//! Shared helpers of the end-to-end tests: the whole system on loopback.
//!
//! [`System::start`] runs two real brokers (source and target), `mesos-sim`
//! with agents, and `mmm-scheduler` serving a `dist/` that holds the freshly
//! built `mmm-executor`; [`System::cli`] runs `mmm-cli` against it. Every
//! process is killed when the `System` is dropped, also when a test panics.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use mmm_test_support::{bin_path, wait_for_listening_port, ChildGuard, KafkaBroker};
use serde_json::Value;

/// The consumer group's session timeout: the test brokers take about half of
/// it to complete a JoinGroup, so a short one keeps rebalances quick.
pub const SESSION_TIMEOUT_MS: u32 = 6000;

/// A running system: brokers, a Mesos stand-in and the scheduler.
pub struct System {
    pub source: KafkaBroker,
    pub target: KafkaBroker,
    pub mesos: ChildGuard,
    pub master_url: String,
    pub scheduler: Option<ChildGuard>,
    pub api_url: String,
    pub dir: tempfile::TempDir,
    pub topics: Vec<String>,
    pub group: String,
}

impl System {
    /// Starts everything with `agents` simulated agents, mirroring `topics`.
    pub fn start(agents: u32, topics: &[String]) -> Result<System> {
        System::start_with(agents, topics, "")
    }

    /// Like [`System::start`], with `extra` appended to the scheduler's TOML
    /// configuration (e.g. a `[scheduler]` section with shorter timeouts).
    pub fn start_with(agents: u32, topics: &[String], extra: &str) -> Result<System> {
        System::start_custom(agents, topics, &[], "", extra)
    }

    /// Like [`System::start_with`], with `sim_args` for mesos-sim (each may
    /// name `{dir}`, the test directory) and `mesos_keys` added to the
    /// scheduler's `[mesos]` section.
    pub fn start_custom(
        agents: u32,
        topics: &[String],
        sim_args: &[&str],
        mesos_keys: &str,
        extra: &str,
    ) -> Result<System> {
        System::start_full(agents, topics, sim_args, mesos_keys, "", extra)
    }

    /// Like [`System::start`], with `mirror_keys` added to the `[mirror]` section.
    pub fn start_mirroring(agents: u32, topics: &[String], mirror_keys: &str) -> Result<System> {
        System::start_full(agents, topics, &[], "", mirror_keys, "")
    }

    fn start_full(
        agents: u32,
        topics: &[String],
        sim_args: &[&str],
        mesos_keys: &str,
        mirror_keys: &str,
        extra: &str,
    ) -> Result<System> {
        let dir = tempfile::tempdir().context("creating the test directory")?;
        let source = KafkaBroker::start().context("starting the source broker")?;
        let target = KafkaBroker::start().context("starting the target broker")?;
        let sim_args: Vec<String> = sim_args
            .iter()
            .map(|a| a.replace("{dir}", &dir.path().display().to_string()))
            .collect();
        let (mesos, master_url) = start_mesos_sim(dir.path(), agents, &sim_args)?;
        let dist = dir.path().join("dist");
        fs::create_dir_all(&dist).context("creating dist/")?;
        fs::copy(bin_path("mmm-executor")?, dist.join("mmm-executor"))
            .context("copying mmm-executor into dist/")?;
        let group = mmm_test_support::random_name("e2e-group");
        let mut system = System {
            source,
            target,
            mesos,
            master_url,
            scheduler: None,
            api_url: String::new(),
            dir,
            topics: topics.to_vec(),
            group,
        };
        let mesos_keys = mesos_keys.replace("{dir}", &system.dir.path().display().to_string());
        system.write_config(&format!("{mesos_keys}\n"), mirror_keys, extra)?;
        system.start_scheduler()?;
        Ok(system)
    }

    fn write_config(&self, mesos_keys: &str, mirror_keys: &str, extra: &str) -> Result<()> {
        let d = self.dir.path();
        fs::create_dir_all(self.state_dir()).context("creating the state directory")?;
        let topics = self
            .topics
            .iter()
            .map(|t| format!("{t:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        fs::write(
            d.join("mmm.toml"),
            format!(
                "[mesos]\nmaster = \"{master}\"\nframework_name = \"mmm-e2e\"\nfailover_timeout_secs = 3600\n{mesos_keys}\n\
                 [api]\nbind = \"127.0.0.1:0\"\n\n\
                 [mirror]\ntopics = [{topics}]\noffset_commit_interval_ms = 1000\n{mirror_keys}\n\n\
                 [storage]\npath = \"{state}\"\n\n\
                 [executor]\ndist_dir = \"{dist}\"\n{extra}",
                master = self.master_url,
                state = self.state_path().display(),
                dist = d.join("dist").display(),
            ),
        )?;
        fs::write(
            d.join("consumer.properties"),
            format!(
                "bootstrap.servers={}\ngroup.id={}\nenable.auto.commit=false\n\
                 auto.offset.reset=earliest\nsession.timeout.ms={SESSION_TIMEOUT_MS}\n",
                self.source.bootstrap(),
                self.group
            ),
        )?;
        fs::write(
            d.join("producer.properties"),
            format!(
                "bootstrap.servers={}\nacks=all\nlinger.ms=5\n",
                self.target.bootstrap()
            ),
        )?;
        Ok(())
    }

    /// Starts (or restarts) the scheduler on the same configuration and state.
    ///
    /// The API binds port 0, so each start gets a port no other process
    /// holds; [`System::api_url`] follows it.
    pub fn start_scheduler(&mut self) -> Result<()> {
        let d = self.dir.path();
        let cmd = self.scheduler_command(&d.join("mmm.toml"))?;
        let n = fs::read_dir(d).map(|r| r.count()).unwrap_or(0);
        let mut guard =
            ChildGuard::spawn_logged("mmm-scheduler", cmd, &d.join(format!("scheduler-{n}.log")))
                .context("starting mmm-scheduler")?;
        let port = wait_for_listening_port(&mut guard, Duration::from_secs(60))
            .context("waiting for the scheduler's REST API")?;
        self.scheduler = Some(guard);
        self.api_url = format!("http://127.0.0.1:{port}");
        wait_until("the scheduler's /ping", Duration::from_secs(30), || {
            Ok(http_call(&self.api_url, "GET", "/ping", "")? == "pong")
        })
    }

    /// The directory holding the scheduler's state file (and its lock), and nothing else.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The scheduler's state file.
    pub fn state_path(&self) -> PathBuf {
        self.state_dir().join("mmm-state.json")
    }

    /// The scheduler's command line on this system's configuration, with the
    /// configuration file `config` (so a test can run a second scheduler).
    pub fn scheduler_command(&self, config: &Path) -> Result<Command> {
        let d = self.dir.path();
        let mut cmd = Command::new(bin_path("mmm-scheduler")?);
        cmd.arg(config)
            .arg("-c")
            .arg(d.join("consumer.properties"))
            .arg("-p")
            .arg(d.join("producer.properties"))
            .env("RUST_LOG", "info");
        Ok(cmd)
    }

    /// `GET <master_url><path>` on mesos-sim's control API, parsed as JSON.
    pub fn sim_get(&self, path: &str) -> Result<Value> {
        let body = http_call(&self.master_url, "GET", path, "")?;
        serde_json::from_str(&body).with_context(|| format!("parsing GET {path}: {body}"))
    }

    /// `POST <master_url><path>` with a JSON `body` on mesos-sim's control API.
    pub fn sim_post(&self, path: &str, body: &str) -> Result<String> {
        http_call(&self.master_url, "POST", path, body)
    }

    /// Kills the scheduler with SIGKILL, as a crash would.
    pub fn kill_scheduler(&mut self) -> Result<()> {
        if let Some(mut s) = self.scheduler.take() {
            s.signal(libc::SIGKILL)?;
            s.wait_timeout(Duration::from_secs(10))?;
        }
        Ok(())
    }

    /// Runs `mmm-cli --api <api>/api args...`.
    pub fn cli(&self, args: &[&str]) -> Result<Output> {
        Command::new(bin_path("mmm-cli")?)
            .arg("--api")
            .arg(format!("{}/api", self.api_url))
            .args(args)
            .output()
            .context("running mmm-cli")
    }

    /// `mmm-cli status --json`, parsed.
    pub fn status(&self) -> Result<Value> {
        let out = self.cli(&["status", "--json"])?;
        if !out.status.success() {
            bail!(
                "mmm-cli status failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        serde_json::from_slice(&out.stdout).context("parsing mmm-cli status --json")
    }

    /// The servers of the status, as (id, state) pairs.
    pub fn servers(&self) -> Result<Vec<(u64, String)>> {
        let status = self.status()?;
        let servers = status
            .pointer("/value/servers")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("status has no value.servers: {status}"))?;
        Ok(servers
            .iter()
            .map(|s| {
                (
                    s["id"].as_u64().unwrap_or(u64::MAX),
                    s["state"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect())
    }

    /// Waits until every server is in `state` and there are `count` of them.
    pub fn wait_for_servers(&self, count: usize, state: &str, timeout: Duration) -> Result<()> {
        wait_until(&format!("{count} servers {state}"), timeout, || {
            let servers = self.servers()?;
            Ok(servers.len() == count && servers.iter().all(|(_, s)| s == state))
        })
    }

    /// The pids of the `mmm-executor` processes running in this system's sandboxes.
    pub fn executor_pids(&self) -> Vec<u32> {
        executor_pids_under(self.dir.path())
    }
}

impl Drop for System {
    fn drop(&mut self) {
        // The scheduler first, then mesos-sim (which kills its executors);
        // then any executor that escaped, so nothing outlives the test.
        self.scheduler.take();
        let _ = self.mesos.signal(libc::SIGTERM);
        let _ = self.mesos.wait_timeout(Duration::from_secs(10));
        let _ = self.mesos.kill();
        for pid in executor_pids_under(self.dir.path()) {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
    }
}

fn start_mesos_sim(dir: &Path, agents: u32, extra: &[String]) -> Result<(ChildGuard, String)> {
    let mut cmd = Command::new(bin_path("mesos-sim")?);
    cmd.args([
        "--agents",
        &agents.to_string(),
        "--heartbeat-secs",
        "2",
        "--work-dir",
    ])
    .arg(dir.join("mesos"))
    .args(extra);
    let log = dir.join("mesos-sim.log");
    let guard = ChildGuard::spawn_logged("mesos-sim", cmd, &log).context("starting mesos-sim")?;
    let url = wait_for_master_url(&log)?;
    Ok((guard, url))
}

/// Waits until `mesos-sim`, whose output goes to `log`, has printed its
/// master URL, and returns it.
pub fn wait_for_master_url(log: &Path) -> Result<String> {
    let mut url = None;
    wait_until(
        "mesos-sim to print its master URL",
        Duration::from_secs(30),
        || {
            let text = fs::read_to_string(log).unwrap_or_default();
            url = text
                .split_whitespace()
                .find(|w| w.starts_with("http://") || w.starts_with("https://"))
                .map(|u| u.trim_end_matches('/').to_owned());
            Ok(url.is_some())
        },
    )?;
    url.ok_or_else(|| anyhow!("mesos-sim printed no master URL"))
}

/// What a target topic holds compared with `batches` batches of generated
/// records (see `mmm_test_support::produce_generated`).
#[derive(Debug)]
pub struct BatchVerdict {
    /// Records read.
    pub read: usize,
    /// Copies of (partition, sequence) pairs that were not read.
    pub missing: usize,
    /// The first pair found missing.
    pub first_missing: Option<(i32, u64)>,
    /// Records that are not generated ones, or sit in another partition.
    pub foreign: usize,
    /// Records read beyond the total produced.
    pub duplicates: usize,
}

impl BatchVerdict {
    /// Nothing missing and nothing foreign (duplicates are allowed).
    pub fn complete(&self) -> bool {
        self.missing == 0 && self.foreign == 0
    }

    /// One line for a failure message or a log.
    pub fn summary(&self) -> String {
        format!(
            "{} read, {} missing (first: {:?}), {} foreign, {} duplicates",
            self.read, self.missing, self.first_missing, self.foreign, self.duplicates
        )
    }
}

/// `batches` batches of `per_batch` generated records over `partitions`
/// partitions, each batch's sequences starting at 0: every (partition,
/// sequence) must be read at least `batches` times; anything above the total
/// is a duplicate.
pub fn verify_batches(
    records: &[mmm_test_support::ConsumedRecord],
    partitions: i32,
    batches: usize,
    per_batch: usize,
) -> BatchVerdict {
    let mut seen: std::collections::HashMap<(i32, u64), usize> = std::collections::HashMap::new();
    let mut foreign = 0usize;
    for r in records {
        match r
            .value
            .as_deref()
            .and_then(mmm_test_support::decode_generated)
        {
            Some(key) if key.0 == r.partition => *seen.entry(key).or_default() += 1,
            _ => foreign += 1,
        }
    }
    let partitions = usize::try_from(partitions).unwrap_or(1).max(1);
    let mut missing = 0usize;
    let mut first_missing = None;
    for p in 0..partitions {
        let in_partition = per_batch / partitions + usize::from(p < per_batch % partitions);
        let partition = i32::try_from(p).unwrap_or(0);
        for seq in 0..in_partition as u64 {
            let copies = seen.get(&(partition, seq)).copied().unwrap_or(0);
            if copies < batches {
                missing += batches - copies;
                first_missing.get_or_insert((partition, seq));
            }
        }
    }
    BatchVerdict {
        read: records.len(),
        missing,
        first_missing,
        foreign,
        duplicates: records.len().saturating_sub(batches * per_batch + foreign),
    }
}

/// The pids of `mmm-executor` processes whose working directory is under `dir`.
pub fn executor_pids_under(dir: &Path) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let dir: PathBuf = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let cwd = fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
            comm.trim() == "mmm-executor" && cwd.starts_with(&dir)
        })
        .collect()
}

/// One plain HTTP/1.1 request to `base` (`http://127.0.0.1:port`); returns
/// the body of a 2xx answer, an error naming the status otherwise.
fn http_call(base: &str, method: &str, path: &str, body: &str) -> Result<String> {
    use std::io::{Read, Write};
    let host = base
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("not an http:// URL: {base}"))?
        .trim_end_matches('/');
    let mut stream =
        std::net::TcpStream::connect(host).with_context(|| format!("connecting to {host}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .with_context(|| format!("reading the answer to {method} {path}"))?;
    let (head, rest) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("{method} {path}: no HTTP head in {answer:?}"))?;
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    if !status.starts_with('2') {
        bail!("{method} {path} answered {status}: {rest}");
    }
    Ok(rest.to_owned())
}

/// The environment variable that replays a fault test's random timing.
pub const SEED_ENV: &str = "MMM_TEST_SEED";

/// A random generator for the timing of a fault test: seeded from
/// `MMM_TEST_SEED` when set, else at random. The seed is printed, so a
/// failure can be replayed with the same timing.
pub fn seeded_rng(test: &str) -> rand::rngs::StdRng {
    use rand::SeedableRng;
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(rand::random);
    eprintln!("{test}: random seed {seed} (replay with {SEED_ENV}={seed})");
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// Polls `ready` until it holds, failing with `what` after `timeout`.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut ready: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match ready() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() > deadline {
            return Err(match last_err {
                Some(e) => e.context(format!("timed out after {timeout:?} waiting for {what}")),
                None => anyhow!("timed out after {timeout:?} waiting for {what}"),
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
