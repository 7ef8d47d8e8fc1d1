//! What the real binary refuses at start, and what it protects on disk: an
//! API open to the network without a token, secret files others may read, a
//! state that holds what no API caller could have set.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use common::Scheduler;
use mesos_sim::{MesosSim, SimConfig};

fn run(cmd: &mut std::process::Command) -> Output {
    cmd.env("MMM_MASTER_CONNECT_TIMEOUT_SECS", "1")
        .output()
        .expect("run mmm-scheduler")
}

fn refusal(out: &Output) -> String {
    assert!(!out.status.success(), "must fail");
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

/// Rewrites `[api]` of the test configuration.
fn set_api(s: &Scheduler, api: &str) {
    let toml = fs::read_to_string(s.path("mmm.toml")).expect("config");
    let start = toml.find("[api]").expect("[api]");
    let end = toml.find("[mirror]").expect("[mirror]");
    let toml = format!("{}[api]\n{api}\n\n{}", &toml[..start], &toml[end..]);
    fs::write(s.path("mmm.toml"), toml).expect("config");
}

#[test]
fn an_api_open_to_the_network_needs_a_token() {
    let s = Scheduler::new("127.0.0.1:1", "");
    let port = s.api_port;
    set_api(&s, &format!("bind = \"0.0.0.0:{port}\""));
    let line = refusal(&run(&mut s.command()));
    assert!(
        line.contains("0.0.0.0") && line.contains("token_file") && line.contains("insecure"),
        "{line}"
    );
    assert!(!s.path("state").exists(), "nothing was touched");

    // A token others may read protects nothing.
    fs::write(s.path("api-token"), "t0ken\n").expect("token");
    fs::set_permissions(s.path("api-token"), fs::Permissions::from_mode(0o644)).expect("chmod");
    set_api(
        &s,
        &format!(
            "bind = \"0.0.0.0:{port}\"\ntoken_file = \"{}\"",
            s.path("api-token").display()
        ),
    );
    let line = refusal(&run(&mut s.command()));
    assert!(
        line.contains(&s.path("api-token").display().to_string()) && line.contains("0644"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_runs_only_when_asked_and_says_so() {
    let sim = MesosSim::start(SimConfig {
        agents: Vec::new(),
        ..SimConfig::default().fast()
    })
    .await
    .expect("sim");
    let mut s = Scheduler::new(&sim.master_url(), "");
    set_api(
        &s,
        &format!("bind = \"0.0.0.0:{}\"\ninsecure = true", s.api_port),
    );
    s.start().await;
    let (status, page) = s.get("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("insecure: reachable from the network without a token"));
    assert!(s.logs().contains("[api] insecure = true"), "{}", s.logs());
    sim.shutdown().await;
}

#[test]
fn a_state_that_holds_connection_or_plugin_keys_is_refused() {
    let s = Scheduler::new("127.0.0.1:1", "");
    fs::create_dir_all(s.path("state")).expect("mkdir");
    let tampered = r#"{"version": 1, "servers": [{"id": 4, "state": "Added", "cpus": 0.1,
        "mem": 64, "topics": ["t"], "producer": {"bootstrap.servers": "evil:9093"}}]}"#;
    fs::write(s.path("state/mmm-state.json"), tampered).expect("write");
    let line = refusal(&run(&mut s.command()));
    assert!(
        line.contains("server 4") && line.contains("\"bootstrap.servers\""),
        "{line}"
    );
    assert_eq!(
        fs::read_to_string(s.path("state/mmm-state.json")).expect("read"),
        tampered
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_and_its_lock_are_the_owners_only() {
    let sim = MesosSim::start(SimConfig {
        agents: Vec::new(),
        ..SimConfig::default().fast()
    })
    .await
    .expect("sim");
    let mut s = Scheduler::new(&sim.master_url(), "");
    s.start().await;
    s.wait_subscribed().await;
    let (status, json) = s.post("/api/add", r#"{"amount": 1}"#).await;
    assert_eq!(status, 200, "{json}");
    for file in ["state/mmm-state.json", "state/mmm-state.json.lock"] {
        let mode = fs::metadata(s.path(file)).expect(file).permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file} has mode {mode:o}");
    }
    let leftovers: Vec<_> = fs::read_dir(s.path("state"))
        .expect("state dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    sim.shutdown().await;
}
