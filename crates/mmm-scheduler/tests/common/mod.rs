//! Runs the real scheduler binary in a temp dir, with a stand-in executor
//! in its dist/ that speaks the Mesos executor API (mesos-sim's test
//! executor) and fails on demand.

#![allow(dead_code)]

use std::fs;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mmm_test_support::{bin_path, listening_ports, ChildGuard};
use serde_json::Value;

/// Generous: the CI machine has two busy cores.
pub const WAIT: Duration = Duration::from_secs(60);

/// Polls `check` until it returns `Some`, panicking with `what` after `timeout`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One scheduler installation: its files, and the process while it runs.
pub struct Scheduler {
    pub dir: tempfile::TempDir,
    pub api_port: u16,
    pub process: Option<ChildGuard>,
    client: reqwest::Client,
    starts: u32,
}

impl Scheduler {
    /// Writes the configuration for `master` (plus `extra` TOML appended to
    /// the [scheduler] section) and a dist/ with the stand-in executor.
    pub fn new(master: &str, extra_scheduler_toml: &str) -> Self {
        Self::with_failover_timeout(master, extra_scheduler_toml, 3600)
    }

    /// Like [`Scheduler::new`], with the framework's failover timeout.
    pub fn with_failover_timeout(
        master: &str,
        extra_scheduler_toml: &str,
        failover_secs: u64,
    ) -> Self {
        Self::configured(master, "", extra_scheduler_toml, failover_secs)
    }

    /// Like [`Scheduler::new`], with `extra_mesos_toml` in the [mesos] section.
    pub fn configured(
        master: &str,
        extra_mesos_toml: &str,
        extra_scheduler_toml: &str,
        failover_secs: u64,
    ) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mmm-scheduler-test-")
            .tempdir()
            .expect("temp dir");
        let d = dir.path();
        let dist = d.join("dist");
        fs::create_dir(&dist).expect("dist dir");
        let sim_executor = bin_path("sim-test-executor")
            .expect("mesos-sim's sim-test-executor is built (cargo build --workspace --bins)");
        let script = format!(
            "#!/bin/sh\nif [ -e '{marker}' ]; then echo 'failing on purpose' >&2; exit 3; fi\nexec '{exe}'\n",
            marker = d.join("fail-executor").display(),
            exe = sim_executor.display()
        );
        let exe = dist.join("mmm-executor");
        fs::write(&exe, script).expect("write executor");
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).expect("chmod");
        fs::write(
            d.join("consumer.properties"),
            "bootstrap.servers=127.0.0.1:9\ngroup.id=g\nsasl.password=hunter2-consumer\n",
        )
        .expect("consumer");
        fs::write(
            d.join("producer.properties"),
            "bootstrap.servers=127.0.0.1:9\nacks=all\n",
        )
        .expect("producer");
        let toml = format!(
            r#"[mesos]
master = "{master}"
framework_name = "mmm-test"
failover_timeout_secs = {failover_secs}
{extra_mesos_toml}

[api]
bind = "127.0.0.1:0"

[mirror]
topics = ["t1"]

[storage]
path = "{state}"

[executor]
dist_dir = "{dist}"

[scheduler]
{extra_scheduler_toml}
"#,
            state = d.join("state").join("mmm-state.json").display(),
            dist = dist.display(),
        );
        fs::write(d.join("mmm.toml"), toml).expect("config");
        Self {
            dir,
            api_port: 0,
            process: None,
            // A fresh connection per request: a standby closes its kept-alive connections when
            // it takes over, and a pooled one could be closed under a request in flight.
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .pool_max_idle_per_host(0)
                .build()
                .expect("http client"),
            starts: 0,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The command line of the contract.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mmm-scheduler"));
        cmd.arg(self.path("mmm.toml"))
            .arg("--consumer-config")
            .arg(self.path("consumer.properties"))
            .arg("--producer-config")
            .arg(self.path("producer.properties"))
            .env("RUST_LOG", "info,mmm_scheduler=debug")
            .current_dir(self.dir.path());
        cmd
    }

    /// Starts the scheduler and waits for its API. The API binds port 0, so
    /// every start gets a port no other process holds; `api_port` follows it.
    pub async fn start(&mut self) {
        let cmd = self.command();
        self.start_with(cmd).await;
    }

    /// Like [`Scheduler::start`], with the command given (for example with
    /// more environment variables).
    pub async fn start_with(&mut self, cmd: Command) {
        self.starts += 1;
        let log = self.path(&format!("scheduler-{}.log", self.starts));
        let mut child =
            ChildGuard::spawn_logged("mmm-scheduler", cmd, &log).expect("spawn scheduler");
        let logs = || self.logs();
        let port = wait_until("the scheduler to listen", WAIT, || {
            if let Ok(Some(status)) = child.try_exit_status() {
                panic!("the scheduler exited ({status}):\n{}", logs());
            }
            let ports = listening_ports(child.pid());
            async move { (ports.len() == 1).then(|| ports[0]) }
        })
        .await;
        self.api_port = port;
        self.process = Some(child);
        let client = self.client.clone();
        let url = self.url("/ping");
        wait_until("the scheduler's /ping", WAIT, || {
            let client = client.clone();
            let url = url.clone();
            async move {
                let r = client.get(&url).send().await.ok()?;
                (r.status() == 200 && r.text().await.ok()? == "pong").then_some(())
            }
        })
        .await;
    }

    /// Starts the scheduler without waiting for its API (for runs that
    /// are expected to stop by themselves).
    pub fn spawn(&mut self) {
        self.starts += 1;
        let log = self.path(&format!("scheduler-{}.log", self.starts));
        let child = ChildGuard::spawn_logged("mmm-scheduler", self.command(), &log)
            .expect("spawn scheduler");
        self.process = Some(child);
    }

    /// Waits until the scheduler exits by itself; returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let p = self.process.as_mut().expect("a started scheduler");
        let status = p
            .wait_timeout(WAIT)
            .expect("wait for the scheduler")
            .unwrap_or_else(|| panic!("the scheduler kept running: {}", self.logs()));
        self.process = None;
        status.code()
    }

    /// Everything the scheduler logged, over every start.
    pub fn logs(&self) -> String {
        (1..=self.starts)
            .map(|i| {
                fs::read_to_string(self.path(&format!("scheduler-{i}.log"))).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn sigkill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill().expect("SIGKILL the scheduler");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.api_port)
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self.client.get(self.url(path)).send().await.expect("GET");
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let (status, body) = self.get(path).await;
        let json = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"));
        (status, json)
    }

    pub async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST");
        let status = r.status().as_u16();
        let text = r.text().await.expect("body");
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"));
        (status, json)
    }

    /// The servers of /api/status.
    pub async fn servers(&self) -> Vec<Value> {
        let (status, json) = self.get_json("/api/status").await;
        assert_eq!(status, 200, "{json}");
        json["value"]["servers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits for /health to say subscribed; returns the framework id.
    pub async fn wait_subscribed(&self) -> String {
        wait_until("the scheduler to subscribe", WAIT, || async {
            let (status, json) = self.get_json("/health").await;
            (status == 200)
                .then(|| {
                    json["value"]["subscription"]["framework_id"]
                        .as_str()
                        .map(str::to_string)
                })
                .flatten()
        })
        .await
    }

    /// Waits until server `id` is in `state`; returns its view.
    pub async fn wait_server_state(&self, id: u64, state: &str) -> Value {
        wait_until(&format!("server {id} to be {state}"), WAIT, || async {
            self.servers()
                .await
                .into_iter()
                .find(|s| s["id"] == id && s["state"] == state)
        })
        .await
    }

    pub fn fail_executors(&self, fail: bool) {
        let marker = self.path("fail-executor");
        if fail {
            fs::write(marker, b"").expect("marker");
        } else {
            let _ = fs::remove_file(marker);
        }
    }
}

/// The stored state document.
pub fn read_state(dir: &Path) -> Value {
    let text = fs::read_to_string(dir.join("state").join("mmm-state.json")).expect("state file");
    serde_json::from_str(&text).expect("state JSON")
}
