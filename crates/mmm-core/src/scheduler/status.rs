//! Task status updates: acknowledgements, state changes, relaunches.
//!
//! | Mesos state                    | operator goal | server becomes                      |
//! |--------------------------------|---------------|-------------------------------------|
//! | STAGING, STARTING, KILLING     | any           | unchanged (message kept)            |
//! | RUNNING                        | any           | Running (from Starting); attempts kept until a healthy run |
//! | UNREACHABLE                    | any           | unchanged, marked; replaced on timeout |
//! | FINISHED                       | Run           | Finished                            |
//! | FAILED, KILLED, LOST, ERROR, DROPPED, GONE, GONE_BY_OPERATOR, UNKNOWN | Run | Starting with a backoff, or Failed after too many launches |
//! | any terminal                   | Stop          | Stopped                             |
//! | any terminal                   | Delete        | removed                             |
//!
//! An update for a task that is not a server's current launch changes no
//! server; if that task is alive it is killed.

use mesos_proto::v1::{self, TaskState};

use super::backoff::relaunch_delay_ms;
use super::{Action, Scheduler};
use crate::model::{Goal, ServerId, ServerState};

/// Whether Mesos will send nothing more about a task in this state.
pub(crate) fn is_terminal(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::TaskFinished
            | TaskState::TaskFailed
            | TaskState::TaskKilled
            | TaskState::TaskError
            | TaskState::TaskLost
            | TaskState::TaskDropped
            | TaskState::TaskGone
            | TaskState::TaskGoneByOperator
            | TaskState::TaskUnknown
    )
}

/// Whether the master answers that it never heard of the task: a
/// reconciliation answer of an unknown task.
fn launch_never_arrived(status: &v1::TaskStatus) -> bool {
    let reconciled = status.reason == Some(v1::task_status::Reason::Reconciliation as i32);
    let unknown = matches!(
        TaskState::try_from(status.state),
        Ok(TaskState::TaskLost
            | TaskState::TaskGone
            | TaskState::TaskUnknown
            | TaskState::TaskDropped)
    );
    reconciled && unknown
}

/// The status's `unreachable_time` in ms since the epoch, if it is a
/// plausible time (not negative, not after `now_ms`).
fn unreachable_time_ms(status: &v1::TaskStatus, now_ms: u64) -> Option<u64> {
    let nanos = status.unreachable_time.as_ref()?.nanoseconds;
    let ms = u64::try_from(nanos / 1_000_000).ok()?;
    Some(ms.min(now_ms))
}

fn describe(state: TaskState, status: &v1::TaskStatus) -> String {
    match status.message.as_deref().filter(|m| !m.is_empty()) {
        Some(m) => format!("{}: {m}", state.as_str_name()),
        None => state.as_str_name().to_owned(),
    }
}

impl Scheduler {
    pub(super) fn on_update(&mut self, status: v1::TaskStatus, now_ms: u64, out: &mut Vec<Action>) {
        let task_id = status.task_id.value.clone();
        self.awaiting_reconcile.remove(&task_id);
        if let Some(offer_id) = self.launch_offers.remove(&task_id) {
            if launch_never_arrived(&status) && self.subscribed {
                // The ACCEPT was lost: its offer still holds the agent's
                // resources (declining a used offer is harmless).
                out.push(Action::Decline {
                    offer_ids: vec![offer_id],
                    refuse_seconds: 0.0,
                });
            }
        }
        match TaskState::try_from(status.state) {
            Ok(state) => self.apply_update(state, &status, now_ms, out),
            Err(_) => {
                tracing::warn!(task = %task_id, state = status.state, "update with an unknown task state")
            }
        }
        if let (Some(uuid), Some(agent_id)) = (status.uuid.clone(), status.agent_id.clone()) {
            out.push(Action::Acknowledge {
                agent_id,
                task_id: status.task_id,
                uuid,
            });
        }
    }

    fn apply_update(
        &mut self,
        state: TaskState,
        status: &v1::TaskStatus,
        now_ms: u64,
        out: &mut Vec<Action>,
    ) {
        let task_id = status.task_id.value.as_str();
        let Some(id) = self.cluster.server_by_task(task_id).map(|s| s.id) else {
            // not a current launch: an earlier launch, or not ours at all
            if !is_terminal(state) && self.subscribed {
                tracing::info!(task = %task_id, state = state.as_str_name(), "killing a task the cluster does not know");
                out.push(Action::Kill {
                    task_id: status.task_id.clone(),
                    agent_id: status.agent_id.clone(),
                });
            }
            return;
        };
        let mut message = describe(state, status);
        if is_terminal(state) {
            let executor = self
                .cluster
                .servers
                .get(&id)
                .and_then(|s| s.executor_id.clone());
            if let Some(executor) = executor {
                match self.executor_exits.remove(&executor) {
                    Some(reason) => message = format!("{message} ({reason})"),
                    // The executor's FAILURE may still come and explain it.
                    None => self.note_ended_executor(executor, id),
                }
            }
            self.kills_sent.remove(task_id);
            self.task_ended(id, state, message, now_ms);
            self.sync_offer_interest(now_ms, out);
            return;
        }
        let Some(server) = self.cluster.servers.get_mut(&id) else {
            return;
        };
        let unreachable_since = server.unreachable_since_ms.take();
        if unreachable_since.is_some() && state != TaskState::TaskUnreachable {
            self.dirty = true;
        }
        match state {
            TaskState::TaskRunning => {
                if server.state == ServerState::Starting {
                    if let Err(e) = server.transition(ServerState::Running, now_ms, Some(message)) {
                        tracing::error!(error = %e, "cannot record TASK_RUNNING");
                    }
                    // Attempts are forgotten only after a healthy run (health.rs).
                    self.dirty = true;
                }
            }
            TaskState::TaskUnreachable => {
                // When Mesos lost the agent, not when we heard of it:
                // reconciliation repeats the update after every subscription.
                let since = unreachable_time_ms(status, now_ms)
                    .or(unreachable_since)
                    .unwrap_or(now_ms);
                server.unreachable_since_ms = Some(since);
                server.message = Some(message);
                self.dirty = true;
            }
            // TASK_KILLING, STAGING, STARTING: the state stays, the message is kept
            _ => server.message = Some(message),
        }
    }

    /// The current task of server `id` ended in `state`.
    pub(super) fn task_ended(
        &mut self,
        id: ServerId,
        state: TaskState,
        message: String,
        now_ms: u64,
    ) {
        let Some(server) = self.cluster.servers.get_mut(&id) else {
            return;
        };
        server.clear_task();
        self.dirty = true;
        match server.goal {
            Goal::Delete => {
                self.cluster.servers.remove(&id);
            }
            Goal::Stop => {
                if server.state != ServerState::Stopped {
                    if let Err(e) = server.transition(ServerState::Stopped, now_ms, Some(message)) {
                        tracing::error!(error = %e, "cannot record the stop");
                    }
                }
            }
            Goal::Run if state == TaskState::TaskFinished => {
                if let Err(e) = server.transition(ServerState::Finished, now_ms, Some(message)) {
                    tracing::error!(error = %e, "cannot record the end");
                }
            }
            Goal::Run => self.relaunch_or_fail(id, message, now_ms),
        }
    }

    /// Schedules a relaunch with backoff, or gives up after too many attempts.
    pub(super) fn relaunch_or_fail(&mut self, id: ServerId, message: String, now_ms: u64) {
        let tuning = &self.settings.tuning;
        let (base, max, limit) = (
            tuning.relaunch_backoff_ms,
            tuning.relaunch_backoff_max_ms,
            tuning.max_launch_attempts,
        );
        let Some(server) = self.cluster.servers.get_mut(&id) else {
            return;
        };
        self.dirty = true;
        if server.launch_attempts >= limit {
            server.next_retry_ms = None;
            let message = format!(
                "gave up after {} launches: {message}",
                server.launch_attempts
            );
            if let Err(e) = server.transition(ServerState::Failed, now_ms, Some(message)) {
                tracing::error!(error = %e, "cannot record the failure");
            }
            return;
        }
        let delay = relaunch_delay_ms(base, max, server.launch_attempts, &mut self.rng);
        server.next_retry_ms = Some(now_ms.saturating_add(delay));
        let message = format!("{message}; relaunch in {delay} ms");
        if let Err(e) = server.transition(ServerState::Starting, now_ms, Some(message)) {
            tracing::error!(error = %e, "cannot record the relaunch");
        }
    }
}
