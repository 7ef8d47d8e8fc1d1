//! Framework authentication and permanent refusals, through the real
//! scheduler binary against a mesos-sim master that requires them.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::Scheduler;
use mesos_sim::{MesosSim, SimConfig};

const FAST: &str = "refuse_seconds = 1.0\n";

async fn sim_requiring(principal: &str, secret: &str) -> MesosSim {
    MesosSim::start(SimConfig {
        framework_credentials: vec![(principal.into(), secret.into())],
        ..SimConfig::with_agents(1).fast()
    })
    .await
    .expect("mesos-sim starts")
}

/// A scheduler authenticating as `principal` with `secret` (in its secret
/// file, relative to its working directory).
fn scheduler_with_secret(master: &str, principal: &str, secret: &str) -> Scheduler {
    let mesos = format!("principal = \"{principal}\"\nsecret_file = \"mesos-secret\"");
    let s = Scheduler::configured(master, &mesos, FAST, 3600);
    fs::write(s.path("mesos-secret"), format!("{secret}\n")).expect("secret file");
    // The scheduler refuses a secret that others may read.
    fs::set_permissions(s.path("mesos-secret"), fs::Permissions::from_mode(0o600)).expect("chmod");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_secret_subscribes_and_a_wrong_one_stops_the_scheduler() {
    let sim = sim_requiring("mmm", "s3cret").await;

    let mut good = scheduler_with_secret(&sim.master_url(), "mmm", "s3cret");
    good.start().await;
    let framework_id = good.wait_subscribed().await;
    assert!(sim
        .snapshot()
        .frameworks
        .iter()
        .any(|f| f.id == framework_id));
    let (status, json) = good.post("/api/add", r#"{"amount": 1}"#).await;
    assert_eq!(status, 200, "{json}");
    good.wait_server_state(1, "Running").await;

    let mut bad = scheduler_with_secret(&sim.master_url(), "mmm", "wrong");
    bad.spawn();
    assert_eq!(bad.wait_exit(), Some(1), "{}", bad.logs());
    let logs = bad.logs();
    let refusals: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("refused this framework"))
        .collect();
    assert!(
        !refusals.is_empty() && refusals.iter().all(|l| l.contains("401")),
        "the exit names the 401: {logs}"
    );
    assert_eq!(
        sim.snapshot().frameworks.len(),
        1,
        "the refused scheduler registered nothing"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_for_a_master_that_requires_them_stop_the_scheduler() {
    let sim = sim_requiring("mmm", "s3cret").await;
    let mut s = Scheduler::new(&sim.master_url(), FAST);
    s.spawn();
    assert_eq!(s.wait_exit(), Some(1), "{}", s.logs());
    assert!(s.logs().contains("401"), "{}", s.logs());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_the_master_refuses_stops_the_scheduler_naming_the_role() {
    let sim = MesosSim::start(SimConfig {
        roles_whitelist: Some(vec!["mirror".into()]),
        ..SimConfig::with_agents(1).fast()
    })
    .await
    .expect("mesos-sim starts");
    let mut s = Scheduler::configured(&sim.master_url(), "role = \"web\"", FAST, 3600);
    s.spawn();
    assert_eq!(s.wait_exit(), Some(1), "{}", s.logs());
    let logs = s.logs();
    assert!(
        logs.contains("Roles { web } are not present in the master's --roles"),
        "{logs}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_reach_the_leader_only_as_a_configured_master() {
    let leader = sim_requiring("mmm", "s3cret").await;
    let follower = MesosSim::start(SimConfig {
        framework_credentials: vec![("mmm".into(), "s3cret".into())],
        redirect_to_leader: Some(leader.master_addr().to_string()),
        ..SimConfig::with_agents(1).fast()
    })
    .await
    .expect("mesos-sim starts");
    // The follower comes first and redirects to the leader, which is a
    // configured master, so the credentials follow the redirect.
    let masters = format!("{},{}", follower.master_addr(), leader.master_addr());
    let mut s = scheduler_with_secret(&masters, "mmm", "s3cret");
    s.start().await;
    let framework_id = s.wait_subscribed().await;
    assert!(leader
        .snapshot()
        .frameworks
        .iter()
        .any(|f| f.id == framework_id && f.connected));
    follower.shutdown().await;
    leader.shutdown().await;
}
