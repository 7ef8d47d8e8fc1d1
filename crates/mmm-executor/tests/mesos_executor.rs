//! The real `mmm-executor` binary against a minimal agent and real brokers.

mod common;

use std::time::{Duration, Instant};

use common::agent::{assert_well_formed, spawn_executor, FakeAgent};
use common::*;
use mesos_proto::v1::TaskState;
use mmm_test_support::{
    consume_all, create_topic, produce, produce_generated, random_name, KafkaBroker,
};

const REASON_TASK_INVALID: i32 = 14;
const REASON_EXECUTOR_TERMINATED: i32 = 1;

#[test]
fn malformed_task_data_gives_task_failed_naming_the_key() {
    let agent = FakeAgent::start();
    let sandbox = tempfile::tempdir().expect("sandbox");
    let mut executor = spawn_executor(&agent, sandbox.path(), &[]);
    agent.wait_subscribed(1, Duration::from_secs(20));
    let doc = serde_json::json!({
        "version": 1,
        "server_id": 3,
        "consumer": {"bootstrap.servers": "127.0.0.1:1"},
        "producer": {"bootstrap.servers": "127.0.0.1:1"},
        "topics": ["t"]
    });
    agent.launch("task-bad", &serde_json::to_vec(&doc).expect("json"));
    let failed = agent.wait_for_state(TaskState::TaskFailed, Duration::from_secs(20));
    assert_well_formed(&failed);
    assert_eq!(failed.task_id.value, "task-bad");
    assert_eq!(failed.reason, Some(REASON_TASK_INVALID));
    let message = failed.message.unwrap_or_default();
    assert!(
        message.contains("group.id"),
        "message names the key: {message}"
    );
    assert!(
        executor
            .wait_timeout(Duration::from_secs(20))
            .expect("wait")
            .is_some(),
        "the executor exits after the failed task"
    );
    let log = std::fs::read_to_string(sandbox.path().join("executor.log")).expect("executor.log");
    assert!(
        log.contains("group.id"),
        "the sandbox log records the cause"
    );
    // Mesos shows the sandbox's stderr file as is: no colour codes in it.
    let stderr = std::fs::read_to_string(sandbox.path().join("stderr")).expect("stderr file");
    assert!(stderr.contains("group.id"), "stderr has the log: {stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "no ANSI escape codes in the sandbox's stderr: {stderr:?}"
    );

    // Bytes that are not JSON at all fail the same way.
    let agent = FakeAgent::start();
    let _executor = spawn_executor(&agent, sandbox.path(), &[]);
    agent.wait_subscribed(1, Duration::from_secs(20));
    agent.launch("task-garbage", b"\xff\x00not json");
    let failed = agent.wait_for_state(TaskState::TaskFailed, Duration::from_secs(20));
    assert!(failed
        .message
        .unwrap_or_default()
        .contains("not valid JSON"));
}

#[test]
fn task_data_that_would_load_code_on_the_agent_is_refused_by_the_executor() {
    let agent = FakeAgent::start();
    let sandbox = tempfile::tempdir().expect("sandbox");
    let marker = sandbox.path().join("loaded");
    let mut executor = spawn_executor(&agent, sandbox.path(), &[]);
    agent.wait_subscribed(1, Duration::from_secs(20));
    // Whoever wrote it (a tampered store, a forged launch), the executor
    // itself refuses a plugin path before any client is created.
    let doc = serde_json::json!({
        "version": 1,
        "server_id": 3,
        "consumer": {"bootstrap.servers": "127.0.0.1:1", "group.id": "g",
                     "plugin.library.paths": marker.display().to_string()},
        "producer": {"bootstrap.servers": "127.0.0.1:1"},
        "topics": ["t"]
    });
    agent.launch("task-plugin", &serde_json::to_vec(&doc).expect("json"));
    let failed = agent.wait_for_state(TaskState::TaskFailed, Duration::from_secs(20));
    assert_eq!(failed.reason, Some(REASON_TASK_INVALID));
    let message = failed.message.unwrap_or_default();
    assert!(
        message.contains("consumer.plugin.library.paths") && message.contains("loads code"),
        "{message}"
    );
    assert!(
        executor
            .wait_timeout(Duration::from_secs(20))
            .expect("wait")
            .is_some(),
        "the executor exits after the refused task"
    );
}

#[test]
fn missing_environment_exits_non_zero_naming_the_variable() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mmm-executor"))
        .env_clear()
        .env("MESOS_FRAMEWORK_ID", "f")
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("MESOS_EXECUTOR_ID"), "{stderr}");
}

#[test]
fn runs_reports_metrics_and_is_killed_with_offsets_committed_as_delivered() {
    let source = KafkaBroker::start().expect("source");
    let target = KafkaBroker::start().expect("target");
    let topic = random_name("kill");
    create_topic(&source.bootstrap(), &topic, 4).expect("topic");
    produce_generated(&source.bootstrap(), &topic, 4, 20_000, 200).expect("first load");

    let agent = FakeAgent::start();
    let sandbox = tempfile::tempdir().expect("sandbox");
    let mut executor = spawn_executor(
        &agent,
        sandbox.path(),
        &[("MMM_EXECUTOR_METRICS_INTERVAL_MS", "300")],
    );
    agent.wait_subscribed(1, Duration::from_secs(20));
    let group = group();
    let data = task(&source.bootstrap(), &target.bootstrap(), &[&topic], &group);
    agent.launch("task-1", &data.to_json());
    let running = agent.wait_for_state(TaskState::TaskRunning, Duration::from_secs(60));
    assert_well_formed(&running);
    assert_eq!(running.task_id.value, "task-1");

    wait_until(
        "a metrics message with records",
        Duration::from_secs(60),
        || {
            agent.messages().iter().any(|m| {
                serde_json::from_slice::<serde_json::Value>(m).is_ok_and(|v| {
                    v["kind"] == "metrics"
                        && v["task_id"] == "task-1"
                        && v["server_id"] == 7
                        && v["records_produced"].as_u64().is_some_and(|n| n > 0)
                        && v["lag"].is_object()
                })
            })
        },
    );

    wait_until(
        "a metrics message reporting the last commit time",
        Duration::from_secs(60),
        || {
            agent.messages().iter().any(|m| {
                serde_json::from_slice::<serde_json::Value>(m).is_ok_and(|v| {
                    v["commits"].as_u64().is_some_and(|n| n > 0)
                        && v["last_commit_unix_ms"].as_u64().is_some_and(|t| t > 0)
                })
            })
        },
    );

    // Heavy load in flight, then KILL.
    let loader = {
        let bootstrap = source.bootstrap();
        let topic = topic.clone();
        std::thread::spawn(move || produce_generated(&bootstrap, &topic, 4, 200_000, 200))
    };
    std::thread::sleep(Duration::from_millis(300));
    let killed_at = Instant::now();
    agent.kill("task-1");
    let killed = agent.wait_for_state(TaskState::TaskKilled, Duration::from_secs(10));
    assert!(
        killed_at.elapsed() <= Duration::from_secs(10),
        "within the grace period"
    );
    assert_well_formed(&killed);
    let status = executor
        .wait_timeout(Duration::from_secs(10))
        .expect("wait")
        .expect("the executor exits after TASK_KILLED");
    assert!(status.success(), "a killed task is a clean exit: {status}");
    join_within(loader, "the loader").expect("second load");

    // A fresh run has no duplicates: each partition's committed offset is
    // exactly the number of its records in the target.
    let offsets = committed(&source.bootstrap(), &group, &topic, 4);
    let total: i64 = offsets.iter().sum();
    assert!(
        total >= 20_000,
        "at least the first load was committed: {offsets:?}"
    );
    let copied = consume_all(
        &target.bootstrap(),
        &topic,
        total as usize,
        Duration::from_secs(60),
    )
    .expect("target records");
    let per_partition = by_partition(&copied);
    for (p, committed) in offsets.iter().enumerate() {
        let n = per_partition.get(&(p as i32)).map_or(0, Vec::len) as i64;
        assert_eq!(n, *committed, "partition {p}: delivered == committed");
    }
}

#[test]
fn sigkill_mid_stream_then_restart_loses_nothing() {
    let source = KafkaBroker::start().expect("source");
    let target = KafkaBroker::start().expect("target");
    let topic = random_name("sigkill");
    let partitions = 4;
    let count = 150_000;
    create_topic(&source.bootstrap(), &topic, partitions).expect("topic");
    produce_generated(&source.bootstrap(), &topic, partitions, count, 200).expect("load");
    let group = group();
    let data = task(&source.bootstrap(), &target.bootstrap(), &[&topic], &group).to_json();

    let agent = FakeAgent::start();
    let sandbox = tempfile::tempdir().expect("sandbox");
    // A small in-flight bound slows the first executor down, so that it is
    // killed with part of the topic still to copy.
    let mut first = spawn_executor(
        &agent,
        sandbox.path(),
        &[("MMM_EXECUTOR_MAX_IN_FLIGHT_RECORDS", "50")],
    );
    agent.wait_subscribed(1, Duration::from_secs(20));
    agent.launch("task-1", &data);
    agent.wait_for_state(TaskState::TaskRunning, Duration::from_secs(60));
    // Some records copied and some commits done, but not all.
    wait_until("a first commit", Duration::from_secs(60), || {
        committed(&source.bootstrap(), &group, &topic, partitions)
            .iter()
            .any(|o| *o > 0)
    });
    first.kill().expect("SIGKILL");
    let at_kill: i64 = committed(&source.bootstrap(), &group, &topic, partitions)
        .iter()
        .map(|o| (*o).max(0))
        .sum();
    assert!(
        at_kill < count as i64,
        "the executor was killed mid-stream ({at_kill} of {count} committed)"
    );

    let agent = FakeAgent::start();
    let _second = spawn_executor(&agent, sandbox.path(), &[]);
    agent.wait_subscribed(1, Duration::from_secs(20));
    agent.launch("task-2", &data);
    agent.wait_for_state(TaskState::TaskRunning, Duration::from_secs(60));

    let report = read_until_complete(&target.bootstrap(), &topic, partitions, count);
    assert_eq!(report.foreign, 0);
    assert_eq!(report.misplaced, 0);
    eprintln!(
        "duplicates after SIGKILL and restart: {}",
        report.duplicates
    );
}

#[test]
fn unacknowledged_updates_are_sent_again_on_resubscription() {
    let source = KafkaBroker::start().expect("source");
    let target = KafkaBroker::start().expect("target");
    let topic = random_name("resub");
    create_topic(&source.bootstrap(), &topic, 1).expect("topic");
    produce(&source.bootstrap(), &topic, &records_with_headers(10, 1)).expect("load");

    let agent = FakeAgent::start();
    agent.set_auto_ack(false);
    let sandbox = tempfile::tempdir().expect("sandbox");
    let _executor = spawn_executor(
        &agent,
        sandbox.path(),
        &[
            ("MESOS_CHECKPOINT", "1"),
            ("MESOS_RECOVERY_TIMEOUT", "1mins"),
            ("MESOS_SUBSCRIPTION_BACKOFF_MAX", "200ms"),
        ],
    );
    agent.wait_subscribed(1, Duration::from_secs(20));
    let group = group();
    agent.launch(
        "task-1",
        &task(&source.bootstrap(), &target.bootstrap(), &[&topic], &group).to_json(),
    );
    let running = agent.wait_for_state(TaskState::TaskRunning, Duration::from_secs(60));

    // The agent restarts: the stream ends and subscriptions fail for a while.
    agent.set_refuse_subscribe(true);
    agent.close_stream();
    std::thread::sleep(Duration::from_millis(500));
    agent.set_refuse_subscribe(false);
    agent.wait_subscribed(2, Duration::from_secs(30));
    let again = agent.subscribes().pop().expect("second subscribe");
    assert!(
        again
            .unacknowledged_updates
            .iter()
            .any(|u| u.status.uuid == running.uuid),
        "the unacknowledged TASK_RUNNING is sent again"
    );
    assert_eq!(
        again
            .unacknowledged_tasks
            .first()
            .map(|t| t.task_id.value.as_str()),
        Some("task-1"),
        "the unacknowledged task is sent again"
    );

    // Replication went on: the records are in the target.
    consume_all(&target.bootstrap(), &topic, 10, Duration::from_secs(60)).expect("records copied");
    agent.set_auto_ack(true);
    agent.shutdown();
    agent.wait_for_state(TaskState::TaskKilled, Duration::from_secs(15));
}

#[test]
fn without_checkpointing_the_executor_exits_when_the_agent_goes_away() {
    let agent = FakeAgent::start();
    let sandbox = tempfile::tempdir().expect("sandbox");
    let mut executor = spawn_executor(&agent, sandbox.path(), &[("MESOS_CHECKPOINT", "0")]);
    agent.wait_subscribed(1, Duration::from_secs(20));
    agent.close_stream();
    let status = executor
        .wait_timeout(Duration::from_secs(20))
        .expect("wait")
        .expect("the executor exits");
    assert!(!status.success());
    let log = std::fs::read_to_string(sandbox.path().join("executor.log")).expect("executor.log");
    assert!(log.contains("checkpointing is off"), "{log}");
}

#[test]
fn a_delivery_that_keeps_failing_gives_task_failed_and_no_commit_past_it() {
    use rdkafka::mocking::MockCluster;
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

    let source = KafkaBroker::start().expect("source");
    let mock = MockCluster::new(1).expect("mock target cluster");
    let topic = random_name("deliveryfail");
    create_topic(&source.bootstrap(), &topic, 2).expect("topic");
    mock.create_topic(&topic, 2, 1).expect("target topic");
    produce_generated(&source.bootstrap(), &topic, 2, 1_000, 100).expect("first load");

    let agent = FakeAgent::start();
    let sandbox = tempfile::tempdir().expect("sandbox");
    let mut executor = spawn_executor(&agent, sandbox.path(), &[]);
    agent.wait_subscribed(1, Duration::from_secs(20));
    let group = group();
    let mut data = task(
        &source.bootstrap(),
        &mock.bootstrap_servers(),
        &[&topic],
        &group,
    );
    data.create_topics = false;
    data.offset_commit_interval_ms = 100;
    data.producer
        .insert("message.timeout.ms".into(), "3000".into());
    agent.launch("task-1", &data.to_json());
    agent.wait_for_state(TaskState::TaskRunning, Duration::from_secs(60));
    wait_until("the first load committed", Duration::from_secs(60), || {
        committed(&source.bootstrap(), &group, &topic, 2) == vec![500, 500]
    });

    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 10_000],
    );
    produce_generated(&source.bootstrap(), &topic, 2, 100, 100).expect("second load");
    let failed = agent.wait_for_state(TaskState::TaskFailed, Duration::from_secs(60));
    assert_well_formed(&failed);
    assert_eq!(failed.reason, Some(REASON_EXECUTOR_TERMINATED));
    let message = failed.message.unwrap_or_default();
    assert!(
        message.contains(&topic) && message.contains("after the producer's retries"),
        "{message}"
    );
    let status = executor
        .wait_timeout(Duration::from_secs(20))
        .expect("wait")
        .expect("the executor exits after TASK_FAILED");
    assert!(!status.success());
    assert_eq!(
        committed(&source.bootstrap(), &group, &topic, 2),
        vec![500, 500],
        "nothing past the failed records is committed"
    );
}

#[test]
fn preserve_with_too_few_target_partitions_gives_task_failed() {
    let source = KafkaBroker::start().expect("source");
    let target = KafkaBroker::start().expect("target");
    let topic = random_name("narrow");
    create_topic(&source.bootstrap(), &topic, 4).expect("topic");
    create_topic(&target.bootstrap(), &topic, 1).expect("narrow target");
    produce_generated(&source.bootstrap(), &topic, 4, 100, 100).expect("load");
    let agent = FakeAgent::start();
    let sandbox = tempfile::tempdir().expect("sandbox");
    let _executor = spawn_executor(&agent, sandbox.path(), &[]);
    agent.wait_subscribed(1, Duration::from_secs(20));
    let mut data = task(
        &source.bootstrap(),
        &target.bootstrap(),
        &[&topic],
        &group(),
    );
    // With create_topics the target would be grown to the source's count.
    data.create_topics = false;
    agent.launch("task-1", &data.to_json());
    let failed = agent.wait_for_state(TaskState::TaskFailed, Duration::from_secs(60));
    assert_eq!(failed.reason, Some(REASON_TASK_INVALID));
    let message = failed.message.unwrap_or_default();
    assert!(
        message.contains("preserve") && message.contains("has 1") && message.contains(&topic),
        "{message}"
    );
}

#[test]
fn with_checkpointing_the_executor_gives_up_after_the_recovery_timeout() {
    let agent = FakeAgent::start();
    let sandbox = tempfile::tempdir().expect("sandbox");
    let mut executor = spawn_executor(
        &agent,
        sandbox.path(),
        &[
            ("MESOS_CHECKPOINT", "1"),
            ("MESOS_RECOVERY_TIMEOUT", "2secs"),
            ("MESOS_SUBSCRIPTION_BACKOFF_MAX", "100ms"),
        ],
    );
    agent.wait_subscribed(1, Duration::from_secs(20));
    agent.set_refuse_subscribe(true);
    agent.close_stream();
    let gone = Instant::now();
    let status = executor
        .wait_timeout(Duration::from_secs(30))
        .expect("wait")
        .expect("the executor gives up");
    assert!(!status.success());
    assert!(
        gone.elapsed() >= Duration::from_secs(2),
        "it retried until the timeout"
    );
    let log = std::fs::read_to_string(sandbox.path().join("executor.log")).expect("executor.log");
    assert!(log.contains("recovery timeout"), "{log}");
}

#[test]
fn sigterm_kills_the_task_and_exits_cleanly() {
    let agent = FakeAgent::start();
    let sandbox = tempfile::tempdir().expect("sandbox");
    let mut executor = spawn_executor(&agent, sandbox.path(), &[]);
    agent.wait_subscribed(1, Duration::from_secs(20));
    // Nothing listens there: the task never gets to consume, which is
    // enough to see the kill path.
    let data = task("127.0.0.1:1", "127.0.0.1:1", &["t"], &group());
    agent.launch("task-1", &data.to_json());
    let log = sandbox.path().join("executor.log");
    wait_until("the launch in the log", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("LAUNCH"))
    });
    const SIGTERM: i32 = 15;
    executor.signal(SIGTERM).expect("SIGTERM");
    let killed = agent.wait_for_state(TaskState::TaskKilled, Duration::from_secs(10));
    assert_eq!(killed.task_id.value, "task-1");
    let status = executor
        .wait_timeout(Duration::from_secs(15))
        .expect("wait")
        .expect("the executor exits");
    assert!(status.success(), "{status}");
}
