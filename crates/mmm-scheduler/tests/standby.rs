//! Standby schedulers on the ZooKeeper store: a second scheduler waits for
//! the state lock, names the leader in its REST API meanwhile, and takes
//! over with the same framework id when the leader dies, duplicating nothing.

mod common;

use common::{wait_until, Scheduler, WAIT};
use mesos_sim::{MesosSim, SimConfig};
use mmm_test_support::ZooKeeperServer;

/// A scheduler whose state lives in ZooKeeper at `zk://{hosts}/mmm/state`.
fn zk_scheduler(master: &str, hosts: &str) -> Scheduler {
    let s = Scheduler::new(master, "refuse_seconds = 1.0\n");
    let toml = std::fs::read_to_string(s.path("mmm.toml")).expect("read config");
    let toml = toml.replace(
        &format!("path = \"{}\"", s.path("state/mmm-state.json").display()),
        &format!("path = \"zk://{hosts}/mmm/state\""),
    );
    std::fs::write(s.path("mmm.toml"), toml).expect("write config");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_names_the_leader_then_takes_over_without_duplicates() {
    let zk_server = tokio::task::spawn_blocking(ZooKeeperServer::start)
        .await
        .expect("join")
        .expect("ZooKeeper starts");
    let hosts = zk_server.connect_string();
    let sim = MesosSim::start(SimConfig::with_agents(1).fast())
        .await
        .expect("mesos-sim starts");

    let mut leader = zk_scheduler(&sim.master_url(), &hosts);
    leader.start().await;
    let framework_id = leader.wait_subscribed().await;
    let (status, json) = leader.post("/api/add", r#"{"amount": 1}"#).await;
    assert_eq!(status, 200, "{json}");
    let running = leader.wait_server_state(1, "Running").await;
    let leader_url = leader.url("");

    let mut standby = zk_scheduler(&sim.master_url(), &hosts);
    standby.start().await;
    let (status, json) = standby.get_json("/api/status").await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["value"]["standby"], true, "{json}");
    assert_eq!(json["value"]["leader"], leader_url.as_str(), "{json}");
    let (status, json) = standby.post("/api/add", r#"{"amount": 1}"#).await;
    assert_eq!(status, 503, "{json}");
    assert!(
        json["message"]
            .as_str()
            .is_some_and(|m| m.contains(&leader_url)),
        "{json}"
    );
    let (status, json) = standby.get_json("/health").await;
    assert_eq!(status, 200, "a standby is healthy as a standby: {json}");
    assert_eq!(json["value"]["standby"], true, "{json}");

    leader.sigkill();
    let taken_over = standby.wait_subscribed().await;
    assert_eq!(taken_over, framework_id, "the same framework, failed over");
    let server = standby.wait_server_state(1, "Running").await;
    assert_eq!(server["task_id"], running["task_id"]);
    wait_until("the new leader's reconciliation", WAIT, || async {
        let snap = sim.snapshot();
        snap.frameworks
            .iter()
            .any(|f| f.id == framework_id && f.connected)
            .then_some(())
    })
    .await;
    let tasks = sim.tasks();
    assert_eq!(tasks.len(), 1, "no task duplicated: {tasks:?}");
    assert_eq!(tasks[0].state, "TASK_RUNNING");
    assert_eq!(
        standby.servers().await.len(),
        1,
        "the state came from ZooKeeper"
    );
    drop(standby);
    sim.shutdown().await;
    drop(zk_server);
}
