//! Subscription, reconciliation and timers.

use mesos_proto::v1::{self, TaskState};

use super::{Action, Scheduler};
use crate::model::Goal;

impl Scheduler {
    pub(super) fn on_subscribed(
        &mut self,
        framework_id: v1::FrameworkId,
        now_ms: u64,
        out: &mut Vec<Action>,
    ) {
        self.subscribed = true;
        // a new subscription starts with offers flowing
        self.offers_suppressed = Some(false);
        if self.cluster.framework_id.as_deref() != Some(framework_id.value.as_str()) {
            self.cluster.framework_id = Some(framework_id.value);
            self.dirty = true;
        }
        let known: Vec<(v1::TaskId, Option<v1::AgentId>)> = self
            .cluster
            .servers
            .values()
            .filter_map(|s| {
                let task_id = s.task_id.clone()?;
                Some((
                    v1::TaskId { value: task_id },
                    s.agent_id.clone().map(|value| v1::AgentId { value }),
                ))
            })
            .collect();
        self.awaiting_reconcile = known
            .iter()
            .map(|(t, _)| (t.value.clone(), now_ms))
            .collect();
        if !known.is_empty() {
            out.push(Action::Reconcile { tasks: known });
        }
        out.push(Action::Reconcile { tasks: Vec::new() });
        self.kills_sent.clear();
        let stopping: Vec<_> = self
            .cluster
            .servers
            .values()
            .filter(|s| s.goal != Goal::Run && s.task_id.is_some())
            .map(|s| s.id)
            .collect();
        for id in stopping {
            self.kill_current(id, now_ms, out);
        }
        self.sync_offer_interest(now_ms, out);
    }

    pub(super) fn on_tick(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        if !self.subscribed {
            return;
        }
        self.expire_unreachable(now_ms, out);
        self.resend_reconciliation(now_ms, out);
        self.resend_kills(now_ms, out);
        self.sync_offer_interest(now_ms, out);
    }

    /// Gives up on tasks unreachable for too long: kills them (in case they
    /// come back) and treats them as lost.
    fn expire_unreachable(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let timeout = self.settings.tuning.unreachable_timeout_ms;
        let expired: Vec<_> = self
            .cluster
            .servers
            .values()
            .filter(|s| s.task_id.is_some())
            .filter(|s| {
                s.unreachable_since_ms
                    .is_some_and(|since| since.saturating_add(timeout) <= now_ms)
            })
            .map(|s| s.id)
            .collect();
        for id in expired {
            self.kill_current(id, now_ms, out);
            if let Some(task_id) = self
                .cluster
                .servers
                .get(&id)
                .and_then(|s| s.task_id.clone())
            {
                self.kills_sent.remove(&task_id);
                self.awaiting_reconcile.remove(&task_id);
            }
            let message = format!("unreachable for more than {timeout} ms");
            self.task_ended(id, TaskState::TaskLost, message, now_ms);
        }
    }

    fn resend_reconciliation(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let timeout = self.settings.tuning.reconcile_timeout_ms;
        let cluster = &self.cluster;
        self.awaiting_reconcile
            .retain(|task_id, _| cluster.server_by_task(task_id).is_some());
        let mut tasks = Vec::new();
        for (task_id, asked) in self.awaiting_reconcile.iter_mut() {
            if asked.saturating_add(timeout) <= now_ms {
                *asked = now_ms;
                let agent_id = cluster
                    .server_by_task(task_id)
                    .and_then(|s| s.agent_id.clone())
                    .map(|value| v1::AgentId { value });
                tasks.push((
                    v1::TaskId {
                        value: task_id.clone(),
                    },
                    agent_id,
                ));
            }
        }
        if !tasks.is_empty() {
            out.push(Action::Reconcile { tasks });
        }
    }

    fn resend_kills(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let timeout = self.settings.tuning.reconcile_timeout_ms;
        let due: Vec<_> = self
            .cluster
            .servers
            .values()
            .filter(|s| s.goal != Goal::Run)
            .filter_map(|s| {
                let task_id = s.task_id.as_ref()?;
                let sent = self.kills_sent.get(task_id).copied();
                sent.is_none_or(|t| t.saturating_add(timeout) <= now_ms)
                    .then_some(s.id)
            })
            .collect();
        for id in due {
            self.kill_current(id, now_ms, out);
        }
    }
}
