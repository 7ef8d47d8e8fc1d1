//! Status updates on their way to the scheduler.
//!
//! Updates with a uuid (from executors and agents) go through a per-task
//! queue, as in the agent's status update manager: only the oldest one is
//! sent, it is re-sent until acknowledged, then the next one goes out.
//! Updates made by the master (reconciliation, invalid launches, lost
//! agents) carry no uuid and are sent once.

use std::time::Instant;

use mesos_proto::v1::{executor as exec, TaskState, TaskStatus};

use crate::state::{events, is_terminal, PendingUpdate, State, TaskRecord};

type TaskKey = (String, String);

/// Queues an update with a uuid for `key`'s task and sends it if it is the
/// oldest one waiting.
pub(crate) fn enqueue(
    st: &mut State,
    key: &TaskKey,
    status: TaskStatus,
    from_executor: bool,
    retry: std::time::Duration,
) {
    let Some(task) = st.tasks.get_mut(key) else {
        return;
    };
    task.record(&status);
    task.pending.push_back(PendingUpdate {
        status,
        from_executor,
        next_send: Instant::now(),
        sends: 0,
    });
    if task.pending.len() == 1 {
        send_head(st, key, retry);
    }
}

/// Sends the oldest unacknowledged update of a task.
pub(crate) fn send_head(st: &mut State, key: &TaskKey, retry: std::time::Duration) {
    let Some(task) = st.tasks.get_mut(key) else {
        return;
    };
    let Some(head) = task.pending.front_mut() else {
        return;
    };
    head.next_send = Instant::now() + retry;
    head.sends += 1;
    let first_send = head.sends == 1;
    let event = events::update(head.status.clone());
    let framework_id = task.framework_id.clone();
    deliver(st, &framework_id, event, first_send);
}

/// Sends a master-made update (no uuid, never re-sent).
pub(crate) fn send_master_update(st: &mut State, framework_id: &str, status: TaskStatus) {
    deliver(st, framework_id, events::update(status), false);
}

/// Sends one UPDATE event, applying the duplicate and reorder faults.
fn deliver(
    st: &mut State,
    framework_id: &str,
    event: mesos_proto::v1::scheduler::Event,
    first_send: bool,
) {
    if first_send && st.faults.reorder_updates > 0 && st.faults.held_update.is_none() {
        st.faults.reorder_updates -= 1;
        st.faults.held_update = Some((framework_id.to_owned(), event));
        return;
    }
    let duplicate = first_send && st.faults.duplicate_updates > 0;
    if duplicate {
        st.faults.duplicate_updates -= 1;
    }
    if let Some(fw) = st.frameworks.get_mut(framework_id) {
        fw.send(&event);
        if duplicate {
            fw.send(&event);
        }
    }
    if let Some((held_fw, held)) = st.faults.held_update.take() {
        if let Some(fw) = st.frameworks.get_mut(&held_fw) {
            fw.send(&held);
        }
    }
}

/// Re-sends every update whose retry time has come.
pub(crate) fn retry_due(st: &mut State, now: Instant, retry: std::time::Duration) {
    let due: Vec<TaskKey> = st
        .tasks
        .iter()
        .filter(|(_, t)| t.pending.front().is_some_and(|h| h.next_send <= now))
        .map(|(k, _)| k.clone())
        .collect();
    for key in due {
        let connected = st
            .tasks
            .get(&key)
            .and_then(|t| st.frameworks.get(&t.framework_id))
            .is_some_and(|f| f.conn.is_some());
        if connected {
            send_head(st, &key, retry);
        }
    }
}

/// What became of an ACKNOWLEDGE.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AckOutcome {
    Acknowledged,
    /// Why it matched nothing, in the agent's words.
    Ignored(String),
}

/// Applies an acknowledgement: pops the matching update, tells the executor,
/// sends the next update, and forgets a task whose terminal update was acked.
pub(crate) fn acknowledge(
    st: &mut State,
    framework_id: &str,
    agent_id: &str,
    task_id: &str,
    uuid: &[u8],
    retry: std::time::Duration,
) -> AckOutcome {
    let key = (framework_id.to_owned(), task_id.to_owned());
    let Some(task) = st.tasks.get_mut(&key) else {
        return AckOutcome::Ignored(format!(
            "Cannot acknowledge status update for unknown task {task_id} of framework {framework_id}"
        ));
    };
    if task.agent_id != agent_id {
        return AckOutcome::Ignored(format!(
            "Cannot acknowledge status update for task {task_id}: it runs on agent {} not {agent_id}",
            task.agent_id
        ));
    }
    let Some(head) = task.pending.front() else {
        return AckOutcome::Ignored(format!(
            "Unexpected status update acknowledgement (received {}) for task {task_id} of framework {framework_id}: no update is pending",
            uuid_text(uuid)
        ));
    };
    let expected = head.status.uuid.clone().unwrap_or_default();
    if expected.as_ref() != uuid {
        return AckOutcome::Ignored(format!(
            "Unexpected status update acknowledgement (received {}, expecting {}) for task {task_id} of framework {framework_id}",
            uuid_text(uuid),
            uuid_text(&expected)
        ));
    }
    let Some(acked) = task.pending.pop_front() else {
        return AckOutcome::Ignored("no pending update".into());
    };
    task.acked_uuids.push(expected);
    let acked_state = TaskState::try_from(acked.status.state).unwrap_or(TaskState::TaskStaging);
    let executor_id = task.executor_id.clone();
    let more = !task.pending.is_empty();
    if is_terminal(acked_state) && !more {
        task.live = false;
    }
    if acked.from_executor {
        if let Some(exec_id) = executor_id {
            notify_executor(
                st,
                agent_id,
                framework_id,
                &exec_id,
                task_id,
                acked.status.uuid.clone().unwrap_or_default(),
            );
        }
    }
    if more {
        send_head(st, &key, retry);
    }
    AckOutcome::Acknowledged
}

fn notify_executor(
    st: &mut State,
    agent_id: &str,
    framework_id: &str,
    executor_id: &str,
    task_id: &str,
    uuid: bytes::Bytes,
) {
    let Some(idx) = st.agent_index(agent_id) else {
        return;
    };
    let key = (framework_id.to_owned(), executor_id.to_owned());
    if let Some(executor) = st.agents[idx].executors.get_mut(&key) {
        let event = exec::Event {
            r#type: Some(exec::event::Type::Acknowledged as i32),
            acknowledged: Some(exec::event::Acknowledged {
                task_id: mesos_proto::ids::task_id(task_id),
                uuid,
            }),
            ..exec::Event::default()
        };
        executor.send(&event);
    }
}

pub(crate) fn uuid_text(bytes: &[u8]) -> String {
    uuid::Uuid::from_slice(bytes)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| format!("{bytes:?}"))
}

/// Drops the queued updates of a task (its agent is gone).
pub(crate) fn drop_pending(task: &mut TaskRecord) {
    task.pending.clear();
}
