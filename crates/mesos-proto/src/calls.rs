//! Builders of the calls a framework and an executor send most.
//!
//! Each builder fills the call's type and its matching field, which Mesos
//! requires together ("Expecting 'accept' to be present").

use bytes::Bytes;

use crate::v1::{
    self, executor as exec, offer::operation, scheduler as sched, AgentId, ExecutorId, Filters,
    FrameworkId, FrameworkInfo, OfferId, TaskId, TaskInfo, TaskStatus,
};

fn call(framework_id: Option<&FrameworkId>, kind: sched::call::Type) -> sched::Call {
    sched::Call {
        framework_id: framework_id.cloned(),
        r#type: Some(kind as i32),
        ..sched::Call::default()
    }
}

/// SUBSCRIBE; `framework_info.id` is set when re-subscribing after a failover.
pub fn subscribe(framework_info: FrameworkInfo) -> sched::Call {
    let mut c = call(framework_info.id.as_ref(), sched::call::Type::Subscribe);
    c.subscribe = Some(sched::call::Subscribe {
        framework_info,
        suppressed_roles: Vec::new(),
    });
    c
}

/// ACCEPT of one offer with one LAUNCH operation.
pub fn accept_launch(
    framework_id: &FrameworkId,
    offer_id: OfferId,
    tasks: Vec<TaskInfo>,
    refuse_seconds: f64,
) -> sched::Call {
    let mut c = call(Some(framework_id), sched::call::Type::Accept);
    c.accept = Some(sched::call::Accept {
        offer_ids: vec![offer_id],
        operations: vec![v1::offer::Operation {
            r#type: Some(operation::Type::Launch as i32),
            launch: Some(operation::Launch { task_infos: tasks }),
            ..v1::offer::Operation::default()
        }],
        filters: Some(Filters {
            refuse_seconds: Some(refuse_seconds),
        }),
    });
    c
}

/// DECLINE with a refuse filter.
pub fn decline(
    framework_id: &FrameworkId,
    offer_ids: Vec<OfferId>,
    refuse_seconds: f64,
) -> sched::Call {
    let mut c = call(Some(framework_id), sched::call::Type::Decline);
    c.decline = Some(sched::call::Decline {
        offer_ids,
        filters: Some(Filters {
            refuse_seconds: Some(refuse_seconds),
        }),
    });
    c
}

/// REVIVE for every role.
pub fn revive(framework_id: &FrameworkId) -> sched::Call {
    let mut c = call(Some(framework_id), sched::call::Type::Revive);
    c.revive = Some(sched::call::Revive::default());
    c
}

/// SUPPRESS for every role.
pub fn suppress(framework_id: &FrameworkId) -> sched::Call {
    let mut c = call(Some(framework_id), sched::call::Type::Suppress);
    c.suppress = Some(sched::call::Suppress::default());
    c
}

/// KILL of one task.
pub fn kill(framework_id: &FrameworkId, task_id: TaskId, agent_id: Option<AgentId>) -> sched::Call {
    let mut c = call(Some(framework_id), sched::call::Type::Kill);
    c.kill = Some(sched::call::Kill {
        task_id,
        agent_id,
        kill_policy: None,
    });
    c
}

/// ACKNOWLEDGE of a status update that carried `uuid`.
pub fn acknowledge(
    framework_id: &FrameworkId,
    agent_id: AgentId,
    task_id: TaskId,
    uuid: Bytes,
) -> sched::Call {
    let mut c = call(Some(framework_id), sched::call::Type::Acknowledge);
    c.acknowledge = Some(sched::call::Acknowledge {
        agent_id,
        task_id,
        uuid,
    });
    c
}

/// RECONCILE: explicit for the tasks given, implicit when `tasks` is empty.
/// The `reconcile` field is present even when empty, as Mesos requires.
pub fn reconcile(framework_id: &FrameworkId, tasks: Vec<(TaskId, Option<AgentId>)>) -> sched::Call {
    let mut c = call(Some(framework_id), sched::call::Type::Reconcile);
    c.reconcile = Some(sched::call::Reconcile {
        tasks: tasks
            .into_iter()
            .map(|(task_id, agent_id)| sched::call::reconcile::Task { task_id, agent_id })
            .collect(),
    });
    c
}

/// SHUTDOWN of one executor.
pub fn shutdown(
    framework_id: &FrameworkId,
    executor_id: ExecutorId,
    agent_id: AgentId,
) -> sched::Call {
    let mut c = call(Some(framework_id), sched::call::Type::Shutdown);
    c.shutdown = Some(sched::call::Shutdown {
        executor_id,
        agent_id,
    });
    c
}

/// TEARDOWN of the framework.
pub fn teardown(framework_id: &FrameworkId) -> sched::Call {
    call(Some(framework_id), sched::call::Type::Teardown)
}

fn executor_call(
    framework_id: &FrameworkId,
    executor_id: &ExecutorId,
    kind: exec::call::Type,
) -> exec::Call {
    exec::Call {
        executor_id: executor_id.clone(),
        framework_id: framework_id.clone(),
        r#type: Some(kind as i32),
        ..exec::Call::default()
    }
}

/// The executor's SUBSCRIBE, carrying what the agent has not acknowledged yet.
pub fn executor_subscribe(
    framework_id: &FrameworkId,
    executor_id: &ExecutorId,
    unacknowledged_tasks: Vec<TaskInfo>,
    unacknowledged_updates: Vec<TaskStatus>,
) -> exec::Call {
    let mut c = executor_call(framework_id, executor_id, exec::call::Type::Subscribe);
    c.subscribe = Some(exec::call::Subscribe {
        unacknowledged_tasks,
        unacknowledged_updates: unacknowledged_updates
            .into_iter()
            .map(|status| exec::call::Update { status })
            .collect(),
    });
    c
}

/// The executor's UPDATE of a task status (which must carry a fresh uuid).
pub fn executor_update(
    framework_id: &FrameworkId,
    executor_id: &ExecutorId,
    status: TaskStatus,
) -> exec::Call {
    let mut c = executor_call(framework_id, executor_id, exec::call::Type::Update);
    c.update = Some(exec::call::Update { status });
    c
}

/// The executor's MESSAGE to its scheduler.
pub fn executor_message(
    framework_id: &FrameworkId,
    executor_id: &ExecutorId,
    data: Bytes,
) -> exec::Call {
    let mut c = executor_call(framework_id, executor_id, exec::call::Type::Message);
    c.message = Some(exec::call::Message { data });
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids;
    use crate::v1::{framework_info::capability, framework_info::Capability};
    use prost::Message;

    /// SUBSCRIBE of {user "u", name "n", checkpoint true, capability
    /// PARTITION_AWARE}, worked out by hand from the field numbers:
    ///   Call.type (2, varint)            10 01
    ///   Call.subscribe (3, len 14)       1a 0e
    ///     framework_info (1, len 12)     0a 0c
    ///       user (1) "u"                 0a 01 75
    ///       name (2) "n"                 12 01 6e
    ///       checkpoint (5, varint) true  28 01
    ///       capabilities (10, len 2)     52 02
    ///         type (1) PARTITION_AWARE=5 08 05
    #[test]
    fn subscribe_call_golden_bytes() {
        let info = FrameworkInfo {
            user: "u".into(),
            name: "n".into(),
            checkpoint: Some(true),
            capabilities: vec![Capability {
                r#type: Some(capability::Type::PartitionAware as i32),
            }],
            ..FrameworkInfo::default()
        };
        let bytes = subscribe(info).encode_to_vec();
        let golden: &[u8] = &[
            0x10, 0x01, 0x1a, 0x0e, 0x0a, 0x0c, 0x0a, 0x01, b'u', 0x12, 0x01, b'n', 0x28, 0x01,
            0x52, 0x02, 0x08, 0x05,
        ];
        assert_eq!(bytes, golden);
        let back = sched::Call::decode(golden).expect("golden bytes decode");
        assert_eq!(back.r#type, Some(sched::call::Type::Subscribe as i32));
        let fi = back.subscribe.expect("subscribe").framework_info;
        assert_eq!((fi.user.as_str(), fi.name.as_str()), ("u", "n"));
    }

    /// SUBSCRIBED {framework_id "f", heartbeat 15.0, master_info {id "m",
    /// ip 16777343, port 5050}}, by hand:
    ///   Event.type (1, varint) SUBSCRIBED=1    08 01
    ///   subscribed (2, len 27)                 12 1b
    ///     framework_id (1, len 3)              0a 03
    ///       value (1) "f"                      0a 01 66
    ///     heartbeat_interval_seconds (2, f64)  11 00 00 00 00 00 00 2e 40
    ///     master_info (3, len 11)              1a 0b
    ///       id (1) "m"                         0a 01 6d
    ///       ip (2, varint) 16777343            10 ff 80 80 08
    ///       port (3, varint) 5050              18 ba 27
    #[test]
    fn subscribed_event_golden_bytes() {
        let golden: &[u8] = &[
            0x08, 0x01, 0x12, 0x1b, 0x0a, 0x03, 0x0a, 0x01, b'f', 0x11, 0, 0, 0, 0, 0, 0, 0x2e,
            0x40, 0x1a, 0x0b, 0x0a, 0x01, b'm', 0x10, 0xff, 0x80, 0x80, 0x08, 0x18, 0xba, 0x27,
        ];
        let event = sched::Event::decode(golden).expect("golden bytes decode");
        assert_eq!(event.r#type, Some(sched::event::Type::Subscribed as i32));
        let sub = event.subscribed.clone().expect("subscribed");
        assert_eq!(sub.framework_id, ids::framework_id("f"));
        assert_eq!(sub.heartbeat_interval_seconds, Some(15.0));
        let master = sub.master_info.expect("master_info");
        assert_eq!(
            (master.id.as_str(), master.ip, master.port),
            ("m", 16_777_343, 5050)
        );
        assert!(master.capabilities.is_empty());
        assert_eq!(event.encode_to_vec(), golden);
    }

    #[test]
    fn implicit_reconcile_carries_an_empty_reconcile_field() {
        let c = reconcile(&ids::framework_id("f"), Vec::new());
        let bytes = c.encode_to_vec();
        let back = sched::Call::decode(bytes.as_slice()).expect("decodes");
        assert!(
            back.reconcile.is_some(),
            "empty reconcile must survive the wire"
        );
        // field 9, length 0
        assert!(bytes.windows(2).any(|w| w == [0x4a, 0x00]));
    }

    #[test]
    fn each_builder_sets_type_and_matching_field() {
        let f = ids::framework_id("f");
        let a = accept_launch(&f, ids::offer_id("o"), Vec::new(), 5.0);
        assert!(a.accept.is_some() && a.r#type == Some(sched::call::Type::Accept as i32));
        let d = decline(&f, vec![ids::offer_id("o")], 30.0);
        assert_eq!(
            d.decline
                .and_then(|d| d.filters)
                .and_then(|f| f.refuse_seconds),
            Some(30.0)
        );
        assert!(revive(&f).revive.is_some());
        assert!(suppress(&f).suppress.is_some());
        assert!(kill(&f, ids::task_id("t"), None).kill.is_some());
        let ack = acknowledge(
            &f,
            ids::agent_id("a"),
            ids::task_id("t"),
            Bytes::from_static(b"u"),
        );
        assert_eq!(
            ack.acknowledge.map(|a| a.uuid),
            Some(Bytes::from_static(b"u"))
        );
        let e = ids::executor_id("e");
        let u = executor_update(&f, &e, TaskStatus::default());
        assert!(u.update.is_some() && u.r#type == Some(exec::call::Type::Update as i32));
        let s = executor_subscribe(&f, &e, Vec::new(), vec![TaskStatus::default()]);
        assert_eq!(s.subscribe.map(|s| s.unacknowledged_updates.len()), Some(1));
    }
}
