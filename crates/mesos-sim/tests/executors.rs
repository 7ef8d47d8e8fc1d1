//! Executors launched through the fetcher, and their tasks' lives.

mod common;

use std::time::Duration;

use common::{executor_task, framework_info, unique, FileServer, Scheduler, WAIT};
use mesos_proto::v1::framework_info::capability::Type as Cap;
use mesos_proto::v1::scheduler::event::Type as Ev;
use mesos_proto::v1::task_status::{Reason, Source};
use mesos_proto::v1::TaskState;
use mesos_proto::{calls, Message, CONTENT_TYPE_PROTOBUF};

/// Serves a small script that runs the built test executor: fetching it
/// still exercises the fetcher and the run bit, without copying the whole
/// (debug) binary into every sandbox.
async fn executor_server() -> FileServer {
    let script = format!(
        "#!/bin/sh\nexec '{}' \"$@\"\n",
        env!("CARGO_BIN_EXE_sim-test-executor")
    );
    FileServer::start(vec![("sim-test-executor", script.into_bytes())]).await
}

/// Serves the test executor binary itself.
async fn real_executor_server() -> FileServer {
    FileServer::start(vec![("sim-test-executor", common::test_executor_bytes())]).await
}

async fn wait_file(path: &std::path::Path, contains: &str) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.contains(contains) {
                return text;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} never contained {contains:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// launch -> TASK_RUNNING -> ACKNOWLEDGED at the executor -> MESSAGE both
/// ways -> KILL -> TASK_KILLED, with the Mesos environment only.
#[tokio::test]
async fn launch_run_message_kill() {
    let files = real_executor_server().await;
    let sim = common::start(1).await;
    let mut s =
        Scheduler::subscribe(&sim.master_url(), framework_info(&[Cap::PartitionAware])).await;
    let offer = s.offer().await;
    let task_id = unique("task");
    let exec_id = unique("exec");
    let task = executor_task(
        &offer,
        &task_id,
        &exec_id,
        &files.url("sim-test-executor"),
        "run",
    );
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![task],
        5.0,
    ))
    .await;

    let running = s.update(&task_id, TaskState::TaskRunning).await;
    assert_eq!(running.source, Some(Source::Executor as i32));
    assert_eq!(running.agent_id, Some(offer.agent_id.clone()));
    assert_eq!(running.uuid.as_ref().map(|u| u.len()), Some(16));
    let container = running.container_status.clone().expect("container status");
    assert!(container.executor_pid.is_some());
    s.ack(&running).await;

    let sandbox = sim.snapshot().sandboxes[0].path.clone();
    let acks = wait_file(&sandbox.join("acks.txt"), &task_id).await;
    let uuid = uuid::Uuid::from_slice(running.uuid.as_deref().expect("uuid"))
        .expect("uuid")
        .to_string();
    assert!(
        acks.contains(&uuid),
        "executor saw ACKNOWLEDGED of {uuid}: {acks}"
    );

    // Only the Mesos variables reach the executor.
    let env = std::fs::read_to_string(sandbox.join("env.txt")).expect("env dump");
    let names: Vec<&str> = env.lines().filter_map(|l| l.split('=').next()).collect();
    let expected = [
        "MESOS_AGENT_ENDPOINT",
        "MESOS_CHECKPOINT",
        "MESOS_DIRECTORY",
        "MESOS_EXECUTOR_ID",
        "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
        "MESOS_FRAMEWORK_ID",
        "MESOS_HTTP_COMMAND_EXECUTOR",
        "MESOS_RECOVERY_TIMEOUT",
        "MESOS_SANDBOX",
        "MESOS_SLAVE_ID",
        "MESOS_SLAVE_PID",
        "MESOS_SUBSCRIPTION_BACKOFF_MAX",
    ];
    // sh itself adds PWD (and may add SHLVL / _), so allow those.
    let extra: Vec<&&str> = names
        .iter()
        .filter(|n| !expected.contains(n) && !["PWD", "SHLVL", "_", "OLDPWD"].contains(n))
        .collect();
    assert!(extra.is_empty(), "unexpected variables {extra:?} in\n{env}");
    for name in expected {
        assert!(names.contains(&name), "{name} missing in\n{env}");
    }
    assert!(env.contains(&format!("MESOS_EXECUTOR_ID={exec_id}")));
    assert!(env.contains("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=1secs"));
    assert!(env.contains(&format!("MESOS_SANDBOX={}", sandbox.display())));
    assert!(env.contains("MESOS_CHECKPOINT=1"));
    assert!(sandbox.join("stdout").exists() && sandbox.join("stderr").exists());

    s.call_ok(mesos_proto::v1::scheduler::Call {
        framework_id: Some(s.framework_id.clone()),
        r#type: Some(mesos_proto::v1::scheduler::call::Type::Message as i32),
        message: Some(mesos_proto::v1::scheduler::call::Message {
            agent_id: offer.agent_id.clone(),
            executor_id: mesos_proto::ids::executor_id(&exec_id),
            data: bytes::Bytes::from_static(b"ping"),
        }),
        ..Default::default()
    })
    .await;
    let echo = s
        .expect("MESSAGE echo", |e| e.r#type == Some(Ev::Message as i32))
        .await;
    let m = echo.message.expect("message");
    assert_eq!(
        (&m.data[..], m.executor_id.value.as_str()),
        (&b"echo:ping"[..], exec_id.as_str())
    );
    assert_eq!(m.agent_id, offer.agent_id);

    s.call_ok(calls::kill(
        &s.framework_id,
        mesos_proto::ids::task_id(&task_id),
        Some(offer.agent_id.clone()),
    ))
    .await;
    let killed = s.update(&task_id, TaskState::TaskKilled).await;
    assert_eq!(killed.source, Some(Source::Executor as i32));
    s.ack(&killed).await;
    sim.wait_for("task forgotten after its terminal ack", WAIT, |snap| {
        snap.tasks
            .iter()
            .find(|t| t.task_id == task_id)
            .filter(|t| !t.live)
            .map(|t| t.states().join(","))
    })
    .await
    .map(|states| assert_eq!(states, "TASK_STAGING,TASK_RUNNING,TASK_KILLED"))
    .expect("history recorded");
    assert!(sim.snapshot().invalid_acknowledgements.is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn an_executor_that_exits_fails_its_tasks_and_sends_failure() {
    let files = executor_server().await;
    let sim = common::start(1).await;
    let mut s = Scheduler::subscribe(&sim.master_url(), framework_info(&[])).await;
    let offer = s.offer().await;
    let task_id = unique("task");
    let exec_id = unique("exec");
    let task = executor_task(
        &offer,
        &task_id,
        &exec_id,
        &files.url("sim-test-executor"),
        "exit:3",
    );
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![task],
        5.0,
    ))
    .await;
    let running = s.update(&task_id, TaskState::TaskRunning).await;
    s.ack(&running).await;
    let failed = s.update(&task_id, TaskState::TaskFailed).await;
    assert_eq!(failed.message.as_deref(), Some("Executor terminated"));
    assert_eq!(failed.reason, Some(Reason::ExecutorTerminated as i32));
    assert_eq!(failed.source, Some(Source::Agent as i32));
    assert_eq!(
        failed.executor_id.as_ref().map(|e| e.value.as_str()),
        Some(exec_id.as_str())
    );
    assert!(failed.uuid.is_some(), "agent-made updates carry a uuid");
    let failure = s
        .expect("FAILURE", |e| e.r#type == Some(Ev::Failure as i32))
        .await;
    let f = failure.failure.expect("failure");
    assert_eq!(f.executor_id.map(|e| e.value), Some(exec_id));
    assert_eq!(f.agent_id, Some(offer.agent_id.clone()));
    assert_eq!(f.status, Some(3 << 8), "raw wait status of exit code 3");
    s.ack(&failed).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn updates_are_resent_until_acknowledged_and_acks_are_checked() {
    let files = executor_server().await;
    let sim = common::start(1).await;
    let mut s = Scheduler::subscribe(&sim.master_url(), framework_info(&[])).await;
    let offer = s.offer().await;
    let task_id = unique("task");
    let task = executor_task(
        &offer,
        &task_id,
        &unique("exec"),
        &files.url("sim-test-executor"),
        "run",
    );
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![task],
        5.0,
    ))
    .await;
    let first = s.update(&task_id, TaskState::TaskRunning).await;
    let again = s.update(&task_id, TaskState::TaskRunning).await;
    assert_eq!(first.uuid, again.uuid, "the same update is re-sent");
    // A wrong uuid acknowledges nothing, and is reported.
    s.call_ok(calls::acknowledge(
        &s.framework_id,
        offer.agent_id.clone(),
        mesos_proto::ids::task_id(&task_id),
        bytes::Bytes::copy_from_slice(uuid::Uuid::new_v4().as_bytes()),
    ))
    .await;
    sim.wait_for("invalid ack recorded", WAIT, |snap| {
        snap.invalid_acknowledgements
            .iter()
            .find(|w| w.contains("Unexpected status update acknowledgement"))
            .cloned()
    })
    .await
    .expect("reported");
    assert_eq!(sim.task(&task_id).expect("task").pending_updates, 1);
    s.ack(&first).await;
    sim.wait_for("no pending update", WAIT, |snap| {
        snap.tasks
            .iter()
            .find(|t| t.task_id == task_id && t.pending_updates == 0)
            .map(|_| ())
    })
    .await
    .expect("acknowledged");
    sim.shutdown().await;
}

#[tokio::test]
async fn reconciliation_answers_from_the_master() {
    let files = executor_server().await;
    let sim = common::start(1).await;
    let mut s =
        Scheduler::subscribe(&sim.master_url(), framework_info(&[Cap::PartitionAware])).await;
    let offer = s.offer().await;
    let task_id = unique("task");
    let exec_id = unique("exec");
    let task = executor_task(
        &offer,
        &task_id,
        &exec_id,
        &files.url("sim-test-executor"),
        "run",
    );
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![task],
        5.0,
    ))
    .await;
    let running = s.update(&task_id, TaskState::TaskRunning).await;
    s.ack(&running).await;
    s.clear_backlog();

    s.call_ok(calls::reconcile(
        &s.framework_id,
        vec![(
            mesos_proto::ids::task_id(&task_id),
            Some(offer.agent_id.clone()),
        )],
    ))
    .await;
    let r = s.update(&task_id, TaskState::TaskRunning).await;
    assert_eq!(r.source, Some(Source::Master as i32));
    assert_eq!(r.reason, Some(Reason::Reconciliation as i32));
    assert_eq!(
        r.message.as_deref(),
        Some("Reconciliation: Latest task state")
    );
    assert_eq!(r.uuid, None);
    assert_eq!(r.executor_id.map(|e| e.value), Some(exec_id));
    assert_eq!(r.container_status, running.container_status);

    s.call_ok(calls::reconcile(&s.framework_id, Vec::new()))
        .await;
    let implicit = s.update(&task_id, TaskState::TaskRunning).await;
    assert_eq!(implicit.reason, Some(Reason::Reconciliation as i32));

    // Unknown tasks: TASK_UNKNOWN for a partition-aware framework without agent,
    // TASK_GONE when the agent is known.
    s.call_ok(calls::reconcile(
        &s.framework_id,
        vec![(mesos_proto::ids::task_id("ghost"), None)],
    ))
    .await;
    s.update("ghost", TaskState::TaskUnknown).await;
    s.call_ok(calls::reconcile(
        &s.framework_id,
        vec![(
            mesos_proto::ids::task_id("ghost2"),
            Some(offer.agent_id.clone()),
        )],
    ))
    .await;
    s.update("ghost2", TaskState::TaskGone).await;

    // Not partition aware: TASK_LOST.
    let mut other = Scheduler::subscribe(&sim.master_url(), framework_info(&[])).await;
    other
        .call_ok(calls::reconcile(
            &other.framework_id,
            vec![(mesos_proto::ids::task_id("ghost"), None)],
        ))
        .await;
    let lost = other.update("ghost", TaskState::TaskLost).await;
    assert_eq!(lost.reason, Some(Reason::Reconciliation as i32));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_failed_fetch_fails_the_task() {
    let files = executor_server().await;
    let sim = common::start(1).await;
    let mut s = Scheduler::subscribe(&sim.master_url(), framework_info(&[])).await;
    let offer = s.offer().await;
    sim.fail_next_fetch();
    let task_id = unique("task");
    let task = executor_task(
        &offer,
        &task_id,
        &unique("exec"),
        &files.url("sim-test-executor"),
        "run",
    );
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![task],
        5.0,
    ))
    .await;
    let failed = s.update(&task_id, TaskState::TaskFailed).await;
    assert_eq!(failed.reason, Some(Reason::ContainerLaunchFailed as i32));
    assert!(
        failed
            .message
            .as_deref()
            .is_some_and(|m| m.contains("fetch")),
        "{failed:?}"
    );
    s.ack(&failed).await;

    // A URI that does not exist fails the same way, naming the URI.
    let offer = s.offer().await;
    let task_id = unique("task");
    let missing = files.url("no-such-file");
    let task = executor_task(&offer, &task_id, &unique("exec"), &missing, "run");
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![task],
        5.0,
    ))
    .await;
    let failed = s.update(&task_id, TaskState::TaskFailed).await;
    assert!(
        failed
            .message
            .as_deref()
            .is_some_and(|m| m.contains(&missing) && m.contains("404")),
        "{failed:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn shutdown_waits_the_grace_period_then_kills() {
    let files = executor_server().await;
    let sim = common::start(1).await;
    let mut s = Scheduler::subscribe(&sim.master_url(), framework_info(&[])).await;
    let offer = s.offer().await;
    let task_id = unique("task");
    let exec_id = unique("exec");
    let task = executor_task(
        &offer,
        &task_id,
        &exec_id,
        &files.url("sim-test-executor"),
        "ignore-shutdown",
    );
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![task],
        5.0,
    ))
    .await;
    let running = s.update(&task_id, TaskState::TaskRunning).await;
    s.ack(&running).await;
    s.call_ok(calls::shutdown(
        &s.framework_id,
        mesos_proto::ids::executor_id(&exec_id),
        offer.agent_id.clone(),
    ))
    .await;
    let failed = s.update(&task_id, TaskState::TaskFailed).await;
    assert_eq!(failed.message.as_deref(), Some("Executor terminated"));
    let failure = s
        .expect("FAILURE", |e| e.r#type == Some(Ev::Failure as i32))
        .await;
    assert_eq!(
        failure.failure.and_then(|f| f.status),
        Some(9),
        "killed by SIGKILL"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn teardown_shuts_executors_down() {
    let files = executor_server().await;
    let sim = common::start(1).await;
    let mut s = Scheduler::subscribe(&sim.master_url(), framework_info(&[])).await;
    let offer = s.offer().await;
    let task_id = unique("task");
    let task = executor_task(
        &offer,
        &task_id,
        &unique("exec"),
        &files.url("sim-test-executor"),
        "run",
    );
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![task],
        5.0,
    ))
    .await;
    s.update(&task_id, TaskState::TaskRunning).await;
    s.call_ok(calls::teardown(&s.framework_id)).await;
    sim.wait_for("executor gone", WAIT, |snap| {
        snap.sandboxes
            .iter()
            .all(|b| !b.running && b.exit_status.is_some())
            .then_some(())
    })
    .await
    .expect("executor stopped");
    let t = sim.task(&task_id).expect("task");
    assert_eq!(t.state, "TASK_KILLED");
    assert!(!t.live);
    sim.shutdown().await;
}

#[tokio::test]
async fn killing_an_agent_loses_its_tasks() {
    let files = executor_server().await;
    let sim = common::start(2).await;
    let agents = sim.agent_ids();
    let mut aware =
        Scheduler::subscribe(&sim.master_url(), framework_info(&[Cap::PartitionAware])).await;
    let offer = aware.offer_on(&agents[0]).await;
    let t1 = unique("task");
    let task = executor_task(
        &offer,
        &t1,
        &unique("exec"),
        &files.url("sim-test-executor"),
        "run",
    );
    aware
        .call_ok(calls::accept_launch(
            &aware.framework_id,
            offer.id.clone(),
            vec![task],
            5.0,
        ))
        .await;
    let running = aware.update(&t1, TaskState::TaskRunning).await;
    aware.ack(&running).await;
    let pid = sim.snapshot().sandboxes[0].pid.expect("pid");

    sim.kill_agent(&agents[0]).expect("agent exists");
    let unreachable = aware.update(&t1, TaskState::TaskUnreachable).await;
    assert_eq!(unreachable.source, Some(Source::Master as i32));
    assert_eq!(unreachable.uuid, None);
    assert!(unreachable.unreachable_time.is_some());
    let failure = aware
        .expect("agent FAILURE", |e| {
            e.failure.as_ref().is_some_and(|f| f.executor_id.is_none())
        })
        .await;
    assert_eq!(
        failure.failure.and_then(|f| f.agent_id).map(|a| a.value),
        Some(agents[0].clone())
    );
    // The executor process is gone.
    let proc_path = format!("/proc/{pid}");
    let deadline = std::time::Instant::now() + WAIT;
    while std::path::Path::new(&proc_path).exists()
        && !std::fs::read_to_string(format!("{proc_path}/stat")).is_ok_and(|s| s.contains(") Z "))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "executor {pid} still alive"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Its endpoint is gone too, and the id of the unreachable task cannot be reused.
    let endpoint = sim.agent_endpoint(&agents[0]).expect("known");
    assert!(reqwest::get(format!("http://{endpoint}/api/v1/executor"))
        .await
        .is_err());
    aware
        .call_ok(calls::reconcile(&aware.framework_id, Vec::new()))
        .await;
    let r = aware.update(&t1, TaskState::TaskUnreachable).await;
    assert_eq!(r.reason, Some(Reason::Reconciliation as i32));
    sim.shutdown().await;
}

#[tokio::test]
async fn duplicated_and_reordered_updates() {
    let files = executor_server().await;
    let sim = common::start(2).await;
    let mut s = Scheduler::subscribe(&sim.master_url(), framework_info(&[])).await;
    sim.duplicate_next_updates(1);
    let offer = s.offer().await;
    let t1 = unique("task");
    let task = executor_task(
        &offer,
        &t1,
        &unique("exec"),
        &files.url("sim-test-executor"),
        "run",
    );
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![task],
        5.0,
    ))
    .await;
    let a = s.update(&t1, TaskState::TaskRunning).await;
    let b = s.update(&t1, TaskState::TaskRunning).await;
    assert_eq!(a.uuid, b.uuid);
    s.ack(&a).await;
    s.ack(&b).await;
    // The duplicate ack matches nothing pending any more.
    sim.wait_for("duplicate ack reported", WAIT, |snap| {
        (!snap.invalid_acknowledgements.is_empty()).then_some(())
    })
    .await
    .expect("reported");

    sim.shutdown().await;
}

#[tokio::test]
async fn a_reordered_update_arrives_after_the_next_one() {
    let files = executor_server().await;
    // A long retry interval, so the held update can only come out behind the next one.
    let sim = mesos_sim::MesosSim::start(mesos_sim::SimConfig {
        update_retry_interval: Duration::from_secs(60),
        ..mesos_sim::SimConfig::with_agents(2).fast()
    })
    .await
    .expect("starts");
    let mut s = Scheduler::subscribe(&sim.master_url(), framework_info(&[])).await;
    sim.reorder_next_updates(1);
    let t2 = unique("task");
    let t3 = unique("task");
    let o2 = s.offer().await;
    let task2 = executor_task(
        &o2,
        &t2,
        &unique("exec"),
        &files.url("sim-test-executor"),
        "run",
    );
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        o2.id.clone(),
        vec![task2],
        0.0,
    ))
    .await;
    sim.wait_for("first RUNNING held", WAIT, |snap| {
        snap.tasks
            .iter()
            .find(|t| t.task_id == t2 && t.state == "TASK_RUNNING")
            .map(|_| ())
    })
    .await
    .expect("running");
    let o3 = s.offer().await;
    let task3 = executor_task(
        &o3,
        &t3,
        &unique("exec"),
        &files.url("sim-test-executor"),
        "run",
    );
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        o3.id.clone(),
        vec![task3],
        0.0,
    ))
    .await;
    let mut order = Vec::new();
    while order.len() < 2 {
        let e = s.expect("an update", |e| e.update.is_some()).await;
        order.push(e.update.expect("update").status.task_id.value);
    }
    assert_eq!(
        order,
        vec![t3, t2],
        "the held update comes right after the next one"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn executor_api_validation() {
    let files = executor_server().await;
    let sim = common::start(1).await;
    let mut s = Scheduler::subscribe(&sim.master_url(), framework_info(&[])).await;
    let offer = s.offer().await;
    let task_id = unique("task");
    let exec_id = unique("exec");
    let task = executor_task(
        &offer,
        &task_id,
        &exec_id,
        &files.url("sim-test-executor"),
        "run",
    );
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![task],
        5.0,
    ))
    .await;
    s.update(&task_id, TaskState::TaskRunning).await;
    let endpoint = sim.agent_endpoint(&offer.agent_id.value).expect("agent");
    let url = format!("http://{endpoint}/api/v1/executor");

    let get = common::get(&url).await;
    assert_eq!(get.status, 405);
    let call = calls::executor_message(
        &s.framework_id,
        &mesos_proto::ids::executor_id(&exec_id),
        bytes::Bytes::from_static(b"x"),
    );
    let no_ct = common::post_raw(&url, None, &[], call.encode_to_vec()).await;
    assert_eq!(
        (no_ct.status, no_ct.body.as_str()),
        (400, "Expecting 'Content-Type' to be present")
    );
    let text = common::post_raw(&url, Some("text/plain"), &[], b"x".to_vec()).await;
    assert_eq!(text.status, 415);

    let mut no_field = calls::executor_subscribe(
        &s.framework_id,
        &mesos_proto::ids::executor_id(&exec_id),
        vec![],
        vec![],
    );
    no_field.subscribe = None;
    let a = common::post_raw(
        &url,
        Some(CONTENT_TYPE_PROTOBUF),
        &[],
        no_field.encode_to_vec(),
    )
    .await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (
            400,
            "Failed to validate Executor::Call: Expecting 'subscribe' to be present"
        )
    );

    let status = |state: TaskState, uuid: Option<bytes::Bytes>, source: Source| {
        mesos_proto::v1::TaskStatus {
            task_id: mesos_proto::ids::task_id(&task_id),
            state: state as i32,
            source: Some(source as i32),
            uuid,
            ..Default::default()
        }
    };
    let fresh = || {
        Some(bytes::Bytes::copy_from_slice(
            uuid::Uuid::new_v4().as_bytes(),
        ))
    };
    let e = mesos_proto::ids::executor_id(&exec_id);
    let cases = [
        (status(TaskState::TaskRunning, None, Source::Executor), "Expecting 'uuid' to be present".to_owned()),
        (status(TaskState::TaskStaging, fresh(), Source::Executor),
            format!("Received TASK_STAGING from executor {exec_id} of framework {} which is not allowed", s.framework_id.value)),
        (status(TaskState::TaskRunning, fresh(), Source::Agent),
            format!("Received Call from executor {exec_id} of framework {} with invalid source, expecting 'SOURCE_EXECUTOR'", s.framework_id.value)),
    ];
    for (st, why) in cases {
        let a = common::post_raw(
            &url,
            Some(CONTENT_TYPE_PROTOBUF),
            &[],
            calls::executor_update(&s.framework_id, &e, st).encode_to_vec(),
        )
        .await;
        assert_eq!(
            (a.status, a.body),
            (400, format!("Failed to validate Executor::Call: {why}"))
        );
    }
    // A call from an executor that never subscribed.
    let stranger = calls::executor_message(
        &s.framework_id,
        &mesos_proto::ids::executor_id("stranger"),
        bytes::Bytes::from_static(b"x"),
    );
    let a = common::post_raw(
        &url,
        Some(CONTENT_TYPE_PROTOBUF),
        &[],
        stranger.encode_to_vec(),
    )
    .await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (400, "Executor cannot be found")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_call_before_subscribing_is_forbidden() {
    // An executor that is launching but has not subscribed yet: a slow URI
    // keeps it in the fetch phase... instead, use a command that sleeps.
    let sim = common::start(1).await;
    let mut s = Scheduler::subscribe(&sim.master_url(), framework_info(&[])).await;
    let offer = s.offer().await;
    let exec_id = unique("exec");
    let mut task = executor_task(&offer, &unique("task"), &exec_id, "http://unused", "run");
    let exec = task.executor.as_mut().expect("executor");
    exec.command = Some(mesos_proto::v1::CommandInfo {
        value: Some("sleep 30".into()),
        ..Default::default()
    });
    // No PATH in the executor environment: give it one, as a framework must.
    exec.command.as_mut().expect("command").environment = Some(mesos_proto::v1::Environment {
        variables: vec![mesos_proto::v1::environment::Variable {
            name: "PATH".into(),
            value: Some("/usr/bin:/bin".into()),
            ..Default::default()
        }],
    });
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![task],
        5.0,
    ))
    .await;
    sim.wait_for("executor started", WAIT, |snap| {
        snap.sandboxes.first().and_then(|b| b.pid)
    })
    .await
    .expect("pid");
    let endpoint = sim.agent_endpoint(&offer.agent_id.value).expect("agent");
    let call = calls::executor_message(
        &s.framework_id,
        &mesos_proto::ids::executor_id(&exec_id),
        bytes::Bytes::from_static(b"x"),
    );
    let a = common::post_raw(
        &format!("http://{endpoint}/api/v1/executor"),
        Some(CONTENT_TYPE_PROTOBUF),
        &[],
        call.encode_to_vec(),
    )
    .await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (403, "Executor is not subscribed")
    );
    sim.shutdown().await;
}

/// A master failover cuts the stream; re-subscribing with the framework id
/// finds the task still running, and its unacknowledged update comes again.
#[tokio::test]
async fn tasks_survive_a_master_restart() {
    let files = executor_server().await;
    let sim = common::start(1).await;
    let mut s =
        Scheduler::subscribe(&sim.master_url(), framework_info(&[Cap::PartitionAware])).await;
    let offer = s.offer().await;
    let task_id = unique("task");
    let task = executor_task(
        &offer,
        &task_id,
        &unique("exec"),
        &files.url("sim-test-executor"),
        "run",
    );
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![task],
        5.0,
    ))
    .await;
    let running = s.update(&task_id, TaskState::TaskRunning).await;
    let old_master = s.subscribed.master_info.clone().expect("master").id;

    sim.restart_master();
    s.until_closed().await;
    let mut info = framework_info(&[Cap::PartitionAware]);
    info.id = Some(s.framework_id.clone());
    let mut again = Scheduler::subscribe(&sim.master_url(), info).await;
    assert_eq!(again.framework_id, s.framework_id);
    assert_ne!(
        again.subscribed.master_info.clone().expect("master").id,
        old_master
    );
    let resent = again.update(&task_id, TaskState::TaskRunning).await;
    assert_eq!(
        resent.uuid, running.uuid,
        "the unacknowledged update is re-sent"
    );
    again.ack(&resent).await;
    again
        .call_ok(calls::reconcile(&again.framework_id, Vec::new()))
        .await;
    let r = again
        .expect("reconciliation", |e| {
            e.update
                .as_ref()
                .is_some_and(|u| u.status.reason == Some(Reason::Reconciliation as i32))
        })
        .await;
    assert_eq!(
        r.update.expect("update").status.state,
        TaskState::TaskRunning as i32
    );
    sim.shutdown().await;
}

/// The agent drops an update it already has, as its status update stream does.
#[tokio::test]
async fn duplicate_executor_updates_are_dropped_by_the_agent() {
    let sim = common::start(1).await;
    let mut s = Scheduler::subscribe(&sim.master_url(), framework_info(&[])).await;
    let offer = s.offer().await;
    let task_id = unique("task");
    let exec_id = unique("exec");
    let task = common::silent_executor_task(&offer, &task_id, &exec_id);
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![task],
        5.0,
    ))
    .await;
    sim.wait_for("executor process", WAIT, |snap| {
        snap.sandboxes.first().and_then(|b| b.pid)
    })
    .await
    .expect("started");
    let endpoint = sim.agent_endpoint(&offer.agent_id.value).expect("agent");
    let mut e = common::ExecutorClient::subscribe(&endpoint, &s.framework_id, &exec_id).await;
    assert!(e.next().await.subscribed.is_some());
    assert_eq!(
        e.next().await.launch.map(|l| l.task.task_id.value),
        Some(task_id.clone())
    );

    let uuid = common::new_uuid();
    assert_eq!(
        e.update(&task_id, TaskState::TaskRunning, &uuid)
            .await
            .status,
        202
    );
    assert_eq!(
        e.update(&task_id, TaskState::TaskRunning, &uuid)
            .await
            .status,
        202
    );
    let running = s.update(&task_id, TaskState::TaskRunning).await;
    s.ack(&running).await;
    let acked = e.next().await.acknowledged.expect("ACKNOWLEDGED");
    assert_eq!(acked.uuid, uuid);
    assert_eq!(
        e.update(&task_id, TaskState::TaskRunning, &uuid)
            .await
            .status,
        202
    );
    let dropped = sim
        .wait_for("both drops recorded", WAIT, |snap| {
            (snap.dropped_executor_calls.len() == 2).then(|| snap.dropped_executor_calls.clone())
        })
        .await
        .expect("recorded");
    assert!(dropped[0].contains("duplicate"), "{dropped:?}");
    assert!(
        dropped[1].contains("already been acknowledged"),
        "{dropped:?}"
    );
    assert_eq!(
        sim.task(&task_id).expect("task").states(),
        ["TASK_STAGING", "TASK_RUNNING"]
    );
    sim.shutdown().await;
}
