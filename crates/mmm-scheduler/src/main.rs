//! `mmm-scheduler [--config] <mmm.toml> --consumer-config <f> --producer-config <f>`

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::Parser;
use mmm_core::model::Cluster;
use mmm_core::scheduler::{checked_executor_command, Scheduler, Settings};
use mmm_scheduler::access::{self, Access, TokenFile};
use mmm_scheduler::api::{self, ApiState};
use mmm_scheduler::dist::Dist;
use mmm_scheduler::driver::{self, CommandSender, Driver};
use mmm_scheduler::framework;
use mmm_scheduler::mesos::calls::run_sender;
use mmm_scheduler::mesos::connection::{self, ConnectionConfig, SubscriptionState};
use mmm_scheduler::mesos::http::MesosHttp;
use mmm_scheduler::mesos::master::MasterSource;
use mmm_scheduler::metrics::Metrics;
use mmm_scheduler::secret_file;
use mmm_scheduler::serve;
use mmm_scheduler::startup;
use mmm_scheduler::store::Store;
use mmm_scheduler::web;
use tokio::sync::{mpsc, watch};

/// The executor binary's name in dist/ and in the sandbox.
const EXECUTOR_FILE: &str = "mmm-executor";
/// How long a master that cannot be reached at all may stay so at start
/// before the scheduler gives up (override: MMM_MASTER_CONNECT_TIMEOUT_SECS).
const DEFAULT_MASTER_CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts the mmm scheduler: a Mesos framework that keeps Kafka mirroring tasks running.
#[derive(Debug, Parser)]
#[command(name = "mmm-scheduler", version, about)]
struct Args {
    /// The scheduler configuration: mmm.toml, or the original mmm.properties.
    #[arg(value_name = "CONFIG", required_unless_present = "config")]
    config_file: Option<PathBuf>,
    /// The scheduler configuration (same as the positional argument).
    #[arg(long = "config", value_name = "CONFIG", conflicts_with = "config_file")]
    config: Option<PathBuf>,
    /// The Kafka consumer properties (source cluster).
    #[arg(short = 'c', long = "consumer-config", value_name = "FILE")]
    consumer_config: PathBuf,
    /// The Kafka producer properties (target cluster).
    #[arg(short = 'p', long = "producer-config", value_name = "FILE")]
    producer_config: PathBuf,
    /// Also write the log to this file.
    #[arg(long = "log-file", value_name = "FILE")]
    log_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let _guard = match init_logging(args.log_file.as_deref()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("mmm-scheduler: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mmm-scheduler: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, for scripts and operators.
            eprintln!("mmm-scheduler: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each cause once (our error
/// messages already include their source's text).
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out.replace('\n', " ")
}

fn init_logging(
    file: Option<&Path>,
) -> anyhow::Result<Option<tracing_appender::non_blocking::WorkerGuard>> {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{fmt, EnvFilter};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr = fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match file {
        None => {
            tracing_subscriber::registry()
                .with(filter)
                .with(stderr)
                .init();
            Ok(None)
        }
        Some(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open log file {}", path.display()))?;
            let (writer, guard) = tracing_appender::non_blocking(f);
            tracing_subscriber::registry()
                .with(filter)
                .with(stderr)
                .with(fmt::layer().with_ansi(false).with_writer(writer))
                .init();
            Ok(Some(guard))
        }
    }
}

fn master_connect_timeout() -> anyhow::Result<Duration> {
    match std::env::var("MMM_MASTER_CONNECT_TIMEOUT_SECS") {
        Err(_) => Ok(DEFAULT_MASTER_CONNECT_TIMEOUT),
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| {
                anyhow!("MMM_MASTER_CONNECT_TIMEOUT_SECS={v:?} is not a number of seconds")
            }),
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config_path = args
        .config
        .or(args.config_file)
        .ok_or_else(|| anyhow!("no configuration file given"))?;
    let inputs = startup::load_inputs(&config_path, &args.consumer_config, &args.producer_config)?;
    let config = inputs.config;
    let source = MasterSource::from_spec(&config.mesos.master, config.mesos.master_tls)?;
    let give_up = master_connect_timeout()?;

    let dist = Arc::new(Dist::open(&config.executor.dist_dir)?);
    if !dist.has(EXECUTOR_FILE) {
        tracing::warn!(dir = %config.executor.dist_dir.display(), "no {EXECUTOR_FILE} to serve: tasks will fail to fetch their executor");
    }
    let credentials = match (&config.mesos.principal, &config.mesos.secret_file) {
        (Some(p), Some(f)) => Some((p.clone(), secret_file::read(f, "Mesos secret file")?)),
        (None, Some(f)) => bail!(
            "[mesos].secret_file {} is set without a principal",
            f.display()
        ),
        _ => None,
    };
    let token = match &config.api.token_file {
        Some(f) => Some(TokenFile::open(f)?),
        None => None,
    };
    let insecure = config.api.check_exposure().map_err(|e| anyhow!(e))?;
    if insecure {
        tracing::warn!(bind = %config.api.bind, "[api] insecure = true: the API is reachable from other hosts without a token; anyone who reaches it can read and change the mirroring tasks");
    }

    let zk_auth = match &config.zk_auth_file {
        Some(f) => Some(
            secret_file::read(f, "ZooKeeper auth file")?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    // A locked state file is refused at once, before the port is taken.
    let file_store = match &config.storage {
        mmm_core::config::StorageSpec::File(_) => {
            Some(Store::open_spec(&config.storage, zk_auth.as_deref()).await?)
        }
        _ => None,
    };
    // Bound before the ZooKeeper lock, so that a standby can answer while it waits.
    let std_listener = std::net::TcpListener::bind(&config.api.bind)
        .with_context(|| format!("cannot listen on [api].bind {}", config.api.bind))?;
    std_listener.set_nonblocking(true)?;
    let bound = std_listener.local_addr()?;
    let tls = match &config.api.tls {
        Some(files) => Some(serve::Tls::from_pem_files(&files.cert, &files.key)?),
        None => None,
    };
    let mut advertised = framework::advertised_url(config.api.advertised_url.as_deref(), bound);
    if tls.is_some() {
        if let Some(rest) = advertised.strip_prefix("http://") {
            advertised = format!("https://{rest}");
        }
    }
    let (leader_tx, leader_rx) = watch::channel(None);
    let (standby_stop, standby_stopped) = tokio::sync::oneshot::channel::<()>();
    // A standby answers over TLS too when the API is configured for it: a
    // client that trusts only https must get the leader's address from it.
    let standby_listener = tokio::net::TcpListener::from_std(std_listener.try_clone()?)?;
    let standby_router = mmm_scheduler::standby::router(leader_rx);
    let standby_stopped = async {
        let _ = standby_stopped.await;
    };
    let standby_limits = serve::Limits::default();
    let standby_server = match &tls {
        Some(tls) => tokio::spawn(serve::serve_until(
            standby_listener,
            standby_router,
            standby_limits,
            tls.clone(),
            standby_stopped,
        )),
        None => tokio::spawn(serve::serve_until(
            standby_listener,
            standby_router,
            standby_limits,
            serve::Plain,
            standby_stopped,
        )),
    };
    let mut store = match file_store {
        Some(store) => store,
        None => {
            Store::open_spec_or_stand_by(
                &config.storage,
                zk_auth.as_deref(),
                &advertised,
                &leader_tx,
            )
            .await?
        }
    };
    if leader_tx.borrow().is_some() {
        tracing::info!("the previous leader is gone: taking over");
    }
    let _ = standby_stop.send(());
    let _ = standby_server.await;
    let lock_lost = store.lock_lost();
    let cluster = match store.load().await? {
        None => {
            tracing::info!(state = %store.location(), "no stored state: fresh start");
            Cluster::new()
        }
        Some(bytes) => {
            let text = String::from_utf8(bytes)
                .map_err(|_| anyhow!("state {} is corrupt: not UTF-8 text", store.location()))?;
            Cluster::from_json(&text)
                .map_err(|e| anyhow!("state {} is corrupt: {e}", store.location()))?
        }
    };
    tracing::info!(servers = cluster.servers.len(), framework_id = ?cluster.framework_id, state = %store.location(), "state loaded");

    let listener = tokio::net::TcpListener::from_std(std_listener)?;
    tracing::info!(api = %advertised, "REST API listening on {bound}");

    let executor_uris = dist
        .files(EXECUTOR_FILE)
        .into_iter()
        .map(|f| format!("{advertised}/dist/{f}"))
        .collect();
    let mut settings =
        Settings::from_config(&config, inputs.consumer, inputs.producer, executor_uris);
    if let Some(sha256) = dist.sha256(EXECUTOR_FILE) {
        settings.executor_command = checked_executor_command(EXECUTOR_FILE, sha256)
            .ok_or_else(|| anyhow!("cannot build the executor's launch command"))?;
    }
    let framework_id = cluster.framework_id.clone();
    let scheduler = Scheduler::new(settings, cluster, rand::random());

    let http = MesosHttp::with_ca_file(credentials, config.mesos.ca_file.as_deref())
        .context("cannot build the HTTP client")?
        .with_masters(match &source {
            MasterSource::Direct(masters) => masters,
            MasterSource::ZooKeeper { .. } => &[],
        });
    let user = framework::task_user(config.mesos.user.as_deref());
    let info = framework::framework_info(&config.mesos, user, &advertised);

    let metrics = Arc::new(Metrics::default());
    let (view_tx, view_rx) = watch::channel(Arc::new(Cluster::new()));
    let (sub_tx, sub_rx) = watch::channel(SubscriptionState::Connecting);
    let (input_tx, input_rx) = mpsc::channel(1024);
    let (mesos_tx, mesos_rx) = mpsc::channel(1024);
    let (calls_tx, calls_rx) = mpsc::unbounded_channel();
    let session = Arc::new(RwLock::new(None));

    let driver = Driver::new(scheduler, store, calls_tx, view_tx, metrics.clone());
    let driver_task = tokio::spawn(driver.run(input_rx));
    tokio::spawn(run_sender(http.clone(), session.clone(), calls_rx));
    tokio::spawn(driver::forward_mesos(mesos_rx, input_tx.clone()));
    tokio::spawn(driver::run_ticks(input_tx.clone(), Duration::from_secs(1)));
    let mut connection_task = tokio::spawn(connection::run(
        ConnectionConfig {
            source,
            framework: info,
            framework_id,
            http,
            missed_heartbeats: 5,
            give_up_unreachable_after: Some(give_up),
        },
        session,
        mesos_tx,
        sub_tx,
    ));

    let web = web::WebState::start(
        config.mesos.framework_name.clone(),
        view_rx.clone(),
        sub_rx.clone(),
        token.is_some(),
        insecure,
    );
    let access = Access::new(
        token,
        access::allowed_hosts(&advertised, bound, &config.api.allowed_hosts),
    );
    let app = api::app(
        ApiState {
            commands: CommandSender(input_tx),
            view: view_rx,
            subscription: sub_rx,
            metrics,
            dist,
            access: Arc::new(access),
        },
        web::router(web),
    );
    let limits = serve::Limits::default();
    let mut server = match tls {
        Some(tls) => tokio::spawn(serve::serve(listener, app, limits, tls)),
        None => tokio::spawn(serve::serve(listener, app, limits, serve::Plain)),
    };

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    let result = tokio::select! {
        _ = tokio::signal::ctrl_c() => { tracing::info!("SIGINT: stopping"); Ok(()) }
        _ = sigterm.recv() => { tracing::info!("SIGTERM: stopping"); Ok(()) }
        reason = lock_lost => Err(anyhow!("lost the state lock, stopping so that no other scheduler runs beside this one: {reason}")),
        r = &mut connection_task => match r {
            Ok(Err(stopped)) => Err(anyhow!("{stopped}")),
            Ok(Ok(())) => Err(anyhow!("the Mesos connection stopped")),
            Err(e) => Err(anyhow!("the Mesos connection failed: {e}")),
        },
        r = &mut server => Err(anyhow!("the REST API server stopped: {}", match r {
            Ok(Ok(())) => "no error".to_string(),
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        })),
    };
    // The tasks keep running under Mesos; a restarted scheduler fails over
    // to the same framework id and reconciles them.
    connection_task.abort();
    server.abort();
    driver_task.abort();
    result
}
