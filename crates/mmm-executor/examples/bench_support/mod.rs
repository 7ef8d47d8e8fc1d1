//! What the executor's benchmarks share: running the real executor binary
//! against a fake agent until it mirrored a given number of records, and
//! the figures of one run.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mesos_proto::v1::TaskState;
use mmm_core::task_data::TaskData;
use mmm_test_support::random_name;

use crate::common;
use crate::common::agent::{spawn_executor, FakeAgent};

/// Records moved in a time.
pub struct Rate {
    pub name: &'static str,
    pub records: usize,
    pub bytes: usize,
    pub elapsed: Duration,
}

impl Rate {
    pub fn msgs(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
    pub fn mb(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64() / 1_000_000.0
    }
    pub fn print(&self) {
        println!(
            "{:<28} {:>10} records in {:>7.3} s  {:>10.0} msgs/s  {:>7.1} MB/s",
            self.name,
            self.records,
            self.elapsed.as_secs_f64(),
            self.msgs(),
            self.mb()
        );
    }
}

/// `k=v,k=v` as pairs.
pub fn pairs(text: &str) -> Result<Vec<(String, String)>> {
    text.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .with_context(|| format!("{p:?} is not key=value"))
        })
        .collect()
}

/// Properties with `bootstrap.servers`, then `extra`, then `user`.
pub fn props(
    bootstrap: &str,
    extra: &[(&str, &str)],
    user: &[(String, String)],
) -> mmm_core::task_data::Properties {
    std::iter::once(("bootstrap.servers", bootstrap))
        .chain(extra.iter().copied())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .chain(user.iter().cloned())
        .collect()
}

fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The peak resident set of a process, in KiB.
pub fn vm_hwm_kb(pid: u32) -> Option<u64> {
    proc_status_kb(pid, "VmHWM:")
}

/// User plus system CPU time a process used so far (Linux's 100 ticks a second).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Busy and total CPU ticks of the whole machine so far, from `/proc/stat` (all cores).
pub fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    let total: u64 = ticks.iter().take(8).sum();
    // idle and iowait
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// The cores the machine kept busy between two [`machine_ticks`] readings (2.0 is both of two).
pub fn busy_cores(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    match (before, after) {
        (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
            (b1.saturating_sub(b0)) as f64 / (t1 - t0) as f64 * cores
        }
        _ => f64::NAN,
    }
}

/// The 1-minute load average of the machine.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// What one run of the executor showed.
pub struct Replication {
    /// From its first consumed record to its last acknowledged one.
    pub rate: Rate,
    /// From the launch to its first consumed record (group join, round-trip probes).
    pub join: Duration,
    /// Records acknowledged so far, by time since the first consumed record.
    pub progress: Vec<(Duration, u64)>,
    /// Peak resident set, KiB.
    pub peak_rss_kb: u64,
    /// CPU time of the executor process over its whole life.
    pub cpu: Duration,
    /// The cores the whole machine kept busy while the records moved (brokers and proxies too):
    /// near the number of cores, the machine, not a window, was the bound.
    pub machine_busy: f64,
}

/// The share of a run's records the steady rate starts and ends at.
pub const STEADY_FROM: f64 = 0.1;
pub const STEADY_TO: f64 = 0.9;

impl Replication {
    /// The rate while records streamed: from the time the acknowledged count passed
    /// [`STEADY_FROM`] of the run's records to the time it passed [`STEADY_TO`]. It leaves out
    /// the round trips every run pays once, whatever its length: the first record's (the target
    /// topic's metadata, the first produce request) and the last partition's acknowledgement.
    /// At 100 ms they are a tenth of a 2-second run, and nothing of a mirror that runs for days.
    pub fn steady(&self) -> Option<Rate> {
        let at = |share: f64| {
            let want = (self.rate.records as f64 * share).ceil() as u64;
            self.progress.iter().find(|(_, produced)| *produced >= want)
        };
        let (&(from, low), &(to, high)) = (at(STEADY_FROM)?, at(STEADY_TO)?);
        let records = usize::try_from(high.checked_sub(low)?).ok()?;
        if records == 0 || to <= from {
            return None;
        }
        Some(Rate {
            name: "replication, steady",
            records,
            bytes: (self.rate.bytes as f64 * records as f64 / self.rate.records as f64) as usize,
            elapsed: to - from,
        })
    }
}

/// Runs the real executor binary until it acknowledged `records` records of
/// `topic` (`bytes` of payload in all), timing it from its first consumed
/// record to its last acknowledged one, from its metrics messages. `tune`
/// adjusts the task before the launch.
pub fn replicate(
    source: &str,
    target: &str,
    topic: &str,
    records: usize,
    bytes: usize,
    env: &[(&str, &str)],
    tune: impl FnOnce(&mut TaskData),
) -> Result<Replication> {
    let agent = FakeAgent::start();
    let sandbox = tempfile::tempdir()?;
    // A kept log (MMM_BENCH_EXECUTOR_LOG) carries librdkafka's debug lines too.
    let log_filter = if std::env::var_os("MMM_BENCH_EXECUTOR_LOG").is_some() {
        "info,librdkafka=debug,mmm_executor::engine::callbacks=debug"
    } else {
        "info"
    };
    let mut env_all = vec![
        ("MMM_EXECUTOR_METRICS_INTERVAL_MS", "20"),
        ("RUST_LOG", log_filter),
    ];
    env_all.extend_from_slice(env);
    let mut executor = spawn_executor(&agent, sandbox.path(), &env_all);
    agent.wait_subscribed(1, Duration::from_secs(30));
    let mut data = common::task(source, target, &[topic], &random_name("bench-mirror"));
    data.offset_commit_interval_ms = 5_000;
    tune(&mut data);
    let launched = Instant::now();
    agent.launch("bench", &data.to_json());
    agent.wait_for_state(TaskState::TaskRunning, Duration::from_secs(60));
    let mut seen = 0usize;
    let mut first = None;
    // When the acknowledged count was seen to pass each value, from the metrics messages.
    let mut progress: Vec<(Instant, u64)> = Vec::new();
    let mut ticks_at_first = None;
    let deadline = Instant::now() + Duration::from_secs(900);
    let (done, ticks_at_done) = loop {
        if Instant::now() > deadline {
            bail!("replication did not finish");
        }
        if let Some(failed) = agent
            .updates()
            .iter()
            .find(|u| u.state == TaskState::TaskFailed as i32)
        {
            bail!("executor failed: {:?}", failed.message);
        }
        let messages = agent.messages();
        let mut finished = false;
        for m in &messages[seen..] {
            let v: serde_json::Value = serde_json::from_slice(m)?;
            if first.is_none() && v["records_consumed"].as_u64().unwrap_or(0) > 0 {
                first = Some(Instant::now());
                ticks_at_first = machine_ticks();
            }
            let produced = v["records_produced"].as_u64().unwrap_or(0);
            if produced > progress.last().map_or(0, |(_, p)| *p) {
                progress.push((Instant::now(), produced));
            }
            if produced as usize >= records {
                finished = true;
            }
        }
        seen = messages.len();
        if finished {
            break (Instant::now(), machine_ticks());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let peak_rss_kb = vm_hwm_kb(executor.pid()).unwrap_or(0);
    let cpu = cpu_time(executor.pid()).unwrap_or_default();
    agent.kill("bench");
    agent.wait_for_state(TaskState::TaskKilled, Duration::from_secs(30));
    let _ = executor.wait_timeout(Duration::from_secs(10));
    // The sandbox goes with this run; its log is kept on request, to read librdkafka's debug
    // output (`--producer debug=msg`) after a run.
    if let Some(keep) = std::env::var_os("MMM_BENCH_EXECUTOR_LOG") {
        std::fs::copy(sandbox.path().join("stderr"), &keep)?;
    }
    let first = first.unwrap_or(launched);
    Ok(Replication {
        rate: Rate {
            name: "replication (mmm-executor)",
            records,
            bytes,
            elapsed: done - first,
        },
        join: first - launched,
        progress: progress
            .iter()
            .map(|(at, produced)| (at.saturating_duration_since(first), *produced))
            .collect(),
        peak_rss_kb,
        cpu,
        machine_busy: busy_cores(ticks_at_first, ticks_at_done),
    })
}
