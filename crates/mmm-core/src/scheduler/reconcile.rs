//! Subscription, reconciliation and timers.
//!
//! As Mesos's reconciliation guide says: every known task is reconciled
//! explicitly at each subscription, and asked again, with truncated
//! exponential backoff, until a status about it arrives; implicit
//! reconciliation runs every `reconcile_interval_secs`, and a task it brings
//! no status for is then asked about explicitly; a launch not confirmed
//! within `reconcile_timeout_ms` (a lost ACCEPT) is asked about at once.

use mesos_proto::v1::{self, TaskState};

use super::{Action, Scheduler};
use crate::model::Goal;

/// A task waiting for a fresh status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ask {
    /// When to ask Mesos about it (next).
    pub(crate) next_ms: u64,
    /// How many explicit reconciliations asked about it already.
    pub(crate) attempts: u32,
}

/// The wait after explicit ask number `attempts` (1 = the first):
/// `timeout * 2^(attempts-1)`, truncated at `cap`.
pub(crate) fn explicit_backoff_ms(timeout: u64, attempts: u32, cap: u64) -> u64 {
    let doublings = attempts.saturating_sub(1).min(32);
    timeout
        .saturating_mul(1u64 << doublings)
        .min(cap.max(timeout))
}

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
        let first_wait = self.explicit_backoff(1);
        self.awaiting_reconcile = known
            .iter()
            .map(|(t, _)| {
                let ask = Ask {
                    next_ms: now_ms.saturating_add(first_wait),
                    attempts: 1,
                };
                (t.value.clone(), ask)
            })
            .collect();
        if !known.is_empty() {
            out.push(Action::Reconcile { tasks: known });
        }
        out.push(Action::Reconcile { tasks: Vec::new() });
        self.last_implicit_ms = Some(now_ms);
        // offers do not outlive a subscription
        self.launch_offers.clear();
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
        self.reconcile_implicitly_when_due(now_ms, out);
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

    /// The wait after explicit ask number `attempts`, truncated at the
    /// implicit reconciliation interval.
    fn explicit_backoff(&self, attempts: u32) -> u64 {
        let tuning = &self.settings.tuning;
        let interval_ms = tuning.reconcile_interval_secs.saturating_mul(1000);
        explicit_backoff_ms(tuning.reconcile_timeout_ms, attempts, interval_ms)
    }

    /// Records that `task_id` was just launched: unless a status about it
    /// arrives within the reconcile timeout, Mesos is asked about it.
    pub(super) fn await_launch_status(&mut self, task_id: &str, now_ms: u64) {
        let ask = Ask {
            next_ms: now_ms.saturating_add(self.settings.tuning.reconcile_timeout_ms),
            attempts: 0,
        };
        self.awaiting_reconcile.insert(task_id.to_owned(), ask);
    }

    /// Implicit reconciliation every interval; tasks it brings no status
    /// for within the reconcile timeout are then asked about explicitly.
    fn reconcile_implicitly_when_due(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let interval_ms = self
            .settings
            .tuning
            .reconcile_interval_secs
            .saturating_mul(1000);
        let due = self
            .last_implicit_ms
            .is_none_or(|last| last.saturating_add(interval_ms) <= now_ms);
        if !due {
            return;
        }
        self.last_implicit_ms = Some(now_ms);
        out.push(Action::Reconcile { tasks: Vec::new() });
        let next_ms = now_ms.saturating_add(self.settings.tuning.reconcile_timeout_ms);
        for task_id in self
            .cluster
            .servers
            .values()
            .filter_map(|s| s.task_id.clone())
        {
            self.awaiting_reconcile.entry(task_id).or_insert(Ask {
                next_ms,
                attempts: 0,
            });
        }
    }

    fn resend_reconciliation(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let cluster = &self.cluster;
        self.awaiting_reconcile
            .retain(|task_id, _| cluster.server_by_task(task_id).is_some());
        let due: Vec<String> = self
            .awaiting_reconcile
            .iter()
            .filter(|(_, ask)| ask.next_ms <= now_ms)
            .map(|(t, _)| t.clone())
            .collect();
        let mut tasks = Vec::new();
        for task_id in due {
            let attempts = self
                .awaiting_reconcile
                .get(&task_id)
                .map_or(1, |a| a.attempts.saturating_add(1));
            let wait = self.explicit_backoff(attempts);
            self.awaiting_reconcile.insert(
                task_id.clone(),
                Ask {
                    next_ms: now_ms.saturating_add(wait),
                    attempts,
                },
            );
            let agent_id = self
                .cluster
                .server_by_task(&task_id)
                .and_then(|s| s.agent_id.clone())
                .map(|value| v1::AgentId { value });
            tasks.push((v1::TaskId { value: task_id }, agent_id));
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
