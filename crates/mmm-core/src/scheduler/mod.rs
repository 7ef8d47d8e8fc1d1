//! The scheduler's decisions as a pure state machine: events and commands
//! in, actions out. The shell performs the actions in order, and a
//! [`Action::Persist`] must succeed before the actions after it are sent.
//!
//! Nothing here reads a clock or a random source: `now_ms` comes with each
//! call and ids and jitter come from a generator seeded at construction, so
//! the same seed and inputs always give the same actions.

mod action;
mod backoff;
mod command;
mod event;
mod health;
mod launch;
mod offers;
mod operator;
mod placement;
mod reconcile;
mod rng;
mod settings;
mod status;

use std::collections::BTreeMap;

use mesos_proto::v1;

pub use action::Action;
pub use command::{AddServers, Command, CommandError, CommandOutcome};
pub use event::Event;
pub use health::HEALTH_OK;
pub use launch::server_of_task;
pub use operator::MAX_SERVERS;
pub use settings::{
    checked_executor_command, executor_exit_reason, Settings, DEFAULT_EXECUTOR_COMMAND,
    EXECUTOR_CHECK_FAILED_EXIT, MAX_ADD_PER_CALL,
};

use crate::model::{Cluster, Goal, Server, ServerId, ServerState};
use rng::SplitMix64;

/// The largest executor message kept, in bytes; larger ones are ignored.
pub const MAX_METRICS_BYTES: usize = 64 * 1024;

/// The scheduler's state: the cluster plus what it tracks in memory.
#[derive(Debug, Clone)]
pub struct Scheduler {
    settings: Settings,
    cluster: Cluster,
    rng: SplitMix64,
    /// Whether a subscription is active (calls to Mesos make sense).
    subscribed: bool,
    /// Whether offers are suppressed, as last told to Mesos; `None` when unknown.
    offers_suppressed: Option<bool>,
    /// Tasks without a fresh status: when to ask Mesos about them next
    /// (explicit reconciliation) and how often they were asked already.
    awaiting_reconcile: BTreeMap<String, reconcile::Ask>,
    /// When implicit reconciliation last ran (this subscription).
    last_implicit_ms: Option<u64>,
    /// The offer of each launch no status has confirmed yet: if Mesos
    /// reports the task unknown, the ACCEPT was lost and the offer, still
    /// outstanding, is declined so that its resources come back.
    launch_offers: BTreeMap<String, v1::OfferId>,
    /// Kills sent and not confirmed yet, with when they were last sent.
    kills_sent: BTreeMap<String, u64>,
    /// Whether the cluster changed during the current call.
    dirty: bool,
    /// Why executors ended, by executor id, from FAILURE events that explain
    /// more than the task's own update will (a failed binary check).
    executor_exits: BTreeMap<String, &'static str>,
    /// Executors whose task ended before their FAILURE arrived, with their
    /// server, so that a late FAILURE still explains the end.
    ended_executors: BTreeMap<String, ServerId>,
}

impl Scheduler {
    /// A scheduler over `cluster` (fresh or restored); `seed` makes its ids
    /// and jitter reproducible.
    pub fn new(settings: Settings, cluster: Cluster, seed: u64) -> Self {
        // A restarted scheduler given the seed of an earlier run must not
        // hand out that run's task ids again: Mesos would take a stale
        // status of the old task for the new one. The stored snapshot
        // names every launch so far, so it makes the stream differ.
        let rng = SplitMix64::new(seed ^ fingerprint(&cluster));
        Scheduler {
            settings,
            cluster,
            rng,
            subscribed: false,
            offers_suppressed: None,
            awaiting_reconcile: BTreeMap::new(),
            last_implicit_ms: None,
            launch_offers: BTreeMap::new(),
            kills_sent: BTreeMap::new(),
            dirty: false,
            executor_exits: BTreeMap::new(),
            ended_executors: BTreeMap::new(),
        }
    }

    /// The cluster as it stands.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The framework id, once Mesos gave one (or restored from the snapshot).
    pub fn framework_id(&self) -> Option<&str> {
        self.cluster.framework_id.as_deref()
    }

    /// Whether a subscription is active.
    pub fn is_subscribed(&self) -> bool {
        self.subscribed
    }

    /// Whether offers are suppressed, as last told to Mesos (`None` before
    /// the first subscription or after a disconnection).
    pub fn offers_suppressed(&self) -> Option<bool> {
        self.offers_suppressed
    }

    /// Handles a Mesos event or a tick at `now_ms` (ms since the epoch).
    pub fn handle(&mut self, event: Event, now_ms: u64) -> Vec<Action> {
        self.dirty = false;
        let mut out = Vec::new();
        match event {
            Event::Subscribed { framework_id } => {
                self.on_subscribed(framework_id, now_ms, &mut out)
            }
            Event::Offers(offers) => self.on_offers(offers, now_ms, &mut out),
            // offers are answered in the round they arrive, so none is held
            Event::Rescind(offer_id) => {
                tracing::debug!(offer = %offer_id.value, "offer rescinded");
            }
            Event::Update(status) => self.on_update(status, now_ms, &mut out),
            Event::ExecutorMessage {
                agent_id,
                executor_id,
                data,
            } => self.on_executor_message(&agent_id, &executor_id, &data, now_ms),
            Event::Failure {
                agent_id,
                executor_id,
                status,
            } => self.on_failure(agent_id, executor_id, status),
            Event::Error(message) => {
                tracing::error!(%message, "the master sent an error");
            }
            Event::Disconnected => {
                self.subscribed = false;
                self.offers_suppressed = None;
                self.kills_sent.clear();
            }
            Event::Tick => {
                self.forget_attempts_of_healthy_tasks(now_ms);
                self.on_tick(now_ms, &mut out)
            }
        }
        self.finish(out)
    }

    /// Applies an operator command; on error nothing changed and no action
    /// is returned.
    pub fn command(
        &mut self,
        cmd: Command,
        now_ms: u64,
    ) -> Result<(CommandOutcome, Vec<Action>), CommandError> {
        let before = self.clone();
        self.dirty = false;
        let mut out = Vec::new();
        match self.apply_command(cmd, now_ms, &mut out) {
            Ok(outcome) => Ok((outcome, self.finish(out))),
            Err(e) => {
                *self = before;
                Err(e)
            }
        }
    }

    /// Puts the snapshot in front of the actions when the cluster changed,
    /// so that it is stored before anything it records takes effect.
    fn finish(&mut self, mut out: Vec<Action>) -> Vec<Action> {
        if std::mem::take(&mut self.dirty) {
            out.insert(0, Action::Persist(self.cluster.clone()));
        }
        out
    }

    /// Whether `server` waits for an offer at `now_ms`.
    fn is_pending(server: &Server, now_ms: u64) -> bool {
        server.goal == Goal::Run
            && server.task_id.is_none()
            && matches!(server.state, ServerState::Added | ServerState::Starting)
            && server.next_retry_ms.is_none_or(|t| t <= now_ms)
    }

    /// Revives when something waits for offers, suppresses when nothing does.
    fn sync_offer_interest(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        if !self.subscribed {
            return;
        }
        let want = self
            .cluster
            .servers
            .values()
            .any(|s| Self::is_pending(s, now_ms));
        match (want, self.offers_suppressed) {
            (true, Some(true) | None) => {
                out.push(Action::Revive);
                self.offers_suppressed = Some(false);
            }
            (false, Some(false) | None) => {
                out.push(Action::Suppress);
                self.offers_suppressed = Some(true);
            }
            _ => {}
        }
    }

    /// Sends a KILL of the server's current task (when subscribed).
    fn kill_current(&mut self, id: crate::model::ServerId, now_ms: u64, out: &mut Vec<Action>) {
        let Some(server) = self.cluster.servers.get(&id) else {
            return;
        };
        let Some(task_id) = server.task_id.clone() else {
            return;
        };
        if !self.subscribed {
            return;
        }
        out.push(Action::Kill {
            task_id: v1::TaskId {
                value: task_id.clone(),
            },
            agent_id: server.agent_id.clone().map(|value| v1::AgentId { value }),
        });
        self.kills_sent.insert(task_id, now_ms);
    }

    fn on_executor_message(
        &mut self,
        agent_id: &v1::AgentId,
        executor_id: &v1::ExecutorId,
        data: &[u8],
        now_ms: u64,
    ) {
        let Some(server) = self.cluster.servers.values_mut().find(|s| {
            // Only the task's own executor on its own agent may report
            // for it: anything else could forge its metrics.
            s.executor_id.as_deref() == Some(executor_id.value.as_str())
                && s.agent_id.as_deref() == Some(agent_id.value.as_str())
        }) else {
            tracing::debug!(executor = %executor_id.value, agent = %agent_id.value, "message from an unknown executor");
            return;
        };
        if data.len() > MAX_METRICS_BYTES {
            tracing::warn!(
                server = server.id,
                bytes = data.len(),
                "executor message too large, ignored"
            );
            return;
        }
        match serde_json::from_slice::<serde_json::Value>(data) {
            Ok(document) => {
                server.metrics = Some(crate::model::Metrics {
                    received_ms: now_ms,
                    document,
                });
            }
            Err(e) => {
                tracing::warn!(server = server.id, error = %e, "executor message is not JSON, ignored");
            }
        }
    }

    pub(super) fn note_ended_executor(&mut self, executor: String, id: ServerId) {
        if self.ended_executors.len() >= MAX_REMEMBERED_EXITS {
            self.ended_executors.clear();
        }
        self.ended_executors.insert(executor, id);
    }

    fn on_failure(
        &mut self,
        agent_id: Option<v1::AgentId>,
        executor_id: Option<v1::ExecutorId>,
        status: Option<i32>,
    ) {
        // the task's own status update follows and decides what happens;
        // until then the operator sees why
        let reason = status.and_then(settings::executor_exit_reason);
        if let (Some(e), Some(reason)) = (&executor_id, reason) {
            match self.ended_executors.remove(&e.value) {
                // Its task already ended: add the reason to what it says.
                Some(id) => {
                    if let Some(server) = self.cluster.servers.get_mut(&id) {
                        let said = server.message.take().unwrap_or_default();
                        server.message = Some(format!("{said} ({reason})"));
                        if let Some(last) = server.history.back_mut() {
                            let said = last.message.take().unwrap_or_default();
                            last.message = Some(format!("{said} ({reason})"));
                        }
                        self.dirty = true;
                    }
                }
                None => {
                    if self.executor_exits.len() >= MAX_REMEMBERED_EXITS {
                        self.executor_exits.clear();
                    }
                    self.executor_exits.insert(e.value.clone(), reason);
                }
            }
        }
        let what = match (&executor_id, status) {
            (Some(e), Some(code)) => match reason {
                Some(reason) => format!("executor {} ended with status {code}: {reason}", e.value),
                None => format!("executor {} ended with status {code}", e.value),
            },
            (Some(e), None) => format!("executor {} ended", e.value),
            (None, _) => "agent failed".to_owned(),
        };
        for server in self.cluster.servers.values_mut() {
            let same_executor = executor_id
                .as_ref()
                .is_some_and(|e| server.executor_id.as_deref() == Some(e.value.as_str()));
            let same_agent = executor_id.is_none()
                && agent_id
                    .as_ref()
                    .is_some_and(|a| server.agent_id.as_deref() == Some(a.value.as_str()));
            if same_executor || same_agent {
                server.message = Some(what.clone());
            }
        }
        tracing::info!(
            agent = agent_id.as_ref().map(|a| a.value.as_str()),
            executor = executor_id.as_ref().map(|e| e.value.as_str()),
            status,
            "failure reported"
        );
    }
}

/// How many ended executors are remembered for their FAILURE, at most.
const MAX_REMEMBERED_EXITS: usize = 1024;

#[cfg(test)]
mod tests;

/// FNV-1a over the snapshot's JSON: equal snapshots, equal fingerprints.
fn fingerprint(cluster: &Cluster) -> u64 {
    cluster
        .to_json()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
}
