//! The simulator's state: frameworks, agents, executors, offers and tasks,
//! behind one mutex. Nothing in here awaits; processes and timers are spawned.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mesos_proto::v1::{
    self, framework_info::capability::Type as Capability, scheduler as sched, ExecutorInfo,
    FrameworkInfo, TaskInfo, TaskState, TaskStatus,
};
use mesos_proto::Message;
use tokio::sync::mpsc::UnboundedSender;

use crate::config::{AgentConfig, SimConfig};
use crate::resources::{ResourceFormat, ResourceSet};

/// Everything the HTTP handlers and timers share.
pub(crate) struct Shared {
    pub config: SimConfig,
    pub work_dir: PathBuf,
    pub http: reqwest::Client,
    /// Signs and checks executor tokens (`authenticate_http_executors`).
    pub executor_tokens: crate::executor_auth::TokenIssuer,
    /// The certificate the master and agents serve, with `tls_dir`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    state: Mutex<State>,
}

impl Shared {
    pub fn new(config: SimConfig, work_dir: PathBuf, state: State) -> Self {
        Self {
            config,
            work_dir,
            http: reqwest::Client::new(),
            executor_tokens: crate::executor_auth::TokenIssuer::new(),
            tls: None,
            state: Mutex::new(state),
        }
    }

    /// The state; a panic while it was held leaves it usable, since every
    /// mutation keeps it consistent step by step.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) type SharedRef = Arc<Shared>;

/// One scheduler's event stream.
pub(crate) struct Connection {
    pub stream_id: String,
    pub tx: UnboundedSender<Bytes>,
    pub next_heartbeat: Instant,
}

pub(crate) struct Framework {
    pub id: String,
    pub info: FrameworkInfo,
    pub conn: Option<Connection>,
    pub suppressed: bool,
    /// Refuse filters: no offers from that agent until the instant.
    pub filters: BTreeMap<String, Instant>,
    pub disconnected_since: Option<Instant>,
}

impl Framework {
    pub fn has(&self, cap: Capability) -> bool {
        has_capability(&self.info, cap)
    }

    /// The framework's roles: `roles` with MULTI_ROLE, else `role` (`*`).
    pub fn roles(&self) -> Vec<String> {
        if self.has(Capability::MultiRole) && !self.info.roles.is_empty() {
            return self.info.roles.clone();
        }
        vec![self.role()]
    }

    pub fn role(&self) -> String {
        #[allow(deprecated)]
        let legacy = self.info.role.clone();
        self.info
            .roles
            .first()
            .cloned()
            .or(legacy)
            .unwrap_or_else(|| "*".into())
    }

    pub fn format(&self) -> ResourceFormat {
        ResourceFormat {
            allocation_info: self.has(Capability::MultiRole),
            legacy_role: !self.has(Capability::ReservationRefinement),
        }
    }

    /// Sends one event; a closed stream marks the framework disconnected on
    /// the next tick.
    pub fn send(&mut self, event: &sched::Event) -> bool {
        match &self.conn {
            Some(conn) => conn
                .tx
                .send(mesos_proto::recordio::encode(&event.encode_to_vec()))
                .is_ok(),
            None => false,
        }
    }
}

pub(crate) fn has_capability(info: &FrameworkInfo, cap: Capability) -> bool {
    info.capabilities
        .iter()
        .any(|c| c.r#type == Some(cap as i32))
}

pub(crate) struct Agent {
    pub id: String,
    pub port: u16,
    pub config: AgentConfig,
    pub total: ResourceSet,
    pub alive: bool,
    /// By (framework id, executor id).
    pub executors: BTreeMap<(String, String), Executor>,
    pub server: Option<tokio::task::AbortHandle>,
    /// Restarting: the endpoint is closed until it comes back.
    pub down: bool,
    /// Back from a restart: executors may re-subscribe until then; the
    /// others are killed when it passes.
    pub recovering_until: Option<Instant>,
    /// Executors that ran when it restarted and have not subscribed again.
    pub awaiting_resubscription: BTreeSet<(String, String)>,
    /// Executor UPDATE calls still to be refused (503) by this agent
    /// process; a restart clears it.
    pub fail_executor_updates: u32,
}

impl Agent {
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn info(&self) -> v1::AgentInfo {
        v1::AgentInfo {
            hostname: "127.0.0.1".into(),
            port: Some(i32::from(self.port)),
            resources: self.total.to_agent_info(),
            attributes: self.attributes(),
            id: Some(v1::AgentId {
                value: self.id.clone(),
            }),
        }
    }

    pub fn attributes(&self) -> Vec<v1::Attribute> {
        self.config
            .attributes
            .iter()
            .map(|(name, value)| v1::Attribute {
                name: name.clone(),
                r#type: v1::value::Type::Text as i32,
                text: Some(v1::value::Text {
                    value: value.clone(),
                }),
                ..v1::Attribute::default()
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExecutorPhase {
    /// Fetching URIs and starting the process.
    Launching,
    /// The process runs; it may or may not have subscribed.
    Running,
}

pub(crate) struct Executor {
    pub info: ExecutorInfo,
    pub container_id: String,
    pub sandbox: PathBuf,
    pub pid: Option<u32>,
    pub phase: ExecutorPhase,
    pub stream: Option<UnboundedSender<Bytes>>,
    /// Whether it ever subscribed: calls before that are refused (403), calls
    /// from an executor whose stream broke later are not.
    pub subscribed: bool,
    /// Tasks waiting for the executor to subscribe.
    pub queued: Vec<TaskInfo>,
    pub resources: ResourceSet,
    pub shutting_down: bool,
}

impl Executor {
    pub fn send(&mut self, event: &v1::executor::Event) -> bool {
        let ok = match &self.stream {
            Some(tx) => tx
                .send(mesos_proto::recordio::encode(&event.encode_to_vec()))
                .is_ok(),
            None => false,
        };
        if !ok {
            self.stream = None;
        }
        ok
    }
}

/// One change of a task's state, for inspection.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StateChange {
    /// `TASK_RUNNING`, ...
    pub state: String,
    /// `SOURCE_EXECUTOR`, `SOURCE_AGENT` or `SOURCE_MASTER`.
    pub source: String,
    /// `REASON_...`, if any.
    pub reason: Option<String>,
    /// The status message, if any.
    pub message: Option<String>,
}

/// A status update waiting for the scheduler's acknowledgement.
pub(crate) struct PendingUpdate {
    pub status: TaskStatus,
    pub from_executor: bool,
    pub next_send: Instant,
    pub sends: u32,
}

pub(crate) struct TaskRecord {
    pub framework_id: String,
    pub task_id: String,
    pub agent_id: String,
    pub executor_id: Option<String>,
    pub resources: ResourceSet,
    pub state: TaskState,
    pub latest: Option<TaskStatus>,
    pub history: Vec<StateChange>,
    pub pending: VecDeque<PendingUpdate>,
    /// Uuids of the updates received, and of those acknowledged, as the
    /// agent's status update stream keeps them to drop duplicates.
    pub received_uuids: Vec<Bytes>,
    pub acked_uuids: Vec<Bytes>,
    pub delivered: bool,
    /// Still known to the master (not yet acknowledged terminal, or unreachable).
    pub live: bool,
}

impl TaskRecord {
    pub fn record(&mut self, status: &TaskStatus) {
        let state = TaskState::try_from(status.state).unwrap_or(TaskState::TaskStaging);
        self.state = state;
        self.latest = Some(status.clone());
        self.history.push(StateChange {
            state: state.as_str_name().to_owned(),
            source: status
                .source
                .and_then(|s| v1::task_status::Source::try_from(s).ok())
                .map(|s| s.as_str_name().to_owned())
                .unwrap_or_else(|| "SOURCE_MASTER".into()),
            reason: status
                .reason
                .and_then(|r| v1::task_status::Reason::try_from(r).ok())
                .map(|r| r.as_str_name().to_owned()),
            message: status.message.clone(),
        });
    }

    pub fn uses_resources(&self) -> bool {
        self.live && !is_terminal(self.state) && self.state != TaskState::TaskUnreachable
    }
}

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
    )
}

pub(crate) struct OfferRecord {
    pub framework_id: String,
    pub agent_id: String,
    pub resources: ResourceSet,
    pub role: String,
}

/// A sandbox ever created, for inspection.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SandboxView {
    /// The framework that launched the executor.
    pub framework_id: String,
    /// The executor's id.
    pub executor_id: String,
    /// The agent it ran on.
    pub agent_id: String,
    /// The container id given to the executor.
    pub container_id: String,
    /// The sandbox directory (MESOS_SANDBOX).
    pub path: PathBuf,
    /// The executor's process id once started.
    pub pid: Option<u32>,
    /// Whether the executor is still known to its agent.
    pub running: bool,
    /// The raw wait status once it exited (-1 when it never started).
    pub exit_status: Option<i32>,
    /// How many times the executor subscribed (more than once after its
    /// stream broke and it recovered).
    pub subscriptions: u32,
}

/// Faults armed by the tests or the control API.
#[derive(Default)]
pub(crate) struct Faults {
    pub fail_next_fetch: u32,
    pub duplicate_updates: u32,
    pub reorder_updates: u32,
    /// ACCEPT calls still to be lost (answered 202, never carried out).
    pub lose_accepts: u32,
    /// An update held back to be delivered after the next one.
    pub held_update: Option<(String, sched::Event)>,
    pub heartbeats_paused_until: Option<Instant>,
}

pub(crate) struct State {
    pub master_id: String,
    pub master_port: u16,
    pub frameworks: BTreeMap<String, Framework>,
    pub removed_frameworks: BTreeSet<String>,
    pub next_framework: u64,
    pub next_offer: u64,
    pub next_allocation: Instant,
    pub round_robin: usize,
    pub agents: Vec<Agent>,
    pub offers: BTreeMap<String, OfferRecord>,
    /// By (framework id, task id): the live task, or the last one with that id.
    pub tasks: BTreeMap<(String, String), TaskRecord>,
    /// Tasks whose id was reused after they ended.
    pub finished_tasks: Vec<TaskRecord>,
    pub sandboxes: Vec<SandboxView>,
    pub faults: Faults,
    pub invalid_acknowledgements: Vec<String>,
    pub dropped_executor_calls: Vec<String>,
    pub stopping: bool,
}

impl State {
    pub fn new(master_port: u16, agents: Vec<Agent>) -> Self {
        Self {
            master_id: uuid::Uuid::new_v4().to_string(),
            master_port,
            frameworks: BTreeMap::new(),
            removed_frameworks: BTreeSet::new(),
            next_framework: 0,
            next_offer: 0,
            next_allocation: Instant::now(),
            round_robin: 0,
            agents,
            offers: BTreeMap::new(),
            tasks: BTreeMap::new(),
            finished_tasks: Vec::new(),
            sandboxes: Vec::new(),
            faults: Faults::default(),
            invalid_acknowledgements: Vec::new(),
            dropped_executor_calls: Vec::new(),
            stopping: false,
        }
    }

    pub fn master_info(&self) -> v1::MasterInfo {
        use v1::master_info::{capability::Type as MCap, Capability as MC};
        v1::MasterInfo {
            id: self.master_id.clone(),
            // 127.0.0.1 in network byte order read as a little-endian u32.
            ip: 16_777_343,
            port: u32::from(self.master_port),
            pid: Some(format!("master@127.0.0.1:{}", self.master_port)),
            hostname: Some("127.0.0.1".into()),
            version: Some("1.12.0".into()),
            address: Some(v1::Address {
                hostname: Some("127.0.0.1".into()),
                ip: Some("127.0.0.1".into()),
                port: i32::from(self.master_port),
            }),
            capabilities: [MCap::AgentUpdate, MCap::AgentDraining, MCap::QuotaV2]
                .into_iter()
                .map(|t| MC {
                    r#type: Some(t as i32),
                })
                .collect(),
        }
    }

    pub fn agent_index(&self, agent_id: &str) -> Option<usize> {
        self.agents.iter().position(|a| a.id == agent_id)
    }

    /// Resources on the agent not used by tasks, executors or offers.
    pub fn available(&self, agent_idx: usize) -> ResourceSet {
        let agent = &self.agents[agent_idx];
        let mut free = agent.total.clone();
        for task in self.tasks.values() {
            if task.agent_id == agent.id && task.uses_resources() {
                free.subtract(&task.resources);
            }
        }
        for exec in agent.executors.values() {
            free.subtract(&exec.resources);
        }
        for offer in self.offers.values() {
            if offer.agent_id == agent.id {
                free.subtract(&offer.resources);
            }
        }
        free
    }

    /// Whether a task id is taken among the framework's live tasks.
    pub fn live_task(&self, framework_id: &str, task_id: &str) -> Option<&TaskRecord> {
        self.tasks
            .get(&(framework_id.to_owned(), task_id.to_owned()))
            .filter(|t| t.live)
    }
}

pub(crate) fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub(crate) fn new_uuid_bytes() -> Bytes {
    Bytes::copy_from_slice(uuid::Uuid::new_v4().as_bytes())
}

/// stout's Duration notation, as the agent writes it into the environment:
/// `5secs`, `15mins`, `500ms`.
pub(crate) fn stout_duration(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    let units: [(&str, f64); 7] = [
        ("weeks", 7.0 * 86_400e9),
        ("days", 86_400e9),
        ("hrs", 3_600e9),
        ("mins", 60e9),
        ("secs", 1e9),
        ("ms", 1e6),
        ("us", 1e3),
    ];
    for (name, size) in units {
        if ns >= size {
            let v = ns / size;
            return format!("{}{name}", trim_float(v));
        }
    }
    format!("{}ns", trim_float(ns))
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

/// The events a scheduler is sent.
pub(crate) mod events {
    use super::*;
    use mesos_proto::v1::scheduler::event;

    pub fn of_type(t: event::Type) -> sched::Event {
        sched::Event {
            r#type: Some(t as i32),
            ..sched::Event::default()
        }
    }

    pub fn update(status: TaskStatus) -> sched::Event {
        let mut e = of_type(event::Type::Update);
        e.update = Some(event::Update { status });
        e
    }

    pub fn error(message: &str) -> sched::Event {
        let mut e = of_type(event::Type::Error);
        e.error = Some(event::Error {
            message: message.into(),
        });
        e
    }

    pub fn rescind(offer_id: &str) -> sched::Event {
        let mut e = of_type(event::Type::Rescind);
        e.rescind = Some(event::Rescind {
            offer_id: v1::OfferId {
                value: offer_id.into(),
            },
        });
        e
    }

    pub fn failure(agent_id: &str, executor_id: Option<&str>, status: Option<i32>) -> sched::Event {
        let mut e = of_type(event::Type::Failure);
        e.failure = Some(event::Failure {
            agent_id: Some(v1::AgentId {
                value: agent_id.into(),
            }),
            executor_id: executor_id.map(|id| v1::ExecutorId { value: id.into() }),
            status,
        });
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_stout_notation() {
        assert_eq!(stout_duration(Duration::from_secs(5)), "5secs");
        assert_eq!(stout_duration(Duration::from_secs(900)), "15mins");
        assert_eq!(stout_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(stout_duration(Duration::from_millis(1500)), "1.5secs");
    }
}
