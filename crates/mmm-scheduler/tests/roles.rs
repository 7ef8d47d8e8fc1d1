//! Roles and reservations through the real scheduler binary against
//! mesos-sim: tasks take the resources reserved to the framework's role
//! first and launch them with the offer's reservation and allocation.

mod common;

use common::{Scheduler, WAIT};
use mesos_sim::{AgentConfig, MesosSim, SimConfig};

const FAST_RETRIES: &str =
    "relaunch_backoff_ms = 200\nrelaunch_backoff_max_ms = 1000\nrefuse_seconds = 1.0\n";

/// An agent whose cpus and mem are mostly reserved to "mirror".
async fn reserved_sim(principal: Option<&str>) -> MesosSim {
    let agent = AgentConfig {
        cpus: 0.5,
        mem: 256.0,
        ..AgentConfig::default()
    }
    .with_reserved("cpus", 1.0, "mirror", principal)
    .with_reserved("mem", 512.0, "mirror", principal);
    MesosSim::start(SimConfig {
        agents: vec![agent],
        ..SimConfig::default().fast()
    })
    .await
    .expect("mesos-sim starts")
}

/// Adds one task of `cpus`/`mem`, waits until it runs; returns the
/// resources mesos-sim recorded for it.
async fn run_one(sim: &MesosSim, s: &Scheduler, cpus: f64, mem: f64) -> String {
    let body = format!(r#"{{"amount": 1, "cpus": {cpus}, "mem": {mem}}}"#);
    let (status, json) = s.post("/api/add", body).await;
    assert_eq!(status, 200, "{json}");
    let server = s.wait_server_state(1, "Running").await;
    let task_id = server["task_id"].as_str().expect("task id").to_owned();
    let task = sim.task(&task_id).expect("the task is known to the master");
    assert!(
        task.states().iter().all(|st| *st != "TASK_ERROR"),
        "{:?}",
        task.history
    );
    task.resources
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_uses_its_static_reservation_before_unreserved_resources() {
    let sim = reserved_sim(None).await;
    let mut s = Scheduler::configured(&sim.master_url(), "role = \"mirror\"", FAST_RETRIES, 3600);
    s.start().await;
    let framework_id = s.wait_subscribed().await;
    let fw = sim
        .snapshot()
        .frameworks
        .into_iter()
        .find(|f| f.id == framework_id)
        .expect("framework");
    assert_eq!(fw.roles, ["mirror"]);
    // 1.2 cpus and 600 mem: all 1 + 512 reserved, the rest unreserved.
    let resources = run_one(&sim, &s, 1.2, 600.0).await;
    assert_eq!(
        resources,
        "cpus(reservations: [(STATIC,mirror)]):1; cpus:0.2; \
         mem(reservations: [(STATIC,mirror)]):512; mem:88"
    );
    // The executor's own 0.1 cpus and 32 MB come out of the agent too.
    sim.wait_for("the agent to account for task and executor", WAIT, |snap| {
        let available = &snap.agents[0].available;
        (available == "ports:[31000-31100]; cpus:0.2; mem:136; disk:10000").then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {:?}", sim.snapshot().agents));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_role_launches_with_the_offers_allocation_and_dynamic_reservation() {
    let sim = reserved_sim(Some("ops")).await;
    let mut s = Scheduler::configured(
        &sim.master_url(),
        "roles = [\"mirror\", \"spare\"]",
        FAST_RETRIES,
        3600,
    );
    s.start().await;
    s.wait_subscribed().await;
    // Fits in the reservation alone: nothing unreserved is taken.
    let resources = run_one(&sim, &s, 0.5, 300.0).await;
    assert_eq!(
        resources,
        "cpus(reservations: [(DYNAMIC,mirror,ops)]):0.5; \
         mem(reservations: [(DYNAMIC,mirror,ops)]):300"
    );
    assert!(
        sim.tasks().iter().all(|t| t.state != "TASK_ERROR"),
        "no launch may be refused: {:?}",
        sim.tasks()
    );
    sim.shutdown().await;
}
