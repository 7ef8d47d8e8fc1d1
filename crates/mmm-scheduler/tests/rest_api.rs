//! The REST API of the real binary on bad input: 4xx, success false, a
//! message naming the problem, and the cluster unchanged.

mod common;

use common::Scheduler;
use mesos_sim::{MesosSim, SimConfig};
use serde_json::Value;

async fn refused(
    s: &Scheduler,
    path: &str,
    body: impl Into<reqwest::Body>,
    expect_status: u16,
    needle: &str,
) {
    let (status, json) = s.post(path, body).await;
    assert_eq!(status, expect_status, "{path}: {json}");
    assert_eq!(json["success"], false, "{json}");
    let message = json["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(needle),
        "{path}: message {message:?} should name {needle:?}"
    );
    assert!(json["value"]["servers"].is_array(), "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_and_change_nothing() {
    // Nothing to offer: the added server stays put while we poke the API.
    let sim = MesosSim::start(SimConfig {
        agents: Vec::new(),
        ..SimConfig::default().fast()
    })
    .await
    .expect("sim");
    let mut s = Scheduler::new(&sim.master_url(), "");
    s.start().await;
    s.wait_subscribed().await;

    let (status, body) = s.get("/ping").await;
    assert_eq!((status, body.as_str()), (200, "pong"));

    let (status, json) = s
        .post("/api/add", r#"{"amount": 1, "producer": {"linger.ms": 7}}"#)
        .await;
    assert_eq!(status, 200, "{json}");
    let before: Vec<Value> = s.servers().await;
    assert_eq!(before.len(), 1);

    // Credentials and connections come from the operator's files only.
    refused(
        &s,
        "/api/add",
        r#"{"amount": 1, "consumer": {"sasl.password": "s3cret-override"}}"#,
        400,
        "\"sasl.password\"",
    )
    .await;
    refused(&s, "/api/add", "{not json", 400, "malformed JSON").await;
    refused(&s, "/api/add", "", 400, "empty request body").await;
    refused(&s, "/api/add", "[1,2]", 400, "JSON object").await;
    refused(
        &s,
        "/api/add",
        r#"{"amount": "two"}"#,
        400,
        "amount: invalid type: string",
    )
    .await;
    refused(
        &s,
        "/api/add",
        r#"{"amount": 1, "cpus": "lots"}"#,
        400,
        "cpus: invalid type: string",
    )
    .await;
    refused(
        &s,
        "/api/add",
        r#"{"amount": 1, "topics": "a", "topics_regex": "b"}"#,
        400,
        "topic",
    )
    .await;
    refused(&s, "/api/add", r#"{"amount": -3}"#, 400, "-3").await;
    refused(&s, "/api/add", r#"{"amount": 0}"#, 400, "at least 1").await;
    refused(&s, "/api/add", r#"{"amount": 1000000000}"#, 400, "maximum").await;
    refused(
        &s,
        "/api/add",
        r#"{"amount": 99999999999999999999999}"#,
        400,
        "out of range",
    )
    .await;
    refused(&s, "/api/add", r#"{"amount": 1, "cpus": -1}"#, 400, "cpus").await;
    refused(&s, "/api/add", r#"{"amount": 1, "mem": 1e300}"#, 400, "mem").await;
    refused(
        &s,
        "/api/add",
        r#"{"amount": 1, "colour": "red"}"#,
        400,
        "unknown field `colour`",
    )
    .await;
    refused(&s, "/api/delete", r#"{"ids": [42]}"#, 404, "42").await;
    refused(&s, "/api/delete", r#"{"ids": ["one"]}"#, 400, "ids").await;
    refused(&s, "/api/delete", r#"{"ids": [-1]}"#, 400, "-1").await;
    refused(&s, "/api/delete", r#"{}"#, 400, "missing field `ids`").await;
    refused(&s, "/api/stop", r#"{"ids": [7]}"#, 404, "7").await;
    refused(&s, "/api/start", r#"{"ids": [1, 8]}"#, 404, "8").await;
    let big = format!(
        r#"{{"amount": 1, "topics": ["{}"]}}"#,
        "x".repeat(100 * 1024)
    );
    refused(&s, "/api/add", big, 413, "larger than").await;

    // A page of another site cannot drive the API through the operator's browser.
    let cross = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/api/add", s.api_port))
        .header("Origin", "http://evil.example")
        .header("Content-Type", "text/plain")
        .body(r#"{"amount": 5}"#)
        .send()
        .await
        .expect("request");
    assert_eq!(cross.status().as_u16(), 403);
    let cross: Value = cross.json().await.expect("json");
    assert!(
        cross["message"]
            .as_str()
            .unwrap_or_default()
            .contains("cross-origin"),
        "{cross}"
    );

    let after = s.servers().await;
    assert_eq!(
        after, before,
        "refused requests must not change the cluster"
    );

    // Secrets never leave the scheduler, not in answers nor in logs.
    let (_, status_body) = s.get("/api/status").await;
    assert!(!status_body.contains("s3cret-override"), "{status_body}");
    let logs = s.logs();
    assert!(
        !logs.contains("s3cret-override") && !logs.contains("hunter2-consumer"),
        "a secret leaked into the log"
    );

    // Unknown endpoints and dist paths outside dist/.
    let (status, _) = s.get("/api/nope").await;
    assert_eq!(status, 404);
    let (status, body) = s.get("/dist/mmm-executor").await;
    assert_eq!(status, 200);
    assert!(body.starts_with("#!/bin/sh"));
    let (status, _) = s.get("/dist/..%2Fmmm.toml").await;
    assert_eq!(status, 400);
    let (status, _) = s.get("/dist/%2Fetc%2Fpasswd").await;
    assert_eq!(status, 400);
    let (status, _) = s.get("/dist/missing").await;
    assert_eq!(status, 404);

    let (status, metrics) = s.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("mmm_subscribed 1"), "{metrics}");
    assert!(
        metrics.contains("mmm_tasks{state=\"Added\"} 1")
            || metrics.contains("mmm_tasks{state=\"Starting\"} 1"),
        "{metrics}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_token_protects_the_mutating_calls() {
    let sim = MesosSim::start(SimConfig {
        agents: Vec::new(),
        ..SimConfig::default().fast()
    })
    .await
    .expect("sim");
    let mut s = Scheduler::new(&sim.master_url(), "");
    std::fs::write(s.path("api-token"), "t0ken\n").expect("token file");
    std::fs::set_permissions(
        s.path("api-token"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    let toml = std::fs::read_to_string(s.path("mmm.toml")).expect("config");
    let toml = toml.replace(
        "[mirror]",
        &format!(
            "token_file = \"{}\"\n\n[mirror]",
            s.path("api-token").display()
        ),
    );
    std::fs::write(s.path("mmm.toml"), toml).expect("config");
    s.start().await;

    refused(&s, "/api/add", r#"{"amount": 1}"#, 401, "Authorization").await;
    let client = reqwest::Client::new();
    let wrong = client
        .post(s.url("/api/add"))
        .bearer_auth("nope")
        .body(r#"{"amount": 1}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(wrong.status(), 401);
    let right = client
        .post(s.url("/api/add"))
        .bearer_auth("t0ken")
        .header("Content-Type", "application/json")
        .body(r#"{"amount": 1}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(right.status(), 200);
    // Reading needs no token.
    assert_eq!(s.servers().await.len(), 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_whose_state_cannot_be_stored_fails_and_changes_nothing() {
    let sim = MesosSim::start(SimConfig::with_agents(1).fast())
        .await
        .expect("sim");
    let mut s = Scheduler::new(&sim.master_url(), "");
    s.start().await;
    s.wait_subscribed().await;
    let (status, json) = s.post("/api/add", r#"{"amount": 1}"#).await;
    assert_eq!(status, 200, "{json}");
    s.wait_server_state(1, "Running").await;
    let before = s.servers().await;
    let tasks_before = sim.tasks().len();

    // A file where the state directory was: every write of the state fails.
    let state_dir = s.path("state");
    std::fs::rename(&state_dir, s.path("state.moved")).expect("move the state dir away");
    std::fs::write(&state_dir, b"not a directory").expect("block the state dir");

    refused(
        &s,
        "/api/add",
        r#"{"amount": 2}"#,
        503,
        "could not be stored",
    )
    .await;
    refused(
        &s,
        "/api/delete",
        r#"{"ids": [1]}"#,
        503,
        "could not be stored",
    )
    .await;
    assert_eq!(s.servers().await, before, "the cluster is unchanged");
    assert_eq!(sim.tasks().len(), tasks_before, "nothing was launched");
    let live: Vec<_> = sim.tasks().into_iter().filter(|t| t.live).collect();
    assert_eq!(live.len(), 1, "nothing was killed: {live:?}");
    assert_eq!(live[0].state, "TASK_RUNNING");

    std::fs::remove_file(&state_dir).expect("unblock");
    std::fs::rename(s.path("state.moved"), &state_dir).expect("move back");
    let (status, json) = s.post("/api/delete", r#"{"ids": [1]}"#).await;
    assert_eq!(status, 200, "{json}");
    sim.shutdown().await;
}
