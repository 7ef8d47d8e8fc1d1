//! What both load benchmarks run against: the release `mesos-sim` and
//! `mmm-scheduler` binaries in a temp dir, with a stand-in executor in
//! dist/ (mesos-sim's `sim-test-executor`, which answers LAUNCH with
//! TASK_RUNNING and needs no Kafka).

// Each benchmark binary uses its own part of this module.
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use mmm_e2e::wait_until;
use mmm_test_support::{bin_path, wait_for_listening_port, ChildGuard};

/// The simulated agents.
#[derive(Debug, Clone, Copy)]
pub struct Agents {
    pub count: u32,
    pub cpus: f64,
    pub mem: f64,
}

/// A scheduler on a simulated Mesos cluster; every process is killed on drop.
pub struct Installation {
    // Field order is drop order: the scheduler first, then mesos-sim (which
    // kills its executors), then the files.
    pub scheduler: ChildGuard,
    pub mesos: ChildGuard,
    pub api_url: String,
    pub api_port: u16,
    pub dir: tempfile::TempDir,
}

impl Installation {
    pub fn start(agents: Agents) -> Result<Installation> {
        let dir = tempfile::Builder::new()
            .prefix("mmm-bench-")
            .tempdir()
            .context("creating the benchmark directory")?;
        let (mesos, master) = start_mesos_sim(dir.path(), agents)?;
        // Port 0: the scheduler binds a free port, read back from the kernel.
        write_files(dir.path(), &master, 0)?;
        let mut cmd = Command::new(bin_path("mmm-scheduler")?);
        cmd.arg(dir.path().join("mmm.toml"))
            .arg("--consumer-config")
            .arg(dir.path().join("consumer.properties"))
            .arg("--producer-config")
            .arg(dir.path().join("producer.properties"))
            // Per-request logging would measure the terminal, not the API.
            .env("RUST_LOG", "warn")
            .current_dir(dir.path());
        let mut scheduler =
            ChildGuard::spawn_logged("mmm-scheduler", cmd, &dir.path().join("mmm-scheduler.log"))?;
        let api_port = wait_for_listening_port(&mut scheduler, Duration::from_secs(60))?;
        let api_url = format!("http://127.0.0.1:{api_port}");
        let installation = Installation {
            scheduler,
            mesos,
            api_url,
            api_port,
            dir,
        };
        installation.wait_subscribed()?;
        Ok(installation)
    }

    fn wait_subscribed(&self) -> Result<()> {
        let health = format!("127.0.0.1:{}", self.api_port);
        wait_until(
            "the scheduler to subscribe to mesos-sim",
            Duration::from_secs(60),
            || Ok(http_get_status(&health)? == 200),
        )
        .with_context(|| format!("scheduler log: {}", self.log_tail()))
    }

    pub fn scheduler_pid(&self) -> u32 {
        self.scheduler.pid()
    }

    /// The last lines the scheduler logged, for error messages.
    pub fn log_tail(&self) -> String {
        let text =
            fs::read_to_string(self.dir.path().join("mmm-scheduler.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Installation {
    fn drop(&mut self) {
        // mesos-sim kills its executors (each in its own process group) on
        // SIGTERM; a SIGKILL of its group would leave them running.
        let _ = self.scheduler.kill();
        if self.mesos.signal(libc::SIGTERM).is_ok() {
            let _ = self.mesos.wait_timeout(Duration::from_secs(60));
        }
        let _ = self.mesos.kill();
        for pid in pids_working_under(self.dir.path()) {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
    }
}

/// The processes whose working directory is under `dir`: executors that
/// outlived mesos-sim.
pub fn pids_working_under(dir: &Path) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| {
            fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(&dir))
        })
        .collect()
}

/// The status code of `GET /health` on `addr`, over plain HTTP/1.0.
fn http_get_status(addr: &str) -> Result<u16> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow!("{addr} answered no HTTP status line"))
}

fn start_mesos_sim(dir: &Path, agents: Agents) -> Result<(ChildGuard, String)> {
    let mut cmd = Command::new(bin_path("mesos-sim")?);
    cmd.args(["--agents", &agents.count.to_string()])
        .args(["--agent-cpus", &agents.cpus.to_string()])
        .args(["--agent-mem", &agents.mem.to_string()])
        .args(["--heartbeat-secs", "5"])
        .args(["--offer-interval-secs", "1"])
        .arg("--work-dir")
        .arg(dir.join("mesos"))
        .env("RUST_LOG", "warn");
    let log = dir.join("mesos-sim.log");
    let guard = ChildGuard::spawn_logged("mesos-sim", cmd, &log)?;
    let url = mmm_e2e::wait_for_master_url(&log)?;
    Ok((guard, url))
}

fn write_files(dir: &Path, master: &str, api_port: u16) -> Result<()> {
    let dist = dir.join("dist");
    fs::create_dir_all(&dist).context("creating dist/")?;
    let sim_executor = bin_path("sim-test-executor")?;
    let exe = dist.join("mmm-executor");
    fs::write(
        &exe,
        format!("#!/bin/sh\nexec '{}'\n", sim_executor.display()),
    )
    .with_context(|| format!("writing {}", exe.display()))?;
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", exe.display()))?;
    fs::write(
        dir.join("consumer.properties"),
        "bootstrap.servers=127.0.0.1:9\ngroup.id=bench\n",
    )
    .context("writing consumer.properties")?;
    fs::write(
        dir.join("producer.properties"),
        "bootstrap.servers=127.0.0.1:9\nacks=all\n",
    )
    .context("writing producer.properties")?;
    let state: PathBuf = dir.join("state").join("mmm-state.json");
    let toml = format!(
        r#"[mesos]
master = "{master}"
framework_name = "mmm-bench"
failover_timeout_secs = 3600

[api]
bind = "127.0.0.1:{api_port}"

[mirror]
topics = ["bench"]

[storage]
path = "{state}"

[executor]
dist_dir = "{dist}"
"#,
        state = state.display(),
        dist = dist.display(),
    );
    fs::write(dir.join("mmm.toml"), toml).context("writing mmm.toml")?;
    Ok(())
}

/// The clock ticks per second of /proc/<pid>/stat on Linux.
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// utime + stime of `pid`.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name may hold spaces; the fields after it do not.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow!("/proc/{pid}/stat has no command name"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat(5), counted from the state (field 3).
    let ticks = |i: usize| -> Result<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .ok_or_else(|| anyhow!("/proc/{pid}/stat: field {} is not a number", i + 3))
    };
    Ok(Duration::from_secs_f64(
        (ticks(11)? + ticks(12)?) / CLOCK_TICKS_PER_SEC,
    ))
}

/// The 1-minute load average, to tell a busy machine from a slow program.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Percentile `p` (0..=100) of sorted `values`.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One line of the report: the figure, its limit, and whether it holds.
pub fn verdict(name: &str, figure: String, limit: &str, ok: bool) -> bool {
    println!(
        "{name:<28} {figure:>14}   limit {limit:<14} {}",
        if ok { "PASS" } else { "FAIL" }
    );
    ok
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
