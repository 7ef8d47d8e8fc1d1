//! `mesos-sim`: a simulated Mesos master with agents, standalone.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use mesos_sim::{AgentConfig, MesosSim, Reserved, SimConfig};

/// A strict local Mesos master with simulated agents, for tests and demos.
#[derive(Debug, Parser)]
#[command(name = "mesos-sim", version)]
struct Args {
    /// Number of agents.
    #[arg(long, default_value_t = 2)]
    agents: usize,
    /// Master port (0: a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where sandboxes go (default: a temporary directory removed on exit).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Heartbeat interval in seconds.
    #[arg(long, default_value_t = 15.0)]
    heartbeat_secs: f64,
    /// Offer interval in seconds.
    #[arg(long, default_value_t = 1.0)]
    offer_interval_secs: f64,
    /// Status update retry interval in seconds.
    #[arg(long, default_value_t = 10.0)]
    update_retry_secs: f64,
    /// cpus per agent.
    #[arg(long, default_value_t = 2.0)]
    agent_cpus: f64,
    /// mem (MB) per agent.
    #[arg(long, default_value_t = 1024.0)]
    agent_mem: f64,
    /// disk (MB) per agent.
    #[arg(long, default_value_t = 10000.0)]
    agent_disk: f64,
    /// Answer every scheduler call 307 to this leader (host:port).
    #[arg(long)]
    redirect_to_leader: Option<String>,
    /// Resources reserved on every agent, besides the unreserved ones:
    /// `cpus(mirror):1;mem(mirror):512`, dynamic with a principal: `cpus(mirror,ops):1`.
    #[arg(long)]
    agent_reserved: Option<String>,
    /// Require HTTP Basic authentication of frameworks with this
    /// `principal:secret` (repeatable).
    #[arg(long = "framework-credential")]
    framework_credentials: Vec<String>,
    /// The roles frameworks may use (Mesos's --roles), comma-separated.
    #[arg(long)]
    roles: Option<String>,
    /// Agents authenticate executors with per-executor tokens.
    #[arg(long)]
    authenticate_http_executors: bool,
    /// Serve https: a test CA and certificate are made at start and written
    /// into this directory (ca.pem, cert.pem, key.pem).
    #[arg(long)]
    tls_dir: Option<PathBuf>,
    /// NAME=VALUE given to every executor, like the agent's
    /// --executor_environment_variables (repeatable).
    #[arg(long = "executor-env", value_parser = parse_env_pair)]
    executor_env: Vec<(String, String)>,
}

fn parse_env_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got {text:?}")),
    }
}

fn secs(name: &str, v: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v)
        .with_context(|| format!("--{name} must be a non-negative number of seconds, got {v}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let reserved = match &args.agent_reserved {
        Some(text) => {
            Reserved::parse_list(text).map_err(|e| anyhow::anyhow!("--agent-reserved: {e}"))?
        }
        None => Vec::new(),
    };
    let framework_credentials = args
        .framework_credentials
        .iter()
        .map(|c| {
            c.split_once(':')
                .map(|(p, s)| (p.to_owned(), s.to_owned()))
                .with_context(|| format!("--framework-credential {c:?} is not principal:secret"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let config = SimConfig {
        agents: (0..args.agents)
            .map(|i| {
                AgentConfig {
                    cpus: args.agent_cpus,
                    mem: args.agent_mem,
                    disk: args.agent_disk,
                    reserved: reserved.clone(),
                    ..AgentConfig::default()
                }
                .with_attribute("rack", format!("r{}", i + 1))
            })
            .collect(),
        master_port: args.port,
        work_dir: args.work_dir,
        heartbeat_interval: secs("heartbeat-secs", args.heartbeat_secs)?,
        offer_interval: secs("offer-interval-secs", args.offer_interval_secs)?,
        update_retry_interval: secs("update-retry-secs", args.update_retry_secs)?,
        redirect_to_leader: args.redirect_to_leader,
        framework_credentials,
        roles_whitelist: args
            .roles
            .map(|r| r.split(',').map(|x| x.trim().to_owned()).collect()),
        authenticate_http_executors: args.authenticate_http_executors,
        tls_dir: args.tls_dir,
        executor_environment: args.executor_env,
        ..SimConfig::default()
    };
    // Watch the signals before announcing the URL: whoever reads it may
    // send SIGTERM right away.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch SIGTERM")?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot watch SIGINT")?;
    let sim = MesosSim::start(config)
        .await
        .context("cannot start mesos-sim")?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "mesos-sim master listening on {}", sim.master_url())
            .and_then(|()| out.flush())
            .context("cannot write the master URL to stdout")?;
        // Whoever started us may stop reading after the first line.
        for id in sim.agent_ids() {
            let _ = writeln!(out, "agent {id} on {}", sim.agent_endpoint(&id)?);
        }
        let _ = out.flush();
    }
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping: killing executors");
    sim.shutdown().await;
    Ok(())
}
