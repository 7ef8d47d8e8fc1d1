//! Builders shared by the scheduler tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use bytes::Bytes;
use mesos_proto::resources::scalar;
use mesos_proto::v1::{self, TaskState};
use mesos_proto::{ids, resources};

use mmm_core::config::{MirrorConfig, SchedulerTuning, TopicSelection};
use mmm_core::scheduler::{Action, AddServers, Command, Event, Scheduler, Settings};

pub const BASE_BACKOFF_MS: u64 = 1_000;
pub const RECONCILE_INTERVAL_SECS: u64 = 60;

pub fn settings() -> Settings {
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    Settings {
        executor_uris: vec!["http://127.0.0.1:7000/dist/mmm-executor".into()],
        consumer: map(&[("bootstrap.servers", "src:9092"), ("group.id", "g")]),
        producer: map(&[("bootstrap.servers", "dst:9092"), ("sasl.password", "pw")]),
        mirror: MirrorConfig::defaults_with(TopicSelection::List(vec!["t1".into()])),
        tuning: SchedulerTuning {
            max_launch_attempts: 3,
            relaunch_backoff_ms: BASE_BACKOFF_MS,
            relaunch_backoff_max_ms: 8_000,
            refuse_seconds: 7.0,
            reconcile_timeout_ms: 10_000,
            reconcile_interval_secs: RECONCILE_INTERVAL_SECS,
            unreachable_timeout_ms: 60_000,
            shutdown_grace_period_ms: 5_000,
            constraints: Vec::new(),
            ..SchedulerTuning::default()
        },
        ..Settings::default()
    }
}

pub fn subscribed(settings: Settings) -> Scheduler {
    let mut s = Scheduler::new(settings, mmm_core::model::Cluster::new(), 42);
    s.handle(
        Event::Subscribed {
            framework_id: ids::framework_id("fw-1"),
        },
        0,
    );
    s
}

pub fn add(count: i64) -> Command {
    Command::Add(AddServers {
        count,
        cpus: Some(0.5),
        mem: Some(128.0),
        ..AddServers::default()
    })
}

pub fn offer(id: &str, host: &str, cpus: f64, mem: f64) -> v1::Offer {
    v1::Offer {
        id: ids::offer_id(id),
        framework_id: ids::framework_id("fw-1"),
        agent_id: ids::agent_id(format!("agent-{host}")),
        hostname: host.into(),
        resources: vec![scalar("cpus", cpus), scalar("mem", mem)],
        ..v1::Offer::default()
    }
}

pub fn with_attribute(mut offer: v1::Offer, name: &str, value: &str) -> v1::Offer {
    offer.attributes.push(v1::Attribute {
        name: name.into(),
        r#type: v1::value::Type::Text as i32,
        text: Some(v1::value::Text {
            value: value.into(),
        }),
        ..v1::Attribute::default()
    });
    offer
}

pub fn with_allocation(mut offer: v1::Offer, role: &str) -> v1::Offer {
    let info = v1::resource::AllocationInfo {
        role: Some(role.into()),
    };
    offer.allocation_info = Some(info.clone());
    offer.resources = offer
        .resources
        .into_iter()
        .map(|r| resources::with_allocation(r, Some(info.clone())))
        .collect();
    offer
}

pub fn status(task_id: &str, agent: &str, state: TaskState, uuid: Option<&str>) -> v1::TaskStatus {
    v1::TaskStatus {
        task_id: ids::task_id(task_id),
        state: state as i32,
        agent_id: Some(ids::agent_id(agent)),
        uuid: uuid.map(|u| Bytes::from(u.to_owned())),
        message: Some(format!("{} message", state.as_str_name())),
        ..v1::TaskStatus::default()
    }
}

pub fn launched(actions: &[Action]) -> Vec<v1::TaskInfo> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Launch { tasks, .. } => Some(tasks.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

pub fn declined(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Decline { offer_ids, .. } => Some(offer_ids.clone()),
            _ => None,
        })
        .flatten()
        .map(|o| o.value)
        .collect()
}

pub fn kills(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Kill { task_id, .. } => Some(task_id.value.clone()),
            _ => None,
        })
        .collect()
}

pub fn acks(actions: &[Action]) -> Vec<(String, Bytes)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Acknowledge { task_id, uuid, .. } => {
                Some((task_id.value.clone(), uuid.clone()))
            }
            _ => None,
        })
        .collect()
}

pub fn has_persist(actions: &[Action]) -> bool {
    matches!(actions.first(), Some(Action::Persist(_)))
}
