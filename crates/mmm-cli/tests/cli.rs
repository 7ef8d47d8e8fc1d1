//! The real `mmm-cli` binary against a fake REST API on a loopback port.

mod fake_api;

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use fake_api::FakeApi;
use serde_json::{json, Value};

const NO_SERVERS: &str = "No servers were added. Add servers with 'add' command.";
const CLEAR_SCREEN: &str = "\x1b[2J\x1b[H";

fn cli_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mmm-cli"));
    command
        .args(args)
        .env_remove("MMM_API")
        .env_remove("MMM_API_TOKEN")
        .envs(env.iter().copied());
    command
}

fn cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    cli_command(args, env).output().expect("run mmm-cli")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("utf-8 stderr")
}

fn ok_answer(servers: Value) -> String {
    json!({"success": true, "message": "", "value": {"servers": servers}}).to_string()
}

/// A child process killed when dropped, also when the test panics.
struct Running(Option<Child>);

impl Running {
    fn finish(mut self) -> Output {
        let mut child = self.0.take().expect("child present");
        let _ = child.kill();
        child.wait_with_output().expect("collect output")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn add_posts_the_request_and_prints_the_original_layout() {
    let api = FakeApi::start();
    api.reply(
        "/api/add",
        200,
        &ok_answer(
            json!([{"id": 1, "state": "Added", "cpus": 0.2, "mem": 256, "topics": ["a", "b"]}]),
        ),
    );
    let base = api.base();
    let output = cli(
        &[
            "--api", &base, "add", "1", "--cpus", "0.2", "--mem", "256", "--topics", "a,b",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "Added 1 tasks successfully.\nCluster:\n  server:\n    id: 1\n    state: Added\n    task configuration:\n      cpu: 0.2\n      mem: 256.0\n      topics: a, b\n"
    );
    let requests = api.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/api/add");
    assert_eq!(
        requests[0].content_type.as_deref(),
        Some("application/json")
    );
    assert_eq!(
        requests[0].body,
        Some(json!({"amount": 1, "cpus": 0.2, "mem": 256.0, "topics": ["a", "b"]}))
    );
    assert_eq!(requests[0].authorization, None);
}

#[test]
fn add_with_a_topic_regex_sends_only_the_regex() {
    let api = FakeApi::start();
    api.reply("/api/add", 200, &ok_answer(json!([])));
    let base = api.base();
    let output = cli(
        &["--api", &base, "add", "3", "--topics-regex", "^orders\\..*"],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    assert_eq!(
        api.requests()[0].body,
        Some(json!({"amount": 3, "topics_regex": "^orders\\..*"}))
    );
}

#[test]
fn status_uses_mmm_api_and_shows_host_rate_and_lag() {
    let api = FakeApi::start();
    api.reply(
        "/api/status",
        200,
        &ok_answer(json!([
            {"id": 1, "state": "Running", "cpus": 0.5, "mem": 512.0, "topics": ["t1"],
             "hostname": "agent-1",
             "metrics": {"received_ms": 5, "document": {"records_per_s": 2500.25, "lag": 42}}},
            {"id": 2, "state": "Added", "cpus": 0.2, "mem": 256.0, "topics_regex": "^x"}
        ])),
    );
    let base = api.base();
    let output = cli(&["status"], &[("MMM_API", &base)]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "Cluster:\n  server:\n    id: 1\n    state: Running\n    task configuration:\n      cpu: 0.5\n      mem: 512.0\n      topics: t1\n    agent host: agent-1\n    records/s: 2500.2\n    lag: 42\n  server:\n    id: 2\n    state: Added\n    task configuration:\n      cpu: 0.2\n      mem: 256.0\n      topics regex: ^x\n"
    );
    let requests = api.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("GET", "/api/status")
    );
}

#[test]
fn status_of_an_empty_cluster_says_how_to_add_servers() {
    let api = FakeApi::start();
    api.reply("/api/status", 200, &ok_answer(json!([])));
    let base = api.base();
    let output = cli(&["--api", &base, "status"], &[]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stdout(&output), format!("Cluster:\n{NO_SERVERS}\n"));
}

#[test]
fn delete_start_and_stop_post_their_ids() {
    for (command, verb) in [("delete", "Delete"), ("start", "Start"), ("stop", "Stop")] {
        let api = FakeApi::start();
        api.reply(&format!("/api/{command}"), 200, &ok_answer(json!([])));
        let base = api.base();
        let output = cli(&["--api", &base, command, "1", "3"], &[]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{command}: {}",
            stderr(&output)
        );
        assert_eq!(
            stdout(&output),
            format!(
                "{verb} servers request (ids=1,3) was sent successfully.\nCluster:\n{NO_SERVERS}\n"
            )
        );
        let requests = api.requests();
        assert_eq!(requests.len(), 1, "{command}");
        assert_eq!(requests[0].method, "POST", "{command}");
        assert_eq!(requests[0].path, format!("/api/{command}"));
        assert_eq!(requests[0].body, Some(json!({"ids": [1, 3]})), "{command}");
    }
}

#[test]
fn json_prints_the_apis_answer_on_every_command() {
    let api = FakeApi::start();
    let answer = json!({"success": true, "message": "ok", "value": {"servers": [
        {"id": 4, "state": "Starting", "cpus": 1.5, "mem": 100, "future_field": {"x": [1, 2]}}
    ]}});
    for path in [
        "/api/status",
        "/api/add",
        "/api/delete",
        "/api/start",
        "/api/stop",
    ] {
        api.reply(path, 200, &answer.to_string());
    }
    let base = api.base();
    let runs: [&[&str]; 5] = [
        &["status", "--json"],
        &["--json", "add", "2"],
        &["delete", "4", "--json"],
        &["start", "4", "--json"],
        &["stop", "4", "--json"],
    ];
    for args in runs {
        let output = cli(&[&["--api", &base], args].concat(), &[]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
        let printed: Value = serde_json::from_str(&stdout(&output))
            .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {}", stdout(&output)));
        assert_eq!(printed, answer, "{args:?}");
    }
    assert_eq!(api.requests().len(), 5);
}

#[test]
fn a_refusal_exits_1_with_the_apis_message() {
    let api = FakeApi::start();
    api.reply(
        "/api/delete",
        400,
        &json!({"success": false, "message": "unknown server ids: 9", "value": {"servers": []}})
            .to_string(),
    );
    api.reply(
        "/api/start",
        200,
        &json!({"success": false, "message": "server 2 is being deleted"}).to_string(),
    );
    api.reply("/api/stop", 500, "internal trouble");
    let base = api.base();

    let output = cli(&["--api", &base, "delete", "9"], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("unknown server ids: 9"),
        "{}",
        stderr(&output)
    );
    assert_eq!(stdout(&output), "");

    let output = cli(&["--api", &base, "start", "2"], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("server 2 is being deleted"),
        "{}",
        stderr(&output)
    );

    let output = cli(&["--api", &base, "stop", "2"], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("HTTP 500"), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("internal trouble"),
        "{}",
        stderr(&output)
    );

    // With --json the refusal's JSON still reaches stdout for scripts.
    let output = cli(&["--api", &base, "--json", "delete", "9"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let printed: Value = serde_json::from_str(&stdout(&output)).expect("JSON on stdout");
    assert_eq!(printed["success"], json!(false));
}

#[test]
fn an_answer_that_is_not_the_apis_json_exits_1() {
    let api = FakeApi::start();
    api.reply("/api/status", 200, "<html>a proxy page</html>");
    let base = api.base();
    let output = cli(&["--api", &base, "status"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(text.contains(&format!("{base}/status")), "{text}");
    assert!(text.contains("a proxy page"), "{text}");
}

#[test]
fn usage_errors_exit_2_and_send_nothing() {
    let api = FakeApi::start();
    let base = api.base();
    for args in [
        vec!["--api", &base, "add", "0"],
        vec!["--api", &base, "add", "many"],
        vec!["--api", &base, "delete"],
        vec!["--api", &base, "stop", "x"],
        vec!["--api", &base, "frobnicate"],
        vec![
            "--api",
            &base,
            "add",
            "1",
            "--topics",
            "a",
            "--topics-regex",
            "b",
        ],
        vec!["--api", "ftp://127.0.0.1:1/api", "status"],
    ] {
        let output = cli(&args, &[]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(!stderr(&output).is_empty(), "{args:?} explains itself");
    }
    assert!(api.requests().is_empty());
}

#[test]
fn a_missing_api_explains_both_ways_to_give_it() {
    let output = cli(&["status"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(text.contains("--api") && text.contains("MMM_API"), "{text}");
}

#[test]
fn an_unreachable_api_gives_one_line_naming_the_url() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let base = format!("http://127.0.0.1:{port}/api");
    let output = cli(&["--api", &base, "status"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains(&format!("{base}/status")), "{text}");
}

#[test]
fn the_token_is_sent_as_a_bearer_header() {
    let api = FakeApi::start();
    api.reply("/api/status", 200, &ok_answer(json!([])));
    let base = api.base();
    let dir = tempfile::tempdir().expect("temp dir");
    let token_file = dir.path().join("api-token");
    std::fs::write(&token_file, "file-token\n").expect("write token");
    let token_path = token_file.to_str().expect("utf-8 path");

    let from_file = cli(&["--api", &base, "--token-file", token_path, "status"], &[]);
    assert_eq!(from_file.status.code(), Some(0), "{}", stderr(&from_file));
    let from_env = cli(
        &["--api", &base, "status"],
        &[("MMM_API_TOKEN", "env-token")],
    );
    assert_eq!(from_env.status.code(), Some(0), "{}", stderr(&from_env));

    let headers: Vec<Option<String>> = api
        .requests()
        .into_iter()
        .map(|r| r.authorization)
        .collect();
    assert_eq!(
        headers,
        [
            Some("Bearer file-token".to_string()),
            Some("Bearer env-token".to_string())
        ]
    );

    let missing = dir.path().join("absent");
    let output = cli(
        &[
            "--api",
            &base,
            "--token-file",
            missing.to_str().expect("utf-8"),
            "status",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("absent"), "{}", stderr(&output));
}

#[test]
fn a_base_without_a_path_gets_api_appended() {
    let api = FakeApi::start();
    api.reply("/api/status", 200, &ok_answer(json!([])));
    let root = api.root();
    let output = cli(&["--api", &root, "status"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(api.requests()[0].path, "/api/status");
}

#[test]
fn status_watch_redraws_until_interrupted() {
    let api = FakeApi::start();
    api.reply(
        "/api/status",
        200,
        &ok_answer(json!([{"id": 1, "state": "Running", "cpus": 0.2, "mem": 256}])),
    );
    let base = api.base();
    let child = cli_command(
        &["--api", &base, "status", "--watch", "--interval", "1"],
        &[],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn mmm-cli");
    let running = Running(Some(child));
    // The CLI flushes a frame before it sleeps and asks again, so a third
    // request proves two complete frames were written; after the second
    // request alone the second frame may still be unwritten.
    let requests = api.wait_for_requests(3, Duration::from_secs(20));
    assert!(requests.iter().all(|r| r.path == "/api/status"));
    let output = running.finish();
    let text = stdout(&output);
    assert!(text.matches(CLEAR_SCREEN).count() >= 2, "{text:?}");
    assert!(
        text.matches("    state: Running\n").count() >= 2,
        "{text:?}"
    );
}

#[test]
fn status_shows_translation_lag_and_group_syncs_of_the_schedulers_answer() {
    use mmm_core::model::{Cluster, Metrics, TaskConfig};
    use mmm_core::rest::{Answer, ServersValue};

    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64;
    let mut cluster = Cluster::new();
    let task = TaskConfig {
        cpus: 0.5,
        mem: 512.0,
        topics: vec!["orders".into()],
        topics_regex: None,
        consumer: Default::default(),
        producer: Default::default(),
    };
    let id = cluster.add(None, task.clone(), 0).expect("add");
    cluster.get_mut(id).expect("server").metrics = Some(Metrics {
        received_ms: now_ms,
        document: json!({"kind": "metrics", "produce_rate": 10.0,
            "offset_syncs": {"topic": "mmm-offset-syncs",
                "translation_lag": {"orders-0": 4, "orders-1": 90}, "last_sync_unix_ms": now_ms},
            "group_syncs": {"billing": {"last_sync_unix_ms": now_ms - 3_600_000, "partitions": 2}}}),
    });
    // An executor of before offset syncs.
    let old = cluster.add(None, task, 0).expect("add");
    cluster.get_mut(old).expect("server").metrics = Some(Metrics {
        received_ms: now_ms,
        document: json!({"kind": "metrics", "produce_rate": 10.0, "lag": {"orders-0": 1}}),
    });
    // The bytes the scheduler's /api/status sends for this cluster.
    let answer = serde_json::to_string(&Answer {
        message: String::new(),
        success: true,
        value: ServersValue::of(&cluster),
    })
    .expect("json");
    let api = FakeApi::start();
    api.reply("/api/status", 200, &answer);
    let base = api.base();

    let output = cli(&["--api", &base, "status"], &[]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    let text = stdout(&output);
    let (first, second) = text.split_once("    id: 2\n").expect("two servers");
    assert!(
        first.contains("    translation lag: 90 (orders-1)\n"),
        "{text}"
    );
    // An hour, give or take the second this test takes.
    assert!(
        first.contains("    group billing: synced 1 h 00 min ago (2 partitions)\n")
            || first.contains("    group billing: synced 1 h 01 min ago (2 partitions)\n"),
        "{text}"
    );
    assert!(
        !second.contains("translation") && !second.contains("group "),
        "{text}"
    );

    let output = cli(&["--api", &base, "status", "--json"], &[]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    let printed: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    let servers = &printed["value"]["servers"];
    assert_eq!(
        servers[0]["translation_lag"],
        json!({"orders-0": 4, "orders-1": 90})
    );
    assert_eq!(servers[0]["group_syncs"]["billing"]["partitions"], 2);
    assert_eq!(
        servers[0]["group_syncs"]["billing"]["last_sync_unix_ms"],
        now_ms - 3_600_000
    );
    assert!(servers[1].get("translation_lag").is_none(), "{printed}");
    assert!(servers[1].get("group_syncs").is_none(), "{printed}");
}
