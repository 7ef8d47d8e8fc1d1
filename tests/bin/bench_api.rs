//! `cargo xtask bench api`: an open-loop load generator against the REST API
//! of the release scheduler on mesos-sim.
//!
//! Requests are sent on a fixed schedule (`--rate` per second for `--secs`
//! seconds), whatever the answers do, and each latency runs from the moment
//! the request was due, so a slow server cannot hide its backlog by slowing
//! the generator down. Out of every ten requests, eight are `GET /api/status`,
//! one adds a server with a fresh id and one deletes the server added
//! `DELETE_LAG` adds earlier: the cluster stays small, and what is left is
//! deleted and checked at the end.

#[path = "bench_setup/mod.rs"]
mod bench_setup;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bench_setup::{cpu_time, load_average, ms, percentile, verdict, Agents, Installation};
use clap::Parser;
use tokio::sync::{mpsc, Semaphore};

/// Adds between a server's add and its delete: long enough for the add to
/// have been answered, short enough to keep the status answers small.
const DELETE_LAG: u64 = 20;

#[derive(Parser)]
#[command(about = "Load benchmark of the scheduler's REST API")]
struct Args {
    /// Requests per second to send.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 30)]
    secs: u32,
    /// Requests allowed in flight at once; beyond that, sending waits (and
    /// the wait counts in the latency).
    #[arg(long, default_value_t = 256)]
    max_in_flight: usize,
    /// Limit on the 99th percentile latency, in milliseconds.
    #[arg(long, default_value_t = 50.0)]
    p99_limit_ms: f64,
}

#[derive(Debug, Clone, Copy)]
enum Request {
    Status,
    Add(u64),
    Delete(u64),
}

impl Request {
    fn kind(self) -> &'static str {
        match self {
            Request::Status => "status",
            Request::Add(_) => "add",
            Request::Delete(_) => "delete",
        }
    }

    /// The `i`th request of the schedule.
    fn nth(i: u64) -> Request {
        let pair = i / 10 + 1;
        match i % 10 {
            8 => Request::Add(pair),
            9 if pair > DELETE_LAG => Request::Delete(pair - DELETE_LAG),
            _ => Request::Status,
        }
    }
}

struct Outcome {
    kind: &'static str,
    latency: Duration,
    error: Option<String>,
}

async fn send(client: &reqwest::Client, base: &str, request: Request) -> Result<()> {
    let response = match request {
        Request::Status => client.get(format!("{base}/api/status")).send().await?,
        Request::Add(id) => {
            client
                .post(format!("{base}/api/add"))
                .header("Content-Type", "application/json")
                .body(format!(r#"{{"amount": 1, "id": {id}}}"#))
                .send()
                .await?
        }
        Request::Delete(id) => {
            client
                .post(format!("{base}/api/delete"))
                .header("Content-Type", "application/json")
                .body(format!(r#"{{"ids": [{id}]}}"#))
                .send()
                .await?
        }
    };
    let status = response.status();
    let body = response.bytes().await?;
    if status != reqwest::StatusCode::OK {
        bail!(
            "{request:?}: {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        );
    }
    Ok(())
}

async fn servers_left(client: &reqwest::Client, base: &str) -> Result<usize> {
    let status: serde_json::Value = client
        .get(format!("{base}/api/status"))
        .send()
        .await?
        .json()
        .await?;
    Ok(status["value"]["servers"]
        .as_array()
        .map(Vec::len)
        .unwrap_or_default())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.rate == 0 || args.secs == 0 {
        bail!("--rate and --secs must be at least 1");
    }
    // No agents: added servers wait for offers that never come, so the API
    // is measured, not launches.
    let installation = Installation::start(Agents {
        count: 0,
        cpus: 0.0,
        mem: 0.0,
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let passed = runtime.block_on(run(&args, &installation));
    let passed = match passed {
        Ok(p) => p,
        Err(e) => {
            return Err(e.context(format!("scheduler log:\n{}", installation.log_tail())));
        }
    };
    if !passed {
        bail!("the REST API missed a limit");
    }
    Ok(())
}

async fn run(args: &Args, installation: &Installation) -> Result<bool> {
    let base = installation.api_url.clone();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(args.max_in_flight)
        .build()
        .context("building the HTTP client")?;
    let total = u64::from(args.rate) * u64::from(args.secs);
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate));
    let in_flight = Arc::new(Semaphore::new(args.max_in_flight));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Outcome>();
    println!(
        "REST API load: {total} requests at {}/s for {} s (80% status, 10% add, 10% delete), \
         scheduler pid {}",
        args.rate,
        args.secs,
        installation.scheduler_pid()
    );

    let pid = installation.scheduler_pid();
    let load_before = load_average();
    let cpu_before = cpu_time(pid)?;
    let start = Instant::now();
    let mut last_sent = start;
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let permit = Arc::clone(&in_flight)
            .acquire_owned()
            .await
            .context("in-flight limit closed")?;
        last_sent = Instant::now();
        let client = client.clone();
        let base = base.clone();
        let done = done_tx.clone();
        tokio::spawn(async move {
            let request = Request::nth(i);
            let result = send(&client, &base, request).await;
            let _ = done.send(Outcome {
                kind: request.kind(),
                latency: due.elapsed(),
                error: result.err().map(|e| format!("{e:#}")),
            });
            drop(permit);
        });
    }
    drop(done_tx);
    let send_window = last_sent.duration_since(start) + interval;

    let mut latencies = Vec::with_capacity(usize::try_from(total).unwrap_or_default());
    let mut errors = Vec::new();
    let mut by_kind: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    while let Some(outcome) = done_rx.recv().await {
        latencies.push(outcome.latency);
        by_kind
            .entry(outcome.kind)
            .or_default()
            .push(outcome.latency);
        if let Some(e) = outcome.error {
            errors.push(e);
        }
    }
    let answered_in = start.elapsed();
    let scheduler_cpu = cpu_time(pid)? - cpu_before;

    // What the mix left behind: the last adds, deleted now, untimed.
    let added = |pair: u64| pair * 10 - 2 < total;
    let deleted = |pair: u64| (pair + DELETE_LAG) * 10 - 1 < total;
    let leftover: Vec<String> = (1..=total / 10 + 1)
        .filter(|&pair| added(pair) && !deleted(pair))
        .map(|pair| pair.to_string())
        .collect();
    if !leftover.is_empty() {
        client
            .post(format!("{base}/api/delete"))
            .header("Content-Type", "application/json")
            .body(format!(r#"{{"ids": [{}]}}"#, leftover.join(",")))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .context("deleting the servers the mix left")?;
    }
    let left = servers_left(&client, &base).await?;

    latencies.sort_unstable();
    let sent = latencies.len();
    let ok = sent - errors.len();
    let rate = ok as f64 / send_window.as_secs_f64();
    println!(
        "answered {sent} requests in {:.2} s; sending took {:.2} s; the scheduler used \
         {:.2} s of CPU; load average {load_before} before, {} after ({cores} cores)",
        answered_in.as_secs_f64(),
        send_window.as_secs_f64(),
        scheduler_cpu.as_secs_f64(),
        load_average(),
        cores = std::thread::available_parallelism().map_or(0, usize::from),
    );
    let p99 = percentile(&latencies, 99.0);
    let mut passed = true;
    passed &= verdict(
        "requests sent",
        sent.to_string(),
        &format!("== {total}"),
        u64::try_from(sent).ok() == Some(total),
    );
    passed &= verdict(
        "errors",
        errors.len().to_string(),
        "== 0",
        errors.is_empty(),
    );
    // The timer wakes up a little after each due time, so the last request
    // goes out a fraction of a millisecond late: 0.1% of slack.
    let rate_limit = f64::from(args.rate) * 0.999;
    passed &= verdict(
        "achieved rate (answered OK)",
        format!("{rate:.1}/s"),
        &format!(">= {rate_limit:.1}/s"),
        rate >= rate_limit,
    );
    println!(
        "{:<28} {:>14}",
        "latency p50",
        ms(percentile(&latencies, 50.0))
    );
    println!(
        "{:<28} {:>14}",
        "latency p90",
        ms(percentile(&latencies, 90.0))
    );
    passed &= verdict(
        "latency p99",
        ms(p99),
        &format!("<= {} ms", args.p99_limit_ms),
        p99.as_secs_f64() * 1000.0 <= args.p99_limit_ms,
    );
    println!(
        "{:<28} {:>14}",
        "latency max",
        ms(latencies.last().copied().unwrap_or_default())
    );
    for (kind, mut of_kind) in by_kind {
        of_kind.sort_unstable();
        println!(
            "  {kind:<8} {:>6} requests: p50 {}, p99 {}, max {}",
            of_kind.len(),
            ms(percentile(&of_kind, 50.0)),
            ms(percentile(&of_kind, 99.0)),
            ms(of_kind.last().copied().unwrap_or_default())
        );
    }
    passed &= verdict(
        "servers left after the mix",
        left.to_string(),
        "== 0",
        left == 0,
    );
    for e in errors.iter().take(5) {
        println!("error: {e}");
    }
    Ok(passed)
}
