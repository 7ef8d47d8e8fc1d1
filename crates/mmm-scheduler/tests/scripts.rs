//! The deployment files in `scripts/`: `mmm.sh` drives the real binaries
//! like the original's wrapper, and the Marathon app definition runs two
//! instances health-checked on /health with the configuration from URIs.

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::Scheduler;
use mesos_sim::{MesosSim, SimConfig};
use mmm_test_support::bin_path;

fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name)
}

/// `mmm.sh` with `MMM_HOME/bin` holding the freshly built binaries.
fn mmm_sh(home: &Path, api: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new("sh")
        .arg(repo_file("scripts/mmm.sh"))
        .args(args)
        .env("MMM_HOME", home)
        .env("MMM_API", api)
        .output()
        .expect("run mmm.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mmm_sh_adds_shows_and_deletes_like_the_original() {
    let home = tempfile::tempdir().expect("home");
    std::fs::create_dir(home.path().join("bin")).expect("bin");
    symlink(
        env!("CARGO_BIN_EXE_mmm-scheduler"),
        home.path().join("bin/mmm-scheduler"),
    )
    .expect("link scheduler");
    let cli = bin_path("mmm-cli").expect("mmm-cli is built (cargo build -p mmm-cli)");
    symlink(cli, home.path().join("bin/mmm-cli")).expect("link cli");

    let sim = MesosSim::start(SimConfig::with_agents(1).fast())
        .await
        .expect("mesos-sim starts");
    let mut s = Scheduler::new(&sim.master_url(), "refuse_seconds = 1.0\n");
    s.start().await;
    s.wait_subscribed().await;
    let api = s.url("/api");
    let (code, out) = mmm_sh(home.path(), &api, &["add", "1"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Added 1 tasks successfully."), "{out}");
    let (code, out) = mmm_sh(home.path(), &api, &["status"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("    id: 1\n"), "{out}");
    let (code, out) = mmm_sh(home.path(), &api, &["delete", "1"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Delete servers request (ids=1)"), "{out}");
    // the scheduler sub-command runs the scheduler binary: a bad config is
    // refused with the scheduler's exit code
    let (code, out) = mmm_sh(
        home.path(),
        &api,
        &["scheduler", "/nonexistent/mmm.toml", "-c", "x", "-p", "y"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("mmm-scheduler:"), "{out}");
    let (code, out) = mmm_sh(home.path(), &api, &["frobnicate"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("unknown command 'frobnicate'"), "{out}");
    sim.shutdown().await;
}

#[test]
fn the_marathon_app_runs_two_health_checked_instances_with_fetched_config() {
    let text = std::fs::read_to_string(repo_file("scripts/marathon.json")).expect("marathon.json");
    let app: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(app["instances"], 2, "a leader and a standby");
    let check = &app["healthChecks"][0];
    assert_eq!(check["path"], "/health");
    assert_eq!(check["protocol"], "MESOS_HTTP");
    let fetched: Vec<&str> = app["fetch"]
        .as_array()
        .expect("fetch")
        .iter()
        .filter_map(|f| f["uri"].as_str())
        .collect();
    assert!(
        fetched.iter().any(|u| u.ends_with("/mmm.toml")),
        "{fetched:?}"
    );
    assert!(
        fetched.iter().any(|u| u.ends_with(".tar.gz")),
        "{fetched:?}"
    );
    let cmd = app["cmd"].as_str().expect("cmd");
    assert!(cmd.contains("scripts/mmm.sh scheduler"), "{cmd}");
    assert!(cmd.contains("$MESOS_SANDBOX/mmm.toml"), "{cmd}");
}

#[test]
fn the_systemd_unit_starts_the_scheduler_through_mmm_sh() {
    let unit = std::fs::read_to_string(repo_file("scripts/mmm-scheduler.service")).expect("unit");
    assert!(unit.contains("ExecStart=/opt/mmm/scripts/mmm.sh scheduler config/mmm.toml"));
    assert!(unit.contains("Restart=on-failure"));
    assert!(unit.contains("WorkingDirectory=/opt/mmm"));
}
