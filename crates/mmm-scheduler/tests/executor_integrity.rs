//! The executor binary an agent fetches runs only if it is, byte for byte,
//! the one the scheduler verified: the launch command checks its sha256 in
//! the sandbox. Here the fetch goes through a tampering server (as a
//! man-in-the-middle would) that changes one byte; the real scheduler and
//! mesos-sim's agents (which run the command with `sh -c`, like Mesos) do
//! the rest.

mod common;

use std::fs;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use common::{wait_until, Scheduler};
use mesos_sim::{MesosSim, SimConfig};

/// Serves `dist/mmm-executor` with its last byte changed.
async fn tampering_server(original: Vec<u8>) -> String {
    let mut tampered = original;
    if let Some(last) = tampered.last_mut() {
        *last ^= 0x20;
    }
    let tampered = Arc::new(tampered);
    let app = Router::new().route(
        "/dist/mmm-executor",
        get(move || {
            let body = tampered.clone();
            async move { body.as_ref().clone() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_changed_on_the_wire_never_runs_and_the_task_says_why() {
    let sim = MesosSim::start(SimConfig::with_agents(1).fast())
        .await
        .expect("sim");
    let mut s = Scheduler::new(&sim.master_url(), "max_launch_attempts = 1");
    let original = fs::read(s.path("dist/mmm-executor")).expect("executor");
    let ran_marker = s.path("executor-ran");
    // The genuine executor would record that it ran.
    let genuine = String::from_utf8(original).expect("script").replace(
        "exec '",
        &format!("touch '{}'; exec '", ran_marker.display()),
    );
    fs::write(s.path("dist/mmm-executor"), &genuine).expect("executor");
    let tamperer = tampering_server(genuine.into_bytes()).await;
    let toml = fs::read_to_string(s.path("mmm.toml")).expect("config");
    let toml = toml.replace(
        "[mirror]",
        &format!("advertised_url = \"{tamperer}\"\n\n[mirror]"),
    );
    fs::write(s.path("mmm.toml"), toml).expect("config");
    s.start().await;
    s.wait_subscribed().await;

    let (status, json) = s.post("/api/add", r#"{"amount": 1}"#).await;
    assert_eq!(status, 200, "{json}");
    s.wait_server_state(1, "Failed").await;
    // The executor's FAILURE and the task's TASK_FAILED arrive in either
    // order; once both are in, the task says why.
    let message = wait_until(
        "the reason of the failure",
        Duration::from_secs(30),
        || async {
            s.servers()
                .await
                .into_iter()
                .find(|v| v["id"] == 1)
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .filter(|m| m.contains("does not match the sha256"))
        },
    )
    .await;
    assert!(message.contains("not run"), "{message}");
    assert!(!ran_marker.exists(), "the changed executor ran");

    // The sandbox tells the operator the same.
    let sandbox = wait_until("the failed sandbox", Duration::from_secs(30), || async {
        sim.snapshot()
            .sandboxes
            .into_iter()
            .find(|b| !b.running && b.exit_status.is_some())
    })
    .await;
    let stderr = fs::read_to_string(sandbox.path.join("stderr")).expect("stderr");
    assert!(
        stderr.contains("does not match sha256"),
        "sandbox stderr: {stderr}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verified_executor_runs() {
    let sim = MesosSim::start(SimConfig::with_agents(1).fast())
        .await
        .expect("sim");
    let mut s = Scheduler::new(&sim.master_url(), "");
    s.start().await;
    s.wait_subscribed().await;
    // A file swapped in dist/ after the start is never served.
    fs::write(s.path("dist/mmm-executor"), "#!/bin/sh\nexit 9\n").expect("swap");
    let (status, json) = s.post("/api/add", r#"{"amount": 1}"#).await;
    assert_eq!(status, 200, "{json}");
    s.wait_server_state(1, "Running").await;
    sim.shutdown().await;
}
