//! Offers, filters and the master's validation of launches.

mod common;

use std::time::Duration;

use common::{executor_task, framework_info, unique, Scheduler};
use mesos_proto::calls;
use mesos_proto::v1::framework_info::capability::Type as Cap;
use mesos_proto::v1::scheduler::event::Type as Ev;
use mesos_proto::v1::task_status::{Reason, Source};
use mesos_proto::v1::TaskState;
use mesos_sim::{AgentConfig, MesosSim, SimConfig};

#[tokio::test]
async fn offers_carry_the_agent_resources_and_attributes_in_the_legacy_format() {
    let sim = MesosSim::start(SimConfig {
        agents: vec![AgentConfig {
            cpus: 4.0,
            mem: 2048.0,
            disk: 500.0,
            ports: vec![(31000, 31010), (32000, 32000)],
            ..AgentConfig::default()
        }
        .with_attribute("rack", "r7")],
        ..SimConfig::default().fast()
    })
    .await
    .expect("starts");
    let mut s =
        Scheduler::subscribe(&sim.master_url(), framework_info(&[Cap::PartitionAware])).await;
    let offer = s.offer().await;
    let master_id = s.subscribed.master_info.clone().expect("master").id;
    assert!(offer.id.value.starts_with(&format!("{master_id}-O")));
    assert_eq!(offer.agent_id.value, format!("{master_id}-S0"));
    assert_eq!(offer.hostname, "127.0.0.1");
    let names: Vec<&str> = offer.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["ports", "cpus", "mem", "disk"]);
    #[allow(deprecated)]
    for r in &offer.resources {
        assert_eq!(r.role.as_deref(), Some("*"), "{r:?}");
        assert!(r.allocation_info.is_none());
    }
    assert_eq!(
        mesos_proto::resources::scalar_sum(&offer.resources, "cpus"),
        4.0
    );
    let ports = offer.resources[0].ranges.clone().expect("ranges").range;
    assert_eq!(
        ports.iter().map(|r| (r.begin, r.end)).collect::<Vec<_>>(),
        vec![(31000, 31010), (32000, 32000)]
    );
    assert_eq!(offer.attributes.len(), 1);
    assert_eq!(
        mesos_proto::resources::attribute_text(&offer.attributes[0]).as_deref(),
        Some("r7")
    );
    let url = offer.url.expect("url");
    assert_eq!(url.path.as_deref(), Some("/slave(1)"));
    assert_eq!(
        format!("127.0.0.1:{}", url.address.port),
        sim.agent_endpoint(&offer.agent_id.value).expect("agent")
    );
    assert!(offer.allocation_info.is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn multi_role_and_refinement_change_the_format() {
    let sim = common::start(1).await;
    let mut s = Scheduler::subscribe(
        &sim.master_url(),
        framework_info(&[Cap::MultiRole, Cap::ReservationRefinement]),
    )
    .await;
    let offer = s.offer().await;
    #[allow(deprecated)]
    for r in &offer.resources {
        assert_eq!(r.role, None);
        assert_eq!(
            r.allocation_info.as_ref().and_then(|a| a.role.as_deref()),
            Some("*")
        );
    }
    // Resources allocated to another role are not in the offer.
    let task_id = unique("task");
    let mut task = executor_task(
        &offer,
        &task_id,
        &unique("exec"),
        "http://127.0.0.1:1/x",
        "",
    );
    task.resources = vec![mesos_proto::resources::with_allocation(
        mesos_proto::resources::scalar("cpus", 0.1),
        Some(mesos_proto::v1::resource::AllocationInfo {
            role: Some("web".into()),
        }),
    )];
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![task],
        0.0,
    ))
    .await;
    let error = s.update(&task_id, TaskState::TaskError).await;
    assert!(
        error
            .message
            .as_deref()
            .is_some_and(|m| m.contains("allocated to role 'web'")),
        "{error:?}"
    );
    // Without allocation_info the master fills in the offer's, even for a
    // MULTI_ROLE framework: the task is launched (and fails to fetch here).
    let offer = s.offer().await;
    let task_id = unique("task");
    let mut task = executor_task(
        &offer,
        &task_id,
        &unique("exec"),
        "http://127.0.0.1:1/x",
        "",
    );
    task.resources = vec![mesos_proto::resources::scalar("cpus", 0.1)];
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![task],
        0.0,
    ))
    .await;
    let failed = s.update(&task_id, TaskState::TaskFailed).await;
    assert_eq!(failed.reason, Some(Reason::ContainerLaunchFailed as i32));
    sim.shutdown().await;
}

#[tokio::test]
async fn decline_filters_revive_clears_suppress_stops() {
    let sim = common::start(1).await;
    let mut s = Scheduler::subscribe(&sim.master_url(), framework_info(&[])).await;
    let offer = s.offer().await;
    s.call_ok(calls::decline(
        &s.framework_id,
        vec![offer.id.clone()],
        3600.0,
    ))
    .await;
    s.clear_backlog();
    let again = s
        .sees_within(Duration::from_millis(800), |e| {
            e.r#type == Some(Ev::Offers as i32)
        })
        .await;
    assert!(!again, "a refused agent is not offered again");
    s.call_ok(calls::revive(&s.framework_id)).await;
    let second = s.offer().await;
    assert_ne!(second.id, offer.id);

    // A short filter expires on its own.
    s.call_ok(calls::decline(
        &s.framework_id,
        vec![second.id.clone()],
        0.5,
    ))
    .await;
    s.clear_backlog();
    s.offer().await;

    s.call_ok(calls::suppress(&s.framework_id)).await;
    sim.rescind_offers();
    s.clear_backlog();
    let during = s
        .sees_within(Duration::from_millis(800), |e| {
            e.r#type == Some(Ev::Offers as i32)
        })
        .await;
    assert!(!during, "no offers while suppressed");
    assert!(sim.snapshot().frameworks[0].suppressed);
    s.call_ok(calls::revive(&s.framework_id)).await;
    s.offer().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn rescinded_offers_are_announced_and_unusable() {
    let sim = common::start(1).await;
    let mut s = Scheduler::subscribe(&sim.master_url(), framework_info(&[])).await;
    let offer = s.offer().await;
    sim.rescind_offer(&offer.id.value).expect("outstanding");
    let r = s
        .expect("RESCIND", |e| e.r#type == Some(Ev::Rescind as i32))
        .await;
    assert_eq!(r.rescind.expect("rescind").offer_id, offer.id);
    let task_id = unique("task");
    let task = executor_task(
        &offer,
        &task_id,
        &unique("exec"),
        "http://127.0.0.1:1/x",
        "",
    );
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![task],
        5.0,
    ))
    .await;
    let lost = s.update(&task_id, TaskState::TaskLost).await;
    assert_eq!(lost.reason, Some(Reason::InvalidOffers as i32));
    assert_eq!(lost.source, Some(Source::Master as i32));
    assert_eq!(
        lost.message,
        Some(format!(
            "Task launched with invalid offers: Offer {} is no longer valid",
            offer.id.value
        ))
    );
    assert_eq!(lost.uuid, None);
    assert!(matches!(
        sim.rescind_offer("nope"),
        Err(mesos_sim::SimError::UnknownOffer { .. })
    ));
    sim.shutdown().await;
}

#[tokio::test]
async fn partition_aware_frameworks_get_task_dropped_for_invalid_offers() {
    let sim = common::start(1).await;
    let mut s =
        Scheduler::subscribe(&sim.master_url(), framework_info(&[Cap::PartitionAware])).await;
    let offer = s.offer().await;
    let task_id = unique("task");
    let mut fake = offer.clone();
    fake.id = mesos_proto::ids::offer_id("no-such-offer");
    let task = executor_task(&fake, &task_id, &unique("exec"), "http://127.0.0.1:1/x", "");
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        fake.id.clone(),
        vec![task],
        5.0,
    ))
    .await;
    let dropped = s.update(&task_id, TaskState::TaskDropped).await;
    assert_eq!(dropped.reason, Some(Reason::InvalidOffers as i32));
    sim.shutdown().await;
}

/// Each invalid launch is answered TASK_ERROR with the master's reason.
#[tokio::test]
async fn invalid_tasks_get_task_error() {
    let sim = common::start(1).await;
    let mut s = Scheduler::subscribe(&sim.master_url(), framework_info(&[])).await;
    type Mutate = fn(&mut mesos_proto::v1::TaskInfo);
    let cases: Vec<(Mutate, &str)> = vec![
        (
            |t| t.resources = vec![mesos_proto::resources::scalar("cpus", 100.0)],
            "Total resources",
        ),
        (|t| t.resources.clear(), "Task uses no resources"),
        (
            |t| t.command = Some(Default::default()),
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present",
        ),
        (
            |t| t.agent_id = mesos_proto::ids::agent_id("elsewhere"),
            "Task uses invalid agent elsewhere while agent",
        ),
        (
            |t| t.task_id = mesos_proto::ids::task_id("a/b"),
            "contains invalid characters",
        ),
        (
            |t| {
                if let Some(e) = t.executor.as_mut() {
                    e.framework_id = Some(mesos_proto::ids::framework_id("other"))
                }
            },
            "ExecutorInfo has an invalid FrameworkID (Actual: other vs Expected: ",
        ),
        (
            |t| {
                if let Some(e) = t.executor.as_mut() {
                    e.command = None
                }
            },
            "'ExecutorInfo.command' must be set",
        ),
        (
            |t| {
                if let Some(e) = t.executor.as_mut() {
                    e.r#type = Some(mesos_proto::v1::executor_info::Type::Default as i32)
                }
            },
            "'ExecutorInfo.type' must be 'CUSTOM'",
        ),
    ];
    for (mutate, expected) in cases {
        let offer = s.offer().await;
        let mut task = executor_task(
            &offer,
            &unique("task"),
            &unique("exec"),
            "http://127.0.0.1:1/x",
            "",
        );
        mutate(&mut task);
        let task_id = task.task_id.value.clone();
        s.call_ok(calls::accept_launch(
            &s.framework_id,
            offer.id.clone(),
            vec![task],
            0.0,
        ))
        .await;
        let error = s.update(&task_id, TaskState::TaskError).await;
        assert_eq!(error.reason, Some(Reason::TaskInvalid as i32));
        assert_eq!(error.source, Some(Source::Master as i32));
        let message = error.message.unwrap_or_default();
        assert!(
            message.contains(expected),
            "{message:?} should contain {expected:?}"
        );
        s.clear_backlog();
    }
    // Two tasks with the same id in one ACCEPT: the second is a duplicate.
    let offer = s.offer().await;
    let id = unique("task");
    let a = executor_task(&offer, &id, &unique("exec"), "http://127.0.0.1:1/x", "");
    let b = executor_task(&offer, &id, &unique("exec"), "http://127.0.0.1:1/x", "");
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![a, b],
        0.0,
    ))
    .await;
    let error = s.update(&id, TaskState::TaskError).await;
    assert_eq!(error.message, Some(format!("Task has duplicate ID: {id}")));
    sim.shutdown().await;
}

#[tokio::test]
async fn launched_resources_are_not_offered_again_until_freed() {
    let sim = common::start(1).await;
    let mut s = Scheduler::subscribe(&sim.master_url(), framework_info(&[])).await;
    let offer = s.offer().await;
    let exec_id = unique("exec");
    let mut task = executor_task(&offer, &unique("task"), &exec_id, "http://unused", "");
    task.resources = vec![
        mesos_proto::resources::scalar("cpus", 1.5),
        mesos_proto::resources::scalar("mem", 1000.0),
    ];
    // An executor that never subscribes: the task stays staging and holds its resources.
    let exec = task.executor.as_mut().expect("executor");
    exec.command = Some(mesos_proto::v1::CommandInfo {
        value: Some("exec /bin/sleep 30".into()),
        ..Default::default()
    });
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![task],
        0.0,
    ))
    .await;
    let next = s.offer().await;
    assert_eq!(
        mesos_proto::resources::scalar_sum(&next.resources, "cpus"),
        0.5
    );
    assert_eq!(
        mesos_proto::resources::scalar_sum(&next.resources, "mem"),
        24.0
    );
    assert_eq!(
        next.executor_ids,
        vec![mesos_proto::ids::executor_id(&exec_id)]
    );
    // Shutting the executor down frees them (the task fails when it exits).
    s.call_ok(calls::shutdown(
        &s.framework_id,
        mesos_proto::ids::executor_id(&exec_id),
        offer.agent_id.clone(),
    ))
    .await;
    s.expect("the freed resources offered", |e| {
        e.offers.as_ref().is_some_and(|o| {
            o.offers
                .iter()
                .any(|x| mesos_proto::resources::scalar_sum(&x.resources, "cpus") == 1.5)
        })
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn an_impossible_cluster_is_refused_with_the_reason() {
    let bad_ports = SimConfig {
        agents: vec![AgentConfig {
            ports: vec![(10, 5)],
            ..AgentConfig::default()
        }],
        ..SimConfig::default()
    };
    let err = MesosSim::start(bad_ports).await.expect_err("invalid");
    assert_eq!(
        err.to_string(),
        "invalid configuration: agent 0: port range [10-5] begins after it ends"
    );
    let bad_cpus = SimConfig {
        agents: vec![AgentConfig {
            cpus: f64::NAN,
            ..AgentConfig::default()
        }],
        ..SimConfig::default()
    };
    let err = MesosSim::start(bad_cpus).await.expect_err("invalid");
    assert!(
        err.to_string()
            .contains("cpus must be a non-negative number"),
        "{err}"
    );
}
