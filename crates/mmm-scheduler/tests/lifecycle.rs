//! The scheduler binary against mesos-sim: subscription, task lifecycle,
//! failover of the scheduler and the master, agent loss.

mod common;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{read_state, wait_until, Scheduler, WAIT};
use mesos_sim::{AgentConfig, MesosSim, SimConfig, SimSnapshot, TaskView};

const FAST_RETRIES: &str =
    "relaunch_backoff_ms = 200\nrelaunch_backoff_max_ms = 1000\nrefuse_seconds = 1.0\n";

async fn sim(config: SimConfig) -> MesosSim {
    MesosSim::start(config).await.expect("mesos-sim starts")
}

fn live_tasks(snap: &SimSnapshot) -> Vec<TaskView> {
    snap.tasks.iter().filter(|t| t.live).cloned().collect()
}

/// Whether a task is launched and not over: what "two live launches of one
/// server" counts. (A task whose terminal update is not acknowledged yet is
/// still `live` in the master, but no longer runs.)
fn active(task: &TaskView) -> bool {
    task.live
        && matches!(
            task.state.as_str(),
            "TASK_STAGING" | "TASK_STARTING" | "TASK_RUNNING" | "TASK_KILLING"
        )
}

/// The server a task id (`mmm-<server>-<uuid>`) belongs to.
fn server_of(task_id: &str) -> &str {
    task_id
        .strip_prefix("mmm-")
        .and_then(|rest| rest.split('-').next())
        .unwrap_or(task_id)
}

/// Runs `body` while watching mesos-sim every few milliseconds over its
/// whole run, and fails if at any moment one server had two active tasks
/// (one instant at the end would miss a duplicate that came and went).
async fn never_two_tasks_per_server<T>(sim: &MesosSim, body: impl Future<Output = T>) -> T {
    let done = AtomicBool::new(false);
    let mut worst: Option<Vec<String>> = None;
    let mut samples = 0u64;
    let watcher = async {
        loop {
            // Checked before the sample, so the last sample follows the body.
            let finished = done.load(Ordering::Acquire);
            let mut per_server: HashMap<String, Vec<String>> = HashMap::new();
            for task in sim.snapshot().tasks.iter().filter(|t| active(t)) {
                per_server
                    .entry(server_of(&task.task_id).to_owned())
                    .or_default()
                    .push(task.task_id.clone());
            }
            samples += 1;
            if let Some(twice) = per_server.into_values().find(|ids| ids.len() > 1) {
                worst.get_or_insert(twice);
            }
            if finished {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let body = async {
        let out = body.await;
        done.store(true, Ordering::Release);
        out
    };
    let ((), out) = tokio::join!(watcher, body);
    assert!(
        worst.is_none(),
        "two active tasks of one server at once: {worst:?} ({samples} samples)"
    );
    assert!(samples > 1, "the watch sampled the whole run");
    out
}

async fn wait_sim<T>(
    sim: &MesosSim,
    what: &str,
    check: impl FnMut(&SimSnapshot) -> Option<T>,
) -> T {
    sim.wait_for(what, WAIT, check)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribes_launches_runs_and_deletes_a_task() {
    let sim = sim(SimConfig::with_agents(1).fast()).await;
    let mut s = Scheduler::new(&sim.master_url(), FAST_RETRIES);
    s.start().await;
    let framework_id = s.wait_subscribed().await;

    let snap = sim.snapshot();
    let fw = snap
        .frameworks
        .iter()
        .find(|f| f.id == framework_id)
        .expect("the master knows the framework");
    assert_eq!(fw.name, "mmm-test");
    assert!(
        fw.capabilities.iter().any(|c| c == "PARTITION_AWARE"),
        "{:?}",
        fw.capabilities
    );
    assert!(
        fw.capabilities.iter().any(|c| c == "TASK_KILLING_STATE"),
        "{:?}",
        fw.capabilities
    );

    let (status, json) = s
        .post("/api/add", r#"{"amount": 1, "cpus": 0.5, "mem": 128}"#)
        .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["success"], true);
    assert_eq!(json["message"], "Added 1 tasks successfully.");
    assert_eq!(json["value"]["servers"][0]["id"], 1);
    assert_eq!(json["value"]["servers"][0]["cpus"], 0.5);

    let running = s.wait_server_state(1, "Running").await;
    let task_id = running["task_id"].as_str().expect("a task id").to_string();
    let task = sim.task(&task_id).expect("the master knows the task");
    assert_eq!(task.state, "TASK_RUNNING");
    assert_eq!(task.framework_id, framework_id);
    // Every update with a uuid was acknowledged.
    wait_sim(&sim, "updates acknowledged", |snap| {
        snap.tasks
            .iter()
            .find(|t| t.task_id == task_id)
            .filter(|t| t.pending_updates == 0)
            .map(|_| ())
    })
    .await;
    // The decision was stored: the state file knows the launch.
    let state = read_state(s.dir.path());
    assert_eq!(state["framework_id"], framework_id.as_str());
    assert_eq!(state["servers"][0]["task_id"], task_id.as_str());

    let (status, json) = s.post("/api/delete", r#"{"ids": [1]}"#).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        json["message"],
        "Delete servers request (ids=1) was sent successfully."
    );
    wait_until("server 1 to be removed", WAIT, || async {
        s.servers().await.is_empty().then_some(())
    })
    .await;
    let task = sim.task(&task_id).expect("task");
    assert_eq!(task.state, "TASK_KILLED", "{:?}", task.states());
    assert!(live_tasks(&sim.snapshot()).is_empty());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_too_small_is_declined() {
    let small = AgentConfig {
        cpus: 0.1,
        mem: 64.0,
        ..AgentConfig::default()
    };
    let sim = sim(SimConfig {
        agents: vec![small],
        ..SimConfig::default().fast()
    })
    .await;
    let mut s = Scheduler::new(&sim.master_url(), FAST_RETRIES);
    s.start().await;
    s.wait_subscribed().await;
    let (status, json) = s
        .post("/api/add", r#"{"amount": 1, "cpus": 0.5, "mem": 256}"#)
        .await;
    assert_eq!(status, 200, "{json}");
    wait_until("offers to be declined", WAIT, || async {
        let (_, metrics) = s.get("/metrics").await;
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("mmm_offers_declined_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|n| *n >= 2.0)
    })
    .await;
    assert!(
        sim.tasks().is_empty(),
        "nothing may be launched on a too small offer"
    );
    let server = &s.servers().await[0];
    assert!(
        server["state"] == "Added" || server["state"] == "Starting",
        "{server}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_task_is_relaunched_with_backoff() {
    let sim = sim(SimConfig::with_agents(1).fast()).await;
    let mut s = Scheduler::new(
        &sim.master_url(),
        &format!("{FAST_RETRIES}healthy_after_ms = 1000\n"),
    );
    s.fail_executors(true);
    s.start().await;
    s.wait_subscribed().await;
    let (status, json) = s.post("/api/add", r#"{"amount": 1}"#).await;
    assert_eq!(status, 200, "{json}");
    let (failed, running) = never_two_tasks_per_server(&sim, async {
        // At least two failed launches, each a new task id.
        let failed = wait_sim(&sim, "two failed launches", |snap| {
            let failed: Vec<_> = snap
                .tasks
                .iter()
                .filter(|t| t.state == "TASK_FAILED")
                .cloned()
                .collect();
            (failed.len() >= 2).then_some(failed)
        })
        .await;
        s.fail_executors(false);
        (failed, s.wait_server_state(1, "Running").await)
    })
    .await;
    assert_ne!(failed[0].task_id, failed[1].task_id);
    let task_id = running["task_id"].as_str().expect("a task id");
    assert!(
        failed.iter().all(|f| f.task_id != task_id),
        "the running task is a new launch"
    );
    assert_eq!(
        sim.task(task_id).map(|t| t.state),
        Some("TASK_RUNNING".to_string()),
        "mesos-sim runs it"
    );
    // TASK_RUNNING alone does not forget the failed attempts (a crash loop
    // reaches it every time); a healthy run of healthy_after_ms does.
    assert!(
        running["launch_attempts"].as_u64() >= Some(2),
        "the attempts are kept at TASK_RUNNING: {running}"
    );
    wait_until(
        "the attempts to be forgotten after a healthy run",
        WAIT,
        || async {
            let servers = s.servers().await;
            (servers[0]["launch_attempts"] == 0).then_some(())
        },
    )
    .await;
    let tasks = sim.tasks();
    assert!(tasks.len() >= 3, "relaunched after the failures: {tasks:?}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_scheduler_fails_over_to_the_same_framework_without_duplicates() {
    let sim = sim(SimConfig::with_agents(2).fast()).await;
    let mut s = Scheduler::new(&sim.master_url(), FAST_RETRIES);
    s.start().await;
    let framework_id = s.wait_subscribed().await;
    let (status, json) = s.post("/api/add", r#"{"amount": 2}"#).await;
    assert_eq!(status, 200, "{json}");
    s.wait_server_state(1, "Running").await;
    s.wait_server_state(2, "Running").await;
    let before: Vec<String> = live_tasks(&sim.snapshot())
        .into_iter()
        .map(|t| t.task_id)
        .collect();
    assert_eq!(before.len(), 2);

    // No instant from the kill to the end with a server launched twice.
    never_two_tasks_per_server(&sim, async {
        s.sigkill();
        wait_sim(&sim, "the master to see the scheduler gone", |snap| {
            snap.frameworks
                .iter()
                .find(|f| f.id == framework_id)
                .filter(|f| !f.connected)
                .map(|_| ())
        })
        .await;
        s.start().await;
        let again = s.wait_subscribed().await;
        assert_eq!(again, framework_id, "failover keeps the framework id");
        s.wait_server_state(1, "Running").await;
        s.wait_server_state(2, "Running").await;
        // Give the reconciliation time to act, then check nothing was relaunched.
        wait_until("reconciliation to leave the tasks alone", WAIT, || async {
            let servers = s.servers().await;
            let ids: Vec<String> = servers
                .iter()
                .filter_map(|v| v["task_id"].as_str().map(str::to_string))
                .collect();
            (ids.len() == 2 && ids.iter().all(|id| before.contains(id))).then_some(())
        })
        .await;
        // A wrong relaunch would go out with the next offers (a few hundred
        // ms apart in the fast configuration): watch a few rounds of them.
        tokio::time::sleep(Duration::from_secs(2)).await;
    })
    .await;
    let live: Vec<String> = live_tasks(&sim.snapshot())
        .into_iter()
        .map(|t| t.task_id)
        .collect();
    assert_eq!(live.len(), 2, "no duplicate task: {live:?}");
    assert!(live.iter().all(|t| before.contains(t)));
    assert_eq!(sim.snapshot().frameworks.len(), 1, "one framework only");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_away_past_its_failover_timeout_starts_a_new_framework_and_relaunches() {
    let sim = sim(SimConfig::with_agents(1).fast()).await;
    let mut s = Scheduler::with_failover_timeout(&sim.master_url(), FAST_RETRIES, 1);
    s.start().await;
    let old_id = s.wait_subscribed().await;
    s.post("/api/add", r#"{"amount": 1}"#).await;
    let running = s.wait_server_state(1, "Running").await;
    let old_task = running["task_id"].as_str().expect("task id").to_string();

    s.sigkill();
    wait_sim(&sim, "the master to remove the framework", |snap| {
        snap.removed_frameworks.contains(&old_id).then_some(())
    })
    .await;
    s.start().await;
    let new_id = s.wait_subscribed().await;
    assert_ne!(
        new_id, old_id,
        "a removed framework id is never accepted again"
    );
    wait_until(
        "the server to run again under the new framework",
        WAIT,
        || async {
            let servers = s.servers().await;
            servers
                .first()
                .filter(|v| {
                    v["state"] == "Running" && v["task_id"].as_str() != Some(old_task.as_str())
                })
                .map(|_| ())
        },
    )
    .await;
    let live = live_tasks(&sim.snapshot());
    assert_eq!(live.len(), 1, "exactly one task: {live:?}");
    assert_ne!(live[0].task_id, old_task);
    assert_eq!(
        read_state(s.dir.path())["framework_id"],
        new_id.as_str(),
        "the new id is stored"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_resubscribes_after_a_master_restart() {
    let sim = sim(SimConfig::with_agents(1).fast()).await;
    let mut s = Scheduler::new(&sim.master_url(), FAST_RETRIES);
    s.start().await;
    let framework_id = s.wait_subscribed().await;
    s.post("/api/add", r#"{"amount": 1}"#).await;
    let running = s.wait_server_state(1, "Running").await;
    let task_id = running["task_id"].as_str().expect("task id").to_string();
    let old_master = sim.snapshot().master_id;

    sim.restart_master();
    wait_sim(
        &sim,
        "the framework to re-subscribe to the new master",
        |snap| {
            (snap.master_id != old_master
                && snap
                    .frameworks
                    .iter()
                    .any(|f| f.id == framework_id && f.connected))
            .then_some(())
        },
    )
    .await;
    // Same task, still running, no relaunch.
    s.wait_server_state(1, "Running").await;
    let live = live_tasks(&sim.snapshot());
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0].task_id, task_id);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_on_a_lost_agent_is_relaunched_elsewhere() {
    let sim = sim(SimConfig::with_agents(2).fast()).await;
    let mut s = Scheduler::new(
        &sim.master_url(),
        &format!("{FAST_RETRIES}unreachable_timeout_ms = 500\n"),
    );
    s.start().await;
    s.wait_subscribed().await;
    s.post("/api/add", r#"{"amount": 1}"#).await;
    let running = s.wait_server_state(1, "Running").await;
    let first_task = running["task_id"].as_str().expect("task id").to_string();
    let first_agent = running["agent_id"].as_str().expect("agent id").to_string();

    sim.kill_agent(&first_agent).expect("kill agent");
    let relaunched = wait_until(
        "a relaunch on the other agent",
        Duration::from_secs(90),
        || async {
            s.servers().await.into_iter().find(|v| {
                v["state"] == "Running" && v["task_id"].as_str().is_some_and(|t| t != first_task)
            })
        },
    )
    .await;
    assert_ne!(relaunched["agent_id"].as_str(), Some(first_agent.as_str()));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_scheduler_with_exit_code_zero() {
    let sim = sim(SimConfig::with_agents(1).fast()).await;
    let mut s = Scheduler::new(&sim.master_url(), FAST_RETRIES);
    s.start().await;
    s.wait_subscribed().await;
    let p = s.process.as_mut().expect("running");
    p.signal(libc::SIGTERM).expect("SIGTERM");
    let status = p
        .wait_timeout(Duration::from_secs(20))
        .expect("wait")
        .expect("exited after SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", s.logs());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_heartbeats_make_the_scheduler_subscribe_again() {
    let sim = sim(SimConfig::with_agents(1).fast()).await;
    let mut s = Scheduler::new(&sim.master_url(), FAST_RETRIES);
    s.start().await;
    let framework_id = s.wait_subscribed().await;
    // Heartbeats every second; five missed ones end the subscription.
    sim.delay_heartbeats(Duration::from_secs(30));
    wait_until(
        "the scheduler to notice the missing heartbeats",
        WAIT,
        || async { s.logs().contains("heartbeats missed").then_some(()) },
    )
    .await;
    let again = s.wait_subscribed().await;
    assert_eq!(again, framework_id);
    wait_sim(&sim, "the framework to be connected again", |snap| {
        snap.frameworks
            .iter()
            .any(|f| f.id == framework_id && f.connected)
            .then_some(())
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_list_and_a_redirect_lead_to_the_leader() {
    let leader = sim(SimConfig::with_agents(1).fast()).await;
    // A non-leading master: answers 307 with a scheme-less Location.
    let follower = sim(SimConfig {
        agents: Vec::new(),
        redirect_to_leader: Some(leader.master_addr().to_string()),
        ..SimConfig::default().fast()
    })
    .await;
    let dead = mmm_test_support::free_port().expect("free port");
    let masters = format!("127.0.0.1:{dead},{}", follower.master_url());
    let mut s = Scheduler::new(&masters, FAST_RETRIES);
    s.start().await;
    let framework_id = s.wait_subscribed().await;
    assert!(
        leader
            .snapshot()
            .frameworks
            .iter()
            .any(|f| f.id == framework_id && f.connected),
        "subscribed to the leader"
    );
    let (_, health) = s.get_json("/health").await;
    assert_eq!(
        health["value"]["subscription"]["master"],
        format!("{}/", leader.master_url()),
        "{health}"
    );
    // Calls go to the leader too: a task gets launched there.
    s.post("/api/add", r#"{"amount": 1}"#).await;
    s.wait_server_state(1, "Running").await;
    assert_eq!(live_tasks(&leader.snapshot()).len(), 1);
    leader.shutdown().await;
    follower.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_kills_the_task_and_start_launches_it_again() {
    let sim = sim(SimConfig::with_agents(1).fast()).await;
    let mut s = Scheduler::new(&sim.master_url(), FAST_RETRIES);
    s.start().await;
    s.wait_subscribed().await;
    s.post("/api/add", r#"{"amount": 1}"#).await;
    let first = s.wait_server_state(1, "Running").await["task_id"]
        .as_str()
        .expect("task id")
        .to_string();

    let (status, json) = s.post("/api/stop", r#"{"ids": [1]}"#).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        json["message"],
        "Stop servers request (ids=1) was sent successfully."
    );
    s.wait_server_state(1, "Stopped").await;
    wait_sim(&sim, "the stopped task to be killed", |snap| {
        snap.tasks
            .iter()
            .find(|t| t.task_id == first && t.state == "TASK_KILLED")
            .map(|_| ())
    })
    .await;

    let (status, json) = s.post("/api/start", r#"{"ids": [1]}"#).await;
    assert_eq!(status, 200, "{json}");
    let again = s.wait_server_state(1, "Running").await;
    assert_ne!(
        again["task_id"].as_str(),
        Some(first.as_str()),
        "a new launch"
    );
    assert_eq!(live_tasks(&sim.snapshot()).len(), 1);
    sim.shutdown().await;
}
