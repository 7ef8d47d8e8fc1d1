//! `cargo xtask bench scheduler`: the release scheduler manages `--tasks`
//! tasks across `--agents` simulated agents.
//!
//! Measures the time from the first add call to every task RUNNING, and the
//! scheduler's CPU time (utime + stime of /proc/<pid>/stat) and peak resident
//! memory (VmHWM of /proc/<pid>/status). Each task is a real process:
//! mesos-sim's `sim-test-executor`, which speaks the Mesos executor API and
//! reports TASK_RUNNING, but mirrors nothing, so the scheduler is what is
//! measured.

#[path = "bench_setup/mod.rs"]
mod bench_setup;

use std::collections::BTreeMap;
use std::fs;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bench_setup::{cpu_time, load_average, pids_working_under, verdict, Agents, Installation};
use clap::Parser;

/// The most servers one add call may ask for (mmm-core's MAX_ADD_PER_CALL).
const MAX_ADD_PER_CALL: u32 = 1000;

#[derive(Parser)]
#[command(about = "Scale benchmark of the scheduler")]
struct Args {
    #[arg(long, default_value_t = 1000)]
    tasks: u32,
    #[arg(long, default_value_t = 50)]
    agents: u32,
    #[arg(long, default_value_t = 8.0)]
    agent_cpus: f64,
    #[arg(long, default_value_t = 16384.0)]
    agent_mem: f64,
    #[arg(long, default_value_t = 0.2)]
    task_cpus: f64,
    #[arg(long, default_value_t = 64.0)]
    task_mem: f64,
    /// Limit on the time from the first add to all RUNNING, in seconds.
    #[arg(long, default_value_t = 120.0)]
    running_limit_secs: f64,
    /// Limit on the scheduler's CPU time over that period, in seconds.
    #[arg(long, default_value_t = 30.0)]
    cpu_limit_secs: f64,
    /// Limit on the scheduler's peak resident memory, in MB.
    #[arg(long, default_value_t = 100.0)]
    rss_limit_mb: f64,
}

/// A `kB` line of /proc/<pid>/status, in MB.
fn status_mb(pid: u32, key: &str) -> Result<f64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .ok_or_else(|| anyhow!("/proc/{pid}/status has no {key} line"))
}

/// Servers per state, from /metrics: cheap to serve, unlike a 1,000-server
/// /api/status, so watching does not load the scheduler being measured.
async fn states(client: &reqwest::Client, base: &str) -> Result<BTreeMap<String, usize>> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("mmm_tasks{state=\"") else {
            continue;
        };
        let Some((state, value)) = rest.split_once("\"} ") else {
            continue;
        };
        let count: usize = value
            .trim()
            .parse()
            .with_context(|| format!("/metrics: {line:?} has no count"))?;
        if count > 0 {
            counts.insert(state.to_string(), count);
        }
    }
    Ok(counts)
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.tasks == 0 {
        bail!("--tasks must be at least 1");
    }
    let installation = Installation::start(Agents {
        count: args.agents,
        cpus: args.agent_cpus,
        mem: args.agent_mem,
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    match runtime.block_on(run(&args, &installation)) {
        Ok(true) => Ok(()),
        Ok(false) => bail!("the scheduler missed a limit"),
        Err(e) => Err(e.context(format!("scheduler log:\n{}", installation.log_tail()))),
    }
}

async fn run(args: &Args, installation: &Installation) -> Result<bool> {
    let base = &installation.api_url;
    let pid = installation.scheduler_pid();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    println!(
        "scheduler scale: {} tasks of {} cpus / {} MB on {} agents of {} cpus / {} MB, \
         scheduler pid {pid}",
        args.tasks, args.task_cpus, args.task_mem, args.agents, args.agent_cpus, args.agent_mem
    );
    let cpu_before = cpu_time(pid)?;
    let load_before = load_average();
    let start = Instant::now();
    let mut remaining = args.tasks;
    while remaining > 0 {
        let amount = remaining.min(MAX_ADD_PER_CALL);
        let body =
            serde_json::json!({"amount": amount, "cpus": args.task_cpus, "mem": args.task_mem});
        let response = client
            .post(format!("{base}/api/add"))
            .json(&body)
            .send()
            .await
            .context("POST /api/add")?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!(
                "add {amount} was refused: {status}: {}",
                &text[..text.len().min(300)]
            );
        }
        remaining -= amount;
    }
    let added_in = start.elapsed();

    // Wait past the limit, so that a slow run still reports its figure.
    let deadline = start + Duration::from_secs_f64(args.running_limit_secs * 2.0);
    let mut last_report = Instant::now();
    let expected = usize::try_from(args.tasks).unwrap_or(usize::MAX);
    let all_running = loop {
        let counts = states(&client, base).await?;
        let running = counts.get("Running").copied().unwrap_or(0);
        if running == expected {
            break Some(start.elapsed());
        }
        if Instant::now() > deadline {
            println!("gave up waiting; states: {counts:?}");
            break None;
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            println!("  {:>5.1} s: {counts:?}", start.elapsed().as_secs_f64());
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let cpu = cpu_time(pid)? - cpu_before;
    let executors = pids_working_under(&installation.dir.path().join("mesos"))
        .into_iter()
        .filter(|pid| {
            // comm is cut to 15 bytes.
            fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| "sim-test-executor".starts_with(comm.trim()))
        })
        .count();
    let peak_mb = status_mb(pid, "VmHWM")?;
    let rss_mb = status_mb(pid, "VmRSS")?;

    println!(
        "add calls answered in {:.2} s; scheduler CPU before the adds {:.2} s; \
         load average {load_before} before, {} after ({} cores)",
        added_in.as_secs_f64(),
        cpu_before.as_secs_f64(),
        load_average(),
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    let mut passed = true;
    passed &= verdict(
        "add to all RUNNING",
        all_running.map_or_else(
            || "never".to_string(),
            |d| format!("{:.2} s", d.as_secs_f64()),
        ),
        &format!("<= {} s", args.running_limit_secs),
        all_running.is_some_and(|d| d.as_secs_f64() <= args.running_limit_secs),
    );
    passed &= verdict(
        "scheduler CPU (utime+stime)",
        format!("{:.2} s", cpu.as_secs_f64()),
        &format!("<= {} s", args.cpu_limit_secs),
        cpu.as_secs_f64() <= args.cpu_limit_secs,
    );
    passed &= verdict(
        "scheduler peak RSS (VmHWM)",
        format!("{peak_mb:.1} MB"),
        &format!("<= {} MB", args.rss_limit_mb),
        peak_mb <= args.rss_limit_mb,
    );
    println!(
        "{:<28} {:>14}",
        "scheduler RSS now",
        format!("{rss_mb:.1} MB")
    );
    println!("{:<28} {:>14}", "executor processes running", executors);
    Ok(passed)
}
