//! The status page in a real browser: Debian's headless Chromium, driven
//! through chromedriver's WebDriver HTTP API, against the scheduler binary
//! on mesos-sim with real executors mirroring between two mock Kafka
//! clusters. Saves target/test-artifacts/web-status.png.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{wait_until, Scheduler, WAIT};
use mesos_sim::{MesosSim, SimConfig};
use mmm_test_support::{
    bin_path, produce, random_name, spawn_on_free_port, workspace_root, ChildGuard,
    MockKafkaCluster, TestRecord,
};
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const TOKEN: &str = "web-test-token";
const FAST_RETRIES: &str =
    "relaunch_backoff_ms = 200\nrelaunch_backoff_max_ms = 1000\nrefuse_seconds = 1.0\n";
/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session, ended (and the browser closed) by [`Browser::quit`];
/// chromedriver and the browser die with their process group on drop.
struct Browser {
    http: reqwest::Client,
    session: String,
    _driver: ChildGuard,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start(log: &Path) -> Browser {
        // Retried on another port when chromedriver cannot bind the one picked.
        let (driver, port) = spawn_on_free_port("chromedriver", log, WAIT, |port| {
            let mut cmd = Command::new(CHROMEDRIVER);
            cmd.arg(format!("--port={port}"));
            cmd
        })
        .expect("chromedriver");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(90))
            .build()
            .expect("client");
        let base = format!("http://127.0.0.1:{port}");
        wait_until("chromedriver to listen", WAIT, || {
            let http = http.clone();
            let url = format!("{base}/status");
            async move {
                let v: Value = http.get(url).send().await.ok()?.json().await.ok()?;
                (v["value"]["ready"] == true).then_some(())
            }
        })
        .await;
        let profile = tempfile::Builder::new()
            .prefix("mmm-web-chromium-")
            .tempdir()
            .expect("profile dir");
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            // No crash handler outside the browser's process group.
            "--disable-breakpad".into(),
            "--disable-crash-reporter".into(),
            "--window-size=1400,1000".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": CHROMIUM, "args": args}
            }}}))
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session JSON");
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver refused a session: {answer}"))
            .to_string();
        Browser {
            http,
            session: format!("{base}/session/{session}"),
            _driver: driver,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request
            .send()
            .await
            .expect("WebDriver call")
            .json()
            .await
            .expect("WebDriver JSON");
        if let Some(error) = answer["value"]["error"].as_str() {
            panic!("WebDriver {path}: {error}: {}", answer["value"]["message"]);
        }
        answer["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// Runs `script` in the page; its `return` value comes back.
    async fn eval(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT].as_str().expect("element id").to_string()
    }

    async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Polls `script` until it returns something other than null or false.
    async fn wait_for(&self, what: &str, script: &str) -> Value {
        wait_until(what, WAIT, || async {
            let v = self.eval(script).await;
            (!v.is_null() && v != false).then_some(v)
        })
        .await
    }

    async fn text(&self, css: &str) -> String {
        let id = self.element(css).await;
        let v = self
            .call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await;
        v.as_str().expect("element text").to_string()
    }

    async fn displayed(&self, css: &str) -> bool {
        let id = self.element(css).await;
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{id}/displayed"),
                None,
            )
            .await;
        v == true
    }

    /// A Chrome DevTools command, through chromedriver.
    async fn cdp(&self, cmd: &str, params: Value) {
        self.call(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({"cmd": cmd, "params": params})),
        )
        .await;
    }

    async fn screenshot(&self, to: &Path) {
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64_decode(v.as_str().expect("base64 PNG"));
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        fs::create_dir_all(to.parent().expect("artifact dir")).expect("artifact dir");
        fs::write(to, png).expect("write screenshot");
    }

    async fn quit(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let digits: Vec<u8> = text.bytes().filter(|c| *c != b'=' && *c != b'\n').collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, c)| acc | (value(*c) << (18 - 6 * i)));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

fn artifact_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().expect("workspace root").join("target"));
    target.join("test-artifacts").join("web-status.png")
}

/// Whether the browser can run here. Missing, the test is skipped on a
/// developer's machine and fails in CI, where `cargo xtask test` installs it.
fn browser_available() -> bool {
    let present = Path::new(CHROMIUM).is_file() && Path::new(CHROMEDRIVER).is_file();
    if !present && std::env::var_os("CI").is_some() {
        panic!("{CHROMIUM} or {CHROMEDRIVER} is missing: `cargo xtask test` installs Debian's chromium and chromium-driver");
    }
    if !present {
        eprintln!("SKIPPED: {CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver); under CI=true this fails");
    }
    present
}

/// Produces to both partitions of `topic` until dropped, so the tasks have
/// something to mirror and a rate to report.
struct Traffic {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(bootstrap: String, topic: String) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut n = 0u64;
            while !flag.load(Ordering::Relaxed) {
                let batch: Vec<TestRecord> = (0..200)
                    .map(|i| {
                        n += 1;
                        TestRecord::new(i % 2, format!("k{n}"), format!("v{n}"))
                    })
                    .collect();
                if let Err(e) = produce(&bootstrap, &topic, &batch) {
                    eprintln!("test traffic: {e}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Traffic {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Points the test scheduler at the two Kafka clusters and `topic`, protects
/// its API with [`TOKEN`], and puts the real executor in its dist/.
fn configure(s: &Scheduler, source: &str, target: &str, topic: &str) {
    fs::write(
        s.path("consumer.properties"),
        format!(
            // Quick rebalances: the second task joins the first one's group.
            "bootstrap.servers={source}\ngroup.id={}\nsession.timeout.ms=6000\nheartbeat.interval.ms=500\n",
            random_name("web-group")
        ),
    )
    .expect("consumer");
    fs::write(
        s.path("producer.properties"),
        format!("bootstrap.servers={target}\nacks=all\n"),
    )
    .expect("producer");
    let token_file = s.path("api-token");
    fs::write(&token_file, format!("{TOKEN}\n")).expect("token");
    fs::set_permissions(&token_file, fs::Permissions::from_mode(0o600)).expect("chmod");
    let toml = fs::read_to_string(s.path("mmm.toml")).expect("config");
    let toml = toml
        .replace(
            "[api]\n",
            &format!("[api]\ntoken_file = \"{}\"\n", token_file.display()),
        )
        .replace(
            "topics = [\"t1\"]",
            &format!("topics = [\"{topic}\"]\noffset_commit_interval_ms = 1000"),
        );
    fs::write(s.path("mmm.toml"), toml).expect("config");
    let executor = bin_path("mmm-executor")
        .expect("the executor binary is built (cargo build --workspace --bins)");
    let script = s.path("dist").join("mmm-executor");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nMMM_EXECUTOR_METRICS_INTERVAL_MS=500 exec '{}'\n",
            executor.display()
        ),
    )
    .expect("executor script");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
}

const ROW_STATE: &str = "return (n => { const r = document.querySelector('#task-' + n); return r && r.dataset.state; })";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_tasks_and_adds_one_in_a_real_browser() {
    if !browser_available() {
        return;
    }
    let source = MockKafkaCluster::start(1).expect("source cluster");
    let target = MockKafkaCluster::start(1).expect("target cluster");
    let topic = random_name("web-orders");
    source.create_topic(&topic, 2, 1).expect("source topic");
    target.create_topic(&topic, 2, 1).expect("target topic");
    let _traffic = Traffic::start(source.bootstrap(), topic.clone());

    let sim = MesosSim::start(SimConfig::with_agents(2).fast())
        .await
        .expect("mesos-sim starts");
    let mut s = Scheduler::new(&sim.master_url(), FAST_RETRIES);
    configure(&s, &source.bootstrap(), &target.bootstrap(), &topic);
    s.start().await;
    let framework_id = s.wait_subscribed().await;

    let api = reqwest::Client::new();
    let added: Value = api
        .post(s.url("/api/add"))
        .bearer_auth(TOKEN)
        .json(&json!({"amount": 1, "cpus": 0.2, "mem": 128}))
        .send()
        .await
        .expect("add")
        .json()
        .await
        .expect("add JSON");
    assert_eq!(added["success"], true, "{added}");
    s.wait_server_state(1, "Running").await;

    let browser = Browser::start(&s.path("chromedriver.log")).await;
    browser.go(&s.url("/")).await;

    // The first paint already has the framework and the task table.
    let title = browser.eval("return document.title").await;
    assert_eq!(title, "mmm-test · mmm status");
    let shown_id = browser
        .eval("return document.getElementById('framework-id').textContent")
        .await;
    assert_eq!(shown_id, framework_id.as_str());
    let row = browser
        .wait_for(
            "task 1 to show Running with its host and topic",
            "const r = document.querySelector('#task-1'); return r && r.dataset.state === 'Running' && r.querySelector('.host').textContent !== '–' && r.querySelector('.topics').textContent",
        )
        .await;
    assert_eq!(row, topic.as_str());

    // Without the token the API refuses, and the page says why.
    browser.click("#add").await;
    let refusal = browser
        .wait_for(
            "the refusal to be shown",
            "const n = document.getElementById('notice'); return n.className === 'error' && n.textContent",
        )
        .await;
    let refusal = refusal.as_str().expect("text");
    assert!(
        refusal.contains("401") && refusal.contains("Authorization: Bearer"),
        "{refusal}"
    );
    assert_eq!(s.servers().await.len(), 1, "a refused add changes nothing");

    // With the token it goes through and the new task comes up.
    browser.type_into("#token", TOKEN).await;
    browser.click("#add").await;
    browser
        .wait_for(
            "the add to be confirmed",
            "const n = document.getElementById('notice'); return n.className === 'ok' && n.textContent === 'Added 1 tasks successfully.'",
        )
        .await;
    browser
        .wait_for(
            "task 2 to reach Running on the page",
            &format!("{ROW_STATE}(2) === 'Running'"),
        )
        .await;
    let stored = browser
        .eval("return sessionStorage.getItem('mmm-api-token')")
        .await;
    assert_eq!(stored, TOKEN);
    let api_view = s.wait_server_state(2, "Running").await;
    assert_eq!(api_view["id"], 2);

    // Both tasks mirror, and the chart draws a rate line for each.
    browser
        .wait_for(
            "a rate line of several points per task",
            "const lines = [...document.querySelectorAll('#chart .rate polyline')]; return lines.length === 2 && lines.every(l => l.getAttribute('points').split(' ').length >= 8)",
        )
        .await;
    browser
        .wait_for(
            "records/s out above zero for both tasks",
            "return [1, 2].every(n => parseFloat(document.querySelector('#task-' + n + ' .out').textContent.replace(/\\s/g, '')) > 0)",
        )
        .await;

    let png = artifact_path();
    browser.screenshot(&png).await;
    eprintln!("screenshot: {}", png.display());

    // With scripting off the first paint alone shows the tasks, and hides
    // the buttons that could not work.
    browser
        .cdp(
            "Emulation.setScriptExecutionDisabled",
            json!({"value": true}),
        )
        .await;
    browser.go(&s.url("/")).await;
    assert_eq!(browser.text("#task-2 .state").await, "Running");
    assert_eq!(browser.text("#task-1 .topics").await, topic);
    assert!(!browser.displayed("#add").await, "no script, no add button");
    browser.quit().await;
    sim.shutdown().await;
}
