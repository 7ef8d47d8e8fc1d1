//! Reconciliation through the real scheduler binary against mesos-sim: a
//! launch whose ACCEPT was lost is noticed within the reconcile timeout,
//! reported gone by the master, its still outstanding offer declined, and
//! launched again on the same (only) agent.

mod common;

use common::{read_state, Scheduler};
use mesos_sim::{MesosSim, SimConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_accept_is_reconciled_and_the_server_launched_again() {
    let sim = MesosSim::start(SimConfig::with_agents(1).fast())
        .await
        .expect("mesos-sim starts");
    let mut s = Scheduler::new(
        &sim.master_url(),
        "relaunch_backoff_ms = 200\nrelaunch_backoff_max_ms = 1000\nrefuse_seconds = 1.0\nreconcile_timeout_ms = 1000\n",
    );
    s.start().await;
    s.wait_subscribed().await;
    sim.lose_next_accepts(1);
    let (status, json) = s.post("/api/add", r#"{"amount": 1}"#).await;
    assert_eq!(status, 200, "{json}");
    let server = s.wait_server_state(1, "Running").await;
    assert_eq!(sim.snapshot().faults.lose_accepts, 0, "an ACCEPT was lost");
    let tasks = sim.tasks();
    assert_eq!(
        tasks.len(),
        1,
        "only the second launch reached the master: {tasks:?}"
    );
    assert_eq!(server["task_id"], tasks[0].task_id.as_str());
    // the stored state keeps each server's recent state changes
    let history = read_state(s.dir.path()).to_string();
    assert!(
        history.contains("TASK_GONE") && history.contains("Reconciliation"),
        "the lost launch ended through reconciliation: {history}"
    );
    sim.shutdown().await;
}
