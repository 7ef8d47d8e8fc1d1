//! Reservations: offers in both formats and the master's refusal of a task
//! whose resources are not in the offer, against the recorded session of a
//! real master (tests/fixtures/reservations-session.txt).

mod common;

use common::{executor_task, framework_info, unique, Scheduler};
use mesos_proto::calls;
use mesos_proto::v1::framework_info::capability::Type as Cap;
use mesos_proto::v1::{self, resource, TaskState};
use mesos_sim::{AgentConfig, MesosSim, SimConfig};

const SESSION: &str = include_str!("fixtures/reservations-session.txt");

/// The recorded agent: `cpus(mirror):1;mem(mirror):512;cpus:0.5;mem:256;disk:1000`.
async fn recorded_agent(dynamic_principal: Option<&str>) -> MesosSim {
    let agent = AgentConfig {
        cpus: 0.5,
        mem: 256.0,
        disk: 1000.0,
        ports: vec![(31000, 32000)],
        ..AgentConfig::default()
    }
    .with_attribute("rack", "r1")
    .with_reserved("cpus", 1.0, "mirror", dynamic_principal)
    .with_reserved("mem", 512.0, "mirror", dynamic_principal);
    MesosSim::start(SimConfig {
        agents: vec![agent],
        ..SimConfig::default().fast()
    })
    .await
    .expect("mesos-sim starts")
}

/// The recorded TASK_ERROR message, with this run's port range.
fn recorded_refusal() -> String {
    let line = SESSION
        .lines()
        .find(|l| l.contains("message: \"Total resources"))
        .expect("the recorded refusal");
    let text = line.trim().trim_start_matches("message: \"");
    text.trim_end_matches('"').to_owned()
}

fn pre_refinement_info() -> v1::FrameworkInfo {
    #[allow(deprecated)]
    v1::FrameworkInfo {
        role: Some("mirror".into()),
        ..framework_info(&[Cap::PartitionAware, Cap::TaskKillingState])
    }
}

#[allow(deprecated)]
fn role_of(r: &v1::Resource) -> Option<&str> {
    r.role.as_deref()
}

#[tokio::test]
async fn pre_refinement_offers_and_the_refusal_match_the_recording() {
    let sim = recorded_agent(None).await;
    let mut s = Scheduler::subscribe(&sim.master_url(), pre_refinement_info()).await;
    let offer = s.offer().await;
    let shape: Vec<(&str, Option<&str>, Option<f64>)> = offer
        .resources
        .iter()
        .map(|r| (r.name.as_str(), role_of(r), r.scalar.map(|x| x.value)))
        .collect();
    assert_eq!(
        shape,
        [
            ("cpus", Some("mirror"), Some(1.0)),
            ("mem", Some("mirror"), Some(512.0)),
            ("ports", Some("*"), None),
            ("cpus", Some("*"), Some(0.5)),
            ("mem", Some("*"), Some(256.0)),
            ("disk", Some("*"), Some(1000.0)),
        ]
    );
    assert!(offer.resources.iter().all(|r| r.allocation_info.is_none()
        && r.reservations.is_empty()
        && r.reservation.is_none()));
    assert!(offer.allocation_info.is_none());

    // The recorded mistake: unreserved 0.8 cpus and 400 mem.
    let task_id = unique("task-unreserved");
    let mut task = executor_task(&offer, &task_id, &unique("e"), "http://127.0.0.1:1/x", "");
    task.resources = vec![
        mesos_proto::resources::scalar("cpus", 0.8),
        mesos_proto::resources::scalar("mem", 400.0),
    ];
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![task],
        0.0,
    ))
    .await;
    let error = s.update(&task_id, TaskState::TaskError).await;
    assert_eq!(error.message.as_deref(), Some(recorded_refusal().as_str()));
    assert_eq!(
        error.reason,
        Some(v1::task_status::Reason::TaskInvalid as i32)
    );

    // The recorded fix: the same amounts with the offer's role.
    let offer = s.offer().await;
    let task_id = unique("task-reserved");
    let mut task = executor_task(&offer, &task_id, &unique("e"), "http://127.0.0.1:1/x", "");
    task.resources = offer.resources[..2].to_vec();
    task.resources[0].scalar = Some(v1::value::Scalar { value: 0.8 });
    task.resources[1].scalar = Some(v1::value::Scalar { value: 400.0 });
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![task],
        0.0,
    ))
    .await;
    // accepted: it gets past validation and fails only at the fetch
    let failed = s.update(&task_id, TaskState::TaskFailed).await;
    assert_eq!(
        failed.reason,
        Some(v1::task_status::Reason::ContainerLaunchFailed as i32),
        "{failed:?}"
    );
    let view = sim.task(&task_id).expect("task");
    assert_eq!(
        view.resources,
        "cpus(reservations: [(STATIC,mirror)]):0.8; mem(reservations: [(STATIC,mirror)]):400"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn refinement_offers_carry_reservations_and_allocation_like_the_recording() {
    let sim = recorded_agent(Some("ops")).await;
    let info = v1::FrameworkInfo {
        roles: vec!["mirror".into()],
        ..framework_info(&[
            Cap::PartitionAware,
            Cap::TaskKillingState,
            Cap::MultiRole,
            Cap::ReservationRefinement,
        ])
    };
    let mut s = Scheduler::subscribe(&sim.master_url(), info).await;
    let offer = s.offer().await;
    assert_eq!(
        offer
            .allocation_info
            .as_ref()
            .and_then(|a| a.role.as_deref()),
        Some("mirror")
    );
    for (i, r) in offer.resources.iter().enumerate() {
        assert_eq!(role_of(r), None, "{r:?}");
        assert_eq!(
            r.allocation_info.as_ref().and_then(|a| a.role.as_deref()),
            Some("mirror")
        );
        let expected = (i < 2).then(|| resource::ReservationInfo {
            r#type: Some(resource::reservation_info::Type::Dynamic as i32),
            role: Some("mirror".into()),
            principal: Some("ops".into()),
            labels: None,
        });
        assert_eq!(r.reservations.first(), expected.as_ref(), "{r:?}");
    }
    // A task may take from both: 1.2 cpus = 1 reserved + 0.2 unreserved.
    let task_id = unique("task");
    let mut task = executor_task(&offer, &task_id, &unique("e"), "http://127.0.0.1:1/x", "");
    let mut reserved = offer.resources[0].clone();
    let mut unreserved = offer.resources[3].clone();
    reserved.scalar = Some(v1::value::Scalar { value: 1.0 });
    unreserved.scalar = Some(v1::value::Scalar { value: 0.2 });
    task.resources = vec![reserved.clone(), unreserved];
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![task],
        0.0,
    ))
    .await;
    s.update(&task_id, TaskState::TaskFailed).await;
    assert_eq!(
        sim.task(&task_id).expect("task").resources,
        "cpus(reservations: [(DYNAMIC,mirror,ops)]):1; cpus:0.2"
    );
    // More reserved cpus than offered is refused in Mesos's words.
    let offer = s.offer().await;
    let task_id = unique("task");
    let mut task = executor_task(&offer, &task_id, &unique("e"), "http://127.0.0.1:1/x", "");
    reserved.scalar = Some(v1::value::Scalar { value: 1.5 });
    task.resources = vec![reserved];
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![task],
        0.0,
    ))
    .await;
    let error = s.update(&task_id, TaskState::TaskError).await;
    let message = error.message.unwrap_or_default();
    assert!(
        message.starts_with(
            "Total resources cpus(allocated: mirror)(reservations: [(DYNAMIC,mirror,ops)]):1.5 required by task and its executor is more than available cpus(allocated: mirror)(reservations: [(DYNAMIC,mirror,ops)]):1;"
        ),
        "{message}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn reserved_resources_are_offered_only_to_their_role() {
    let sim = recorded_agent(None).await;
    let mut s =
        Scheduler::subscribe(&sim.master_url(), framework_info(&[Cap::PartitionAware])).await;
    let offer = s.offer().await;
    assert!(
        offer.resources.iter().all(|r| role_of(r) == Some("*")),
        "a '*' framework sees no reservation: {:?}",
        offer.resources
    );
    assert_eq!(
        mesos_proto::resources::scalar_sum(&offer.resources, "cpus"),
        0.5
    );
    sim.shutdown().await;
}
