//! Crash loops end: launch attempts are forgotten only after a healthy run.

mod common;

use common::*;
use mesos_proto::ids;
use mesos_proto::v1::{self, TaskState};
use mmm_core::model::ServerState;
use mmm_core::scheduler::{Event, Scheduler, Settings};

const HEALTHY_AFTER_MS: u64 = 60_000;
const POISON: &str = "delivery of source record orders/3@41 to orders failed after the \
                      producer's retries: Message production error: MessageSizeTooLarge";

fn crash_settings() -> Settings {
    let mut s = settings();
    s.tuning.healthy_after_ms = HEALTHY_AFTER_MS;
    s
}

/// Offers until server 1 is launched; returns its task and executor ids.
fn launch(s: &mut Scheduler, now: u64) -> (String, String) {
    let actions = s.handle(Event::Offers(vec![offer("o", "h1", 4.0, 4096.0)]), now);
    let task = launched(&actions).pop().expect("a launch");
    let executor = task
        .executor
        .as_ref()
        .map(|e| e.executor_id.value.clone())
        .expect("a custom executor");
    (task.task_id.value, executor)
}

fn update(s: &mut Scheduler, task: &str, state: TaskState, message: &str, now: u64) {
    let mut st = status(task, "agent-h1", state, None);
    st.message = Some(message.into());
    s.handle(Event::Update(st), now);
}

fn metrics(s: &mut Scheduler, executor: &str, health: &str, now: u64) {
    let doc = serde_json::json!({"kind": "metrics", "health": health, "error": null});
    s.handle(
        Event::ExecutorMessage {
            agent_id: ids::agent_id("agent-h1"),
            executor_id: v1::ExecutorId {
                value: executor.into(),
            },
            data: serde_json::to_vec(&doc).expect("json").into(),
        },
        now,
    );
}

#[test]
fn a_poison_record_ends_failed_after_the_attempts_with_its_position() {
    let mut s = subscribed(crash_settings());
    s.command(add(1), 0).expect("add");
    let mut now = 0;
    for attempt in 1..=3 {
        let (task, executor) = launch(&mut s, now);
        update(&mut s, &task, TaskState::TaskRunning, "running", now + 10);
        metrics(&mut s, &executor, "ok", now + 20);
        s.handle(Event::Tick, now + 30);
        let server = s.cluster().get(1).expect("server");
        assert_eq!(server.launch_attempts, attempt, "RUNNING resets nothing");
        update(&mut s, &task, TaskState::TaskFailed, POISON, now + 1_000);
        now += 1_000_000; // past any backoff
    }
    let server = s.cluster().get(1).expect("server");
    assert_eq!(server.state, ServerState::Failed);
    let message = server.message.clone().unwrap_or_default();
    assert!(
        message.contains("gave up after 3 launches") && message.contains("orders/3@41"),
        "{message}"
    );
    assert!(message.contains("MessageSizeTooLarge"), "{message}");
}

#[test]
fn attempts_reset_after_a_healthy_run_only() {
    let mut s = subscribed(crash_settings());
    s.command(add(1), 0).expect("add");
    let (task, executor) = launch(&mut s, 0);
    update(&mut s, &task, TaskState::TaskRunning, "running", 100);

    s.handle(Event::Tick, 100 + HEALTHY_AFTER_MS - 1);
    assert_eq!(s.cluster().get(1).expect("server").launch_attempts, 1);

    // A task reporting a problem has not run healthy, however long it runs.
    metrics(&mut s, &executor, "stalled", 200);
    s.handle(Event::Tick, 100 + 10 * HEALTHY_AFTER_MS);
    assert_eq!(s.cluster().get(1).expect("server").launch_attempts, 1);

    metrics(&mut s, &executor, "ok", 100 + 10 * HEALTHY_AFTER_MS + 1);
    s.handle(Event::Tick, 100 + 10 * HEALTHY_AFTER_MS + 2);
    assert_eq!(s.cluster().get(1).expect("server").launch_attempts, 0);
}

#[test]
fn a_healthy_run_before_each_failure_keeps_relaunching() {
    let mut s = subscribed(crash_settings());
    s.command(add(1), 0).expect("add");
    let mut now = 0;
    for _ in 0..5 {
        let (task, _) = launch(&mut s, now);
        update(&mut s, &task, TaskState::TaskRunning, "running", now + 1);
        s.handle(Event::Tick, now + 1 + HEALTHY_AFTER_MS);
        update(
            &mut s,
            &task,
            TaskState::TaskFailed,
            "broker gone",
            now + 2 + HEALTHY_AFTER_MS,
        );
        now += 10 * HEALTHY_AFTER_MS;
        assert_eq!(
            s.cluster().get(1).expect("server").state,
            ServerState::Starting
        );
    }
}

#[test]
fn the_mirror_keys_travel_in_the_task_data() {
    let mut settings = crash_settings();
    settings.mirror.replication_factor = Some(3);
    settings.mirror.stall_timeout_ms = 45_000;
    let mut s = subscribed(settings);
    s.command(add(1), 0).expect("add");
    let actions = s.handle(Event::Offers(vec![offer("o", "h1", 4.0, 4096.0)]), 0);
    let task = launched(&actions).pop().expect("a launch");
    let data = mmm_core::task_data::TaskData::from_json(&task.data.expect("task data"))
        .expect("valid task data");
    assert_eq!(data.replication_factor, Some(3));
    assert_eq!(data.stall_timeout_ms, 45_000);
}
