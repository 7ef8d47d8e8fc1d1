//! proto2 `required` fields, checked on the raw bytes.
//!
//! Mesos parses calls with the C++ protobuf library, whose `ParseFromString`
//! fails when a required field is missing ("Failed to parse body into Call
//! protobuf"). prost decodes such a message into defaults, so the simulator
//! walks the wire format of the messages a framework or an executor sends
//! and reports the first required field that is absent.

/// The messages whose required fields are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    SchedulerCall,
    ExecutorCall,
    Id,
    FrameworkInfo,
    Subscribe,
    Accept,
    Operation,
    Launch,
    TaskInfo,
    Resource,
    Scalar,
    Ranges,
    Range,
    ExecutorInfo,
    CommandInfo,
    Uri,
    Environment,
    Variable,
    Decline,
    Kill,
    Shutdown,
    Acknowledge,
    Reconcile,
    ReconcileTask,
    SchedulerMessage,
    ExecutorSubscribe,
    ExecutorUpdate,
    TaskStatus,
    ExecutorMessage,
}

type Spec = (&'static [(u32, &'static str)], &'static [(u32, Kind)]);

/// (required fields, sub-messages to check), from mesos.proto,
/// scheduler.proto and executor.proto.
fn spec(kind: Kind) -> Spec {
    use Kind as K;
    match kind {
        K::SchedulerCall => (
            &[],
            &[
                (1, K::Id),
                (3, K::Subscribe),
                (4, K::Accept),
                (5, K::Decline),
                (6, K::Kill),
                (7, K::Shutdown),
                (8, K::Acknowledge),
                (9, K::Reconcile),
                (10, K::SchedulerMessage),
            ],
        ),
        K::ExecutorCall => (
            &[(1, "executor_id"), (2, "framework_id")],
            &[
                (1, K::Id),
                (2, K::Id),
                (4, K::ExecutorSubscribe),
                (5, K::ExecutorUpdate),
                (6, K::ExecutorMessage),
            ],
        ),
        K::Id => (&[(1, "value")], &[]),
        K::FrameworkInfo => (&[(1, "user"), (2, "name")], &[(3, K::Id)]),
        K::Subscribe => (&[(1, "framework_info")], &[(1, K::FrameworkInfo)]),
        K::Accept => (&[], &[(1, K::Id), (2, K::Operation)]),
        K::Operation => (&[], &[(2, K::Launch)]),
        K::Launch => (&[], &[(1, K::TaskInfo)]),
        K::TaskInfo => (
            &[(1, "name"), (2, "task_id"), (3, "agent_id")],
            &[
                (2, K::Id),
                (3, K::Id),
                (4, K::Resource),
                (5, K::ExecutorInfo),
                (7, K::CommandInfo),
            ],
        ),
        K::Resource => (
            &[(1, "name"), (2, "type")],
            &[(3, K::Scalar), (4, K::Ranges)],
        ),
        K::Scalar => (&[(1, "value")], &[]),
        K::Ranges => (&[], &[(1, K::Range)]),
        K::Range => (&[(1, "begin"), (2, "end")], &[]),
        K::ExecutorInfo => (
            &[(1, "executor_id")],
            &[
                (1, K::Id),
                (5, K::Resource),
                (7, K::CommandInfo),
                (8, K::Id),
            ],
        ),
        K::CommandInfo => (&[], &[(1, K::Uri), (2, K::Environment)]),
        K::Uri => (&[(1, "value")], &[]),
        K::Environment => (&[], &[(1, K::Variable)]),
        K::Variable => (&[(1, "name")], &[]),
        K::Decline => (&[], &[(1, K::Id)]),
        K::Kill => (&[(1, "task_id")], &[(1, K::Id), (2, K::Id)]),
        K::Shutdown => (
            &[(1, "executor_id"), (2, "agent_id")],
            &[(1, K::Id), (2, K::Id)],
        ),
        K::Acknowledge => (
            &[(1, "agent_id"), (2, "task_id"), (3, "uuid")],
            &[(1, K::Id), (2, K::Id)],
        ),
        K::Reconcile => (&[], &[(1, K::ReconcileTask)]),
        K::ReconcileTask => (&[(1, "task_id")], &[(1, K::Id), (2, K::Id)]),
        K::SchedulerMessage => (
            &[(1, "agent_id"), (2, "executor_id"), (3, "data")],
            &[(1, K::Id), (2, K::Id)],
        ),
        K::ExecutorSubscribe => (&[], &[(1, K::TaskInfo), (2, K::ExecutorUpdate)]),
        K::ExecutorUpdate => (&[(1, "status")], &[(1, K::TaskStatus)]),
        K::TaskStatus => (
            &[(1, "task_id"), (2, "state")],
            &[(1, K::Id), (5, K::Id), (7, K::Id)],
        ),
        K::ExecutorMessage => (&[(2, "data")], &[]),
    }
}

/// The path of the first missing required field, e.g.
/// `subscribe.framework_info.user`, or `None` when all are there. Bytes
/// that are not valid protobuf are left to the decoder.
pub(crate) fn missing(kind: Kind, bytes: &[u8]) -> Option<String> {
    check(kind, bytes, 0).ok().flatten()
}

/// Deep enough for any real call; deeper nesting is not checked.
const MAX_DEPTH: usize = 16;

fn check(kind: Kind, mut bytes: &[u8], depth: usize) -> Result<Option<String>, ()> {
    if depth > MAX_DEPTH {
        return Ok(None);
    }
    let (required, children) = spec(kind);
    let mut seen: Vec<u32> = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        let field = u32::try_from(key >> 3).map_err(|_| ())?;
        match key & 7 {
            0 => {
                varint(&mut bytes)?;
            }
            1 => bytes = bytes.get(8..).ok_or(())?,
            5 => bytes = bytes.get(4..).ok_or(())?,
            2 => {
                let len = usize::try_from(varint(&mut bytes)?).map_err(|_| ())?;
                let body = bytes.get(..len).ok_or(())?;
                bytes = &bytes[len..];
                if let Some((_, child)) = children.iter().find(|(n, _)| *n == field) {
                    if let Some(path) = check(*child, body, depth + 1)? {
                        let name = required
                            .iter()
                            .find(|(n, _)| *n == field)
                            .map(|(_, name)| *name)
                            .unwrap_or_else(|| field_name(kind, field));
                        return Ok(Some(format!("{name}.{path}")));
                    }
                }
            }
            _ => return Err(()),
        }
        seen.push(field);
    }
    Ok(required
        .iter()
        .find(|(n, _)| !seen.contains(n))
        .map(|(_, name)| (*name).to_owned()))
}

/// Names of the optional sub-message fields, for the reported path.
fn field_name(kind: Kind, field: u32) -> &'static str {
    use Kind as K;
    match (kind, field) {
        (K::SchedulerCall, 1) => "framework_id",
        (K::SchedulerCall, 3) => "subscribe",
        (K::SchedulerCall, 4) => "accept",
        (K::SchedulerCall, 5) => "decline",
        (K::SchedulerCall, 6) => "kill",
        (K::SchedulerCall, 7) => "shutdown",
        (K::SchedulerCall, 8) => "acknowledge",
        (K::SchedulerCall, 9) => "reconcile",
        (K::SchedulerCall, 10) => "message",
        (K::ExecutorCall, 4) => "subscribe",
        (K::ExecutorCall, 5) => "update",
        (K::ExecutorCall, 6) => "message",
        (K::FrameworkInfo, 3) => "id",
        (K::Accept, 1) | (K::Decline, 1) => "offer_ids",
        (K::Accept, 2) => "operations",
        (K::Operation, 2) => "launch",
        (K::Launch, 1) => "task_infos",
        (K::TaskInfo, 4) | (K::ExecutorInfo, 5) => "resources",
        (K::TaskInfo, 5) => "executor",
        (K::TaskInfo, 7) | (K::ExecutorInfo, 7) => "command",
        (K::Resource, 3) => "scalar",
        (K::Resource, 4) => "ranges",
        (K::Ranges, 1) => "range",
        (K::ExecutorInfo, 8) => "framework_id",
        (K::CommandInfo, 1) => "uris",
        (K::CommandInfo, 2) => "environment",
        (K::Environment, 1) => "variables",
        (K::Kill, 2) | (K::ReconcileTask, 2) | (K::TaskStatus, 5) => "agent_id",
        (K::Reconcile, 1) => "tasks",
        (K::ExecutorSubscribe, 1) => "unacknowledged_tasks",
        (K::ExecutorSubscribe, 2) => "unacknowledged_updates",
        (K::TaskStatus, 7) => "executor_id",
        _ => "?",
    }
}

fn varint(bytes: &mut &[u8]) -> Result<u64, ()> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first().ok_or(())?;
        *bytes = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1::{FrameworkInfo, TaskInfo};
    use mesos_proto::{calls, ids, Message};

    #[test]
    fn a_complete_subscribe_passes() {
        let call = calls::subscribe(FrameworkInfo {
            user: "u".into(),
            name: "n".into(),
            ..FrameworkInfo::default()
        });
        assert_eq!(missing(Kind::SchedulerCall, &call.encode_to_vec()), None);
    }

    #[test]
    fn finds_a_missing_field_deep_in_an_accept() {
        // prost always writes `required` strings and messages, so remove
        // TaskInfo.name (field 1) by hand: the task is encoded, re-framed
        // without it, and spliced into a LAUNCH.
        let task = TaskInfo {
            name: "x".into(),
            task_id: ids::task_id("t"),
            agent_id: ids::agent_id("a"),
            ..TaskInfo::default()
        };
        let encoded = task.encode_to_vec();
        assert_eq!(&encoded[..3], &[0x0a, 0x01, b'x']);
        let without_name = &encoded[3..];
        assert_eq!(missing(Kind::TaskInfo, without_name), Some("name".into()));
        assert_eq!(missing(Kind::TaskInfo, &encoded), None);
        // Launch{task_infos: [that]} inside Operation{launch} inside Accept.
        let mut launch = vec![0x0a, without_name.len() as u8];
        launch.extend_from_slice(without_name);
        let mut operation = vec![0x12, launch.len() as u8];
        operation.extend_from_slice(&launch);
        let mut accept = vec![0x12, operation.len() as u8];
        accept.extend_from_slice(&operation);
        let mut call = vec![0x22, accept.len() as u8];
        call.extend_from_slice(&accept);
        assert_eq!(
            missing(Kind::SchedulerCall, &call),
            Some("accept.operations.launch.task_infos.name".into())
        );
    }

    #[test]
    fn executor_update_needs_a_task_state() {
        // Update{status{task_id{value "t"}}}: no state.
        let status = [0x0a, 0x03, 0x0a, 0x01, b't'];
        let mut update = vec![0x0a, status.len() as u8];
        update.extend_from_slice(&status);
        assert_eq!(
            missing(Kind::ExecutorUpdate, &update),
            Some("status.state".into())
        );
    }

    #[test]
    fn garbage_is_left_to_the_decoder() {
        assert_eq!(missing(Kind::SchedulerCall, &[0xff, 0xff]), None);
    }
}
