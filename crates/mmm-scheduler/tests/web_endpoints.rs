//! The status page and its data, served by the scheduler's real router
//! in-process over loopback, with API protection switched on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mmm_core::model::{Cluster, Metrics, ServerState, TaskConfig};
use mmm_core::scheduler::Command;
use mmm_scheduler::access::{self, Access, TokenFile};
use mmm_scheduler::api::{self, ApiState};
use mmm_scheduler::dist::Dist;
use mmm_scheduler::driver::{now_ms, CommandSender, Input};
use mmm_scheduler::mesos::connection::SubscriptionState;
use mmm_scheduler::metrics::Metrics as SchedulerMetrics;
use mmm_scheduler::web::{self, WebState};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

const TOKEN: &str = "s3cret-token";

struct Served {
    base: String,
    client: reqwest::Client,
    view: watch::Sender<Arc<Cluster>>,
    _subscription: watch::Sender<SubscriptionState>,
    _dist: tempfile::TempDir,
}

async fn serve() -> (Served, mpsc::Receiver<Input>) {
    let dist = tempfile::tempdir().expect("dist dir");
    let (view_tx, view_rx) = watch::channel(Arc::new(Cluster::new()));
    let (sub_tx, sub_rx) = watch::channel(SubscriptionState::Subscribed {
        framework_id: "fw-web-1".into(),
        master: "http://127.0.0.1:5050".into(),
    });
    let (input_tx, input_rx) = mpsc::channel(16);
    let web = WebState::start(
        "mmm-web-test".into(),
        view_rx.clone(),
        sub_rx.clone(),
        true,
        false,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let bound = listener.local_addr().expect("addr");
    let base = format!("http://{bound}");
    let token_file = dist.path().join("api-token");
    std::fs::write(&token_file, TOKEN).expect("token file");
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    let access = Access::new(
        Some(TokenFile::open(&token_file).expect("token")),
        access::allowed_hosts(&base, bound, &[]),
    );
    let app = api::app(
        ApiState {
            commands: CommandSender(input_tx),
            view: view_rx,
            subscription: sub_rx,
            metrics: Arc::new(SchedulerMetrics::default()),
            dist: Arc::new(Dist::open(&dist.path().join("dist")).expect("dist")),
            access: Arc::new(access),
        },
        web::router(web),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let served = Served {
        base,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client"),
        view: view_tx,
        _subscription: sub_tx,
        _dist: dist,
    };
    (served, input_rx)
}

impl Served {
    async fn get(&self, path: &str) -> (u16, String, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        let kind = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (status, kind, r.text().await.expect("body"))
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = self.client.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let r = request.send().await.expect("POST");
        let status = r.status().as_u16();
        (status, r.json().await.expect("JSON answer"))
    }
}

fn cluster_with_a_running_task(report_at_ms: u64, rate: f64) -> Cluster {
    let mut cluster = Cluster::new();
    let task = TaskConfig {
        cpus: 0.5,
        mem: 256.0,
        topics: vec!["<script>alert('topic')</script>".into()],
        topics_regex: None,
        consumer: Default::default(),
        producer: Default::default(),
    };
    let id = cluster.add(None, task, report_at_ms).expect("add");
    let server = cluster.get_mut(id).expect("server");
    server
        .transition(ServerState::Starting, report_at_ms, None)
        .expect("starting");
    server
        .transition(
            ServerState::Running,
            report_at_ms,
            Some("<img src=x onerror=alert(1)>".into()),
        )
        .expect("running");
    server.hostname = Some("agent-a".into());
    server.metrics = Some(Metrics {
        received_ms: report_at_ms,
        document: json!({"kind": "metrics", "produce_rate": rate, "consume_rate": rate,
            "lag": {"t-0": 7}, "last_commit_unix_ms": report_at_ms}),
    });
    cluster
}

async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_data_are_served_without_a_token() {
    let (s, _commands) = serve().await;
    let now = now_ms();
    s.view
        .send_replace(Arc::new(cluster_with_a_running_task(now, 250.0)));

    let (status, kind, html) = s.get("/").await;
    assert_eq!(status, 200, "{html}");
    assert!(kind.starts_with("text/html"), "{kind}");
    for needle in [
        r#"<dd id="framework-id">fw-web-1</dd>"#,
        r#"<tr id="task-1" data-state="Running">"#,
        r#"<td class="host">agent-a</td>"#,
        "&lt;script&gt;alert(&#39;topic&#39;)&lt;/script&gt;",
        "&lt;img src=x onerror=alert(1)&gt;",
        r#"<script src="/assets/status.js" defer></script>"#,
    ] {
        assert!(html.contains(needle), "missing {needle:?} in\n{html}");
    }
    assert!(!html.contains("<script>alert") && !html.contains("<img src=x"));

    let (status, kind, js) = s.get("/assets/status.js").await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/javascript"), "{kind}");
    assert!(
        js.contains("'Bearer '") && js.contains("sessionStorage"),
        "{js}"
    );
    let (status, kind, _) = s.get("/assets/status.css").await;
    assert_eq!((status, kind.starts_with("text/css")), (200, true));

    // The chart's sampler saw the executor report.
    let dashboard: Value = eventually("a sample of task 1", async || {
        let (_, _, body) = s.get("/api/dashboard").await;
        let v: Value = serde_json::from_str(&body).expect("dashboard JSON");
        (v["samples"]["1"].as_array().map(Vec::len) == Some(1)).then_some(v)
    })
    .await;
    assert_eq!(dashboard["framework"]["id"], "fw-web-1");
    assert_eq!(dashboard["framework"]["subscription"], "subscribed");
    assert_eq!(dashboard["protected"], true);
    assert_eq!(dashboard["tasks"][0]["records_out_per_sec"], 250.0);
    assert_eq!(dashboard["tasks"][0]["lag"], 7.0);
    assert_eq!(dashboard["samples"]["1"][0]["records_out_per_sec"], 250.0);

    // A second report is a second sample, and the fragments carry it.
    s.view
        .send_replace(Arc::new(cluster_with_a_running_task(now + 1000, 500.0)));
    let fragments: Value = eventually("a second sample", async || {
        let (_, kind, body) = s.get("/status/fragments").await;
        assert!(kind.starts_with("application/json"), "{kind}");
        let v: Value = serde_json::from_str(&body).expect("fragments JSON");
        v["chart"]
            .as_str()
            .is_some_and(|svg| svg.contains(r#"<polyline class="series" data-task="1""#))
            .then_some(v)
    })
    .await;
    let rows = fragments["rows"].as_str().expect("rows");
    assert!(rows.contains(">500</td>"), "{rows}");
    assert!(!rows.contains("<script>alert"), "{rows}");
    let (_, _, body) = s.get("/api/dashboard").await;
    let v: Value = serde_json::from_str(&body).expect("dashboard JSON");
    assert_eq!(v["samples"]["1"].as_array().map(Vec::len), Some(2), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_stay_open_and_changes_need_the_token() {
    let (s, mut commands) = serve().await;
    for (path, expected) in [
        ("/", 200),
        ("/ping", 200),
        ("/api/status", 200),
        ("/api/dashboard", 200),
        ("/status/fragments", 200),
        ("/health", 200),
        ("/metrics", 200),
        // open, and there is no such file
        ("/dist/mmm-executor", 404),
    ] {
        let (status, _, body) = s.get(path).await;
        assert_eq!(status, expected, "GET {path}: {body}");
    }

    for (action, body) in [
        ("add", json!({"amount": 1})),
        ("stop", json!({"ids": [1]})),
        ("start", json!({"ids": [1]})),
        ("delete", json!({"ids": [1]})),
    ] {
        let path = format!("/api/{action}");
        let (status, json) = s.post(&path, None, body.clone()).await;
        assert_eq!(status, 401, "{path}: {json}");
        assert_eq!(json["success"], false);
        assert!(
            json["message"]
                .as_str()
                .is_some_and(|m| m.contains("Authorization: Bearer")),
            "{json}"
        );
        let (status, json) = s.post(&path, Some("wrong"), body).await;
        assert_eq!(status, 401, "{path}: {json}");
        assert_eq!(json["message"], "invalid API token");
    }
    assert!(
        commands.try_recv().is_err(),
        "a refused call must not reach the scheduler"
    );

    // With the token the call goes through to the scheduler.
    let (answer, command) = tokio::join!(
        s.post("/api/add", Some(TOKEN), json!({"amount": 2})),
        async {
            match commands.recv().await {
                Some(Input::Command { command, reply }) => {
                    drop(reply);
                    command
                }
                other => panic!("expected a command, got {other:?}"),
            }
        }
    );
    assert!(
        matches!(&command, Command::Add(a) if a.count == 2),
        "{command:?}"
    );
    // The stand-in scheduler hung up without answering.
    assert_eq!(answer.0, 503, "{}", answer.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn translation_lag_and_group_syncs_reach_the_status_the_metrics_and_the_page() {
    let (s, _commands) = serve().await;
    let now = now_ms();
    let mut cluster = cluster_with_a_running_task(now, 250.0);
    // A second task whose executor predates offset syncs.
    let second = cluster
        .add(None, cluster.get(1).expect("task 1").task.clone(), now)
        .expect("add");
    cluster.get_mut(second).expect("task 2").metrics = Some(Metrics {
        received_ms: now,
        document: json!({"kind": "metrics", "produce_rate": 5.0, "lag": {"t-0": 1}}),
    });
    // The document as the executor sends it: the replication report flattened in.
    cluster.get_mut(1).expect("task 1").metrics = Some(Metrics {
        received_ms: now,
        document: json!({"kind": "metrics", "produce_rate": 250.0, "lag": {"t-0": 7},
            "offset_syncs": {"topic": "mmm-offset-syncs",
                "translation_lag": {"t-0": 2, "t-1": 31}, "last_sync_unix_ms": now,
                "syncs_written": 12, "error": null},
            "group_syncs": {"billing": {"last_sync_unix_ms": now - 5_000, "partitions": 2,
                "skipped": null}}}),
    });
    s.view.send_replace(Arc::new(cluster));

    let (status, _, body) = s.get("/api/status").await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("status JSON");
    let servers = &answer["value"]["servers"];
    assert_eq!(servers[0]["translation_lag"], json!({"t-0": 2, "t-1": 31}));
    assert_eq!(
        servers[0]["group_syncs"],
        json!({"billing": {"last_sync_unix_ms": now - 5_000, "partitions": 2, "skipped": null}})
    );
    assert!(servers[1].get("translation_lag").is_none(), "{body}");
    assert!(servers[1].get("group_syncs").is_none(), "{body}");

    let (status, _, text) = s.get("/metrics").await;
    assert_eq!(status, 200, "{text}");
    for line in [
        "mmm_offset_translation_lag{server=\"1\",partition=\"t-1\"} 31".to_string(),
        format!(
            "mmm_group_sync_last_unix_ms{{server=\"1\",group=\"billing\"}} {}",
            now - 5_000
        ),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(!text.contains("server=\"2\""), "{text}");

    let (status, _, html) = s.get("/").await;
    assert_eq!(status, 200, "{html}");
    for needle in [
        r#"translation lag <span class="figure">31</span> <span class="partition">t-1</span>"#,
        r#"<span class="name">billing</span> <time title="#,
        // Five seconds, or a few more on a slow machine.
        " s ago</time></div>",
    ] {
        assert!(html.contains(needle), "missing {needle:?} in\n{html}");
    }
}
