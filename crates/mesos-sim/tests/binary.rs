//! The standalone `mesos-sim` binary and its control API.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::{framework_info, Scheduler};

/// Kills the process if the test fails before it stops it.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn runs_standalone_prints_its_url_and_stops_on_sigterm() {
    let work = tempfile::tempdir().expect("temp dir");
    let mut child = Guard(
        Command::new(env!("CARGO_BIN_EXE_mesos-sim"))
            .args([
                "--agents",
                "2",
                "--heartbeat-secs",
                "1",
                "--offer-interval-secs",
                "0.1",
            ])
            .arg("--work-dir")
            .arg(work.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(work.path().join("sim.log")).expect("log file"),
            ))
            .spawn()
            .expect("binary starts"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("first line");
        line
    })
    .await
    .expect("reader");
    let url = first
        .trim()
        .strip_prefix("mesos-sim master listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let mut s = Scheduler::subscribe(&url, framework_info(&[])).await;
    let offer = s.offer().await;
    let state: serde_json::Value = reqwest::get(format!("{url}/sim/state"))
        .await
        .expect("state reachable")
        .json()
        .await
        .expect("json");
    assert_eq!(state["agents"].as_array().map(Vec::len), Some(2));
    assert_eq!(state["frameworks"][0]["id"], s.framework_id.value.as_str());

    let client = reqwest::Client::new();
    let r = client
        .post(format!("{url}/sim/offers/rescind"))
        .send()
        .await
        .expect("rescind");
    assert_eq!(r.status().as_u16(), 200);
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(body["rescinded"]
        .as_array()
        .is_some_and(|a| a.iter().any(|id| id == offer.id.value.as_str())));
    s.expect("RESCIND", |e| e.rescind.is_some()).await;

    let r = client
        .post(format!("{url}/sim/agents/nope/kill"))
        .send()
        .await
        .expect("kill");
    assert_eq!(r.status().as_u16(), 404);
    let agent = offer.agent_id.value.clone();
    let r = client
        .post(format!("{url}/sim/agents/{agent}/kill"))
        .send()
        .await
        .expect("kill");
    assert_eq!(r.status().as_u16(), 200);
    s.expect("agent FAILURE", |e| e.failure.is_some()).await;
    let r = client
        .post(format!("{url}/sim/heartbeats/delay"))
        .body("{\"seconds\": -1}")
        .send()
        .await
        .expect("delay");
    assert_eq!(r.status().as_u16(), 400);
    let r = client
        .post(format!("{url}/sim/master/restart"))
        .send()
        .await
        .expect("restart");
    assert_eq!(r.status().as_u16(), 200);
    s.until_closed().await;

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.0.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || {
        let code = child.0.wait().expect("exits");
        drop(child);
        code
    })
    .await
    .expect("waiter");
    assert!(
        exit.success(),
        "clean exit on SIGTERM: {exit:?}; log:\n{}",
        std::fs::read_to_string(work.path().join("sim.log")).unwrap_or_default()
    );
}

#[tokio::test]
async fn the_binary_reserves_resources_and_requires_credentials_when_asked() {
    let work = tempfile::tempdir().expect("temp dir");
    let mut child = Guard(
        Command::new(env!("CARGO_BIN_EXE_mesos-sim"))
            .args([
                "--agents",
                "1",
                "--agent-reserved",
                "cpus(mirror):1;mem(mirror,ops):512",
                "--framework-credential",
                "mmm:s3cret",
                "--roles",
                "mirror",
            ])
            .arg("--work-dir")
            .arg(work.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("binary starts"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("first line");
        line
    })
    .await
    .expect("reader");
    let url = first
        .trim()
        .strip_prefix("mesos-sim master listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    let state: serde_json::Value = reqwest::get(format!("{url}/sim/state"))
        .await
        .expect("state reachable")
        .json()
        .await
        .expect("json");
    let total = state["agents"][0]["total"].as_str().unwrap_or_default();
    assert!(
        total.starts_with(
            "cpus(reservations: [(STATIC,mirror)]):1; mem(reservations: [(DYNAMIC,mirror,ops)]):512;"
        ),
        "{total}"
    );
    let answer = reqwest::Client::new()
        .post(format!("{url}/api/v1/scheduler"))
        .header("Content-Type", "application/x-protobuf")
        .body(Vec::new())
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status().as_u16(), 401, "credentials are required");
}
