//! The cluster model: the servers (mirroring tasks) the operator asked for,
//! their states and what Mesos knows of them.
//!
//! A [`Cluster`] is both the persisted snapshot and what the REST API shows.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The id the operator uses for one server; ids start at 1.
pub type ServerId = u32;

/// The version of the snapshot format written by this build.
pub const CLUSTER_FORMAT_VERSION: u32 = 1;

/// How many state changes each server remembers.
pub const HISTORY_LIMIT: usize = 20;

/// The lifecycle state of a server, shown to the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ServerState {
    /// Added by the operator, never launched yet.
    Added,
    /// Wanted running: waiting for an offer, a retry timer or TASK_RUNNING.
    Starting,
    /// The executor reported TASK_RUNNING.
    Running,
    /// Stopped on the operator's request.
    Stopped,
    /// Gave up after too many failed launches; needs the operator.
    Failed,
    /// The task ended on its own (TASK_FINISHED).
    Finished,
}

impl ServerState {
    /// Every state, in lifecycle order.
    pub const ALL: [ServerState; 6] = [
        ServerState::Added,
        ServerState::Starting,
        ServerState::Running,
        ServerState::Stopped,
        ServerState::Failed,
        ServerState::Finished,
    ];

    /// The name as serialised ("Added", "Running", ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ServerState::Added => "Added",
            ServerState::Starting => "Starting",
            ServerState::Running => "Running",
            ServerState::Stopped => "Stopped",
            ServerState::Failed => "Failed",
            ServerState::Finished => "Finished",
        }
    }
}

impl fmt::Display for ServerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every allowed transition, written down once. Anything else is refused.
pub const TRANSITIONS: &[(ServerState, ServerState)] = {
    use ServerState::*;
    &[
        (Added, Starting),
        (Added, Stopped),
        // a relaunch after a failure keeps the server Starting
        (Starting, Starting),
        (Starting, Running),
        (Starting, Stopped),
        (Starting, Failed),
        (Starting, Finished),
        (Running, Starting),
        (Running, Stopped),
        (Running, Failed),
        (Running, Finished),
        (Stopped, Starting),
        (Failed, Starting),
        (Finished, Starting),
    ]
};

/// Whether `from -> to` is in [`TRANSITIONS`].
pub fn transition_allowed(from: ServerState, to: ServerState) -> bool {
    TRANSITIONS.iter().any(|&(f, t)| f == from && t == to)
}

/// Errors of the cluster model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A state change that is not in [`TRANSITIONS`].
    #[error("server {id}: invalid state transition {from} -> {to}")]
    InvalidTransition {
        /// The server.
        id: ServerId,
        /// Its current state.
        from: ServerState,
        /// The refused target state.
        to: ServerState,
    },
    /// An explicitly requested id that is already in use.
    #[error("server id {0} is already taken")]
    IdTaken(ServerId),
    /// No server has this id.
    #[error("no server with id {0}")]
    UnknownServer(ServerId),
    /// Every id up to `u32::MAX` is used.
    #[error("no free server id left")]
    IdsExhausted,
    /// A snapshot written by a newer build.
    #[error("cluster snapshot version {found} is newer than the supported version {supported}")]
    UnsupportedVersion {
        /// The version in the snapshot.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
}

/// What the operator wants a server to be doing; survives restarts so a
/// requested stop or delete completes after a failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Goal {
    /// Keep it running.
    #[default]
    Run,
    /// Stop it and keep the entry.
    Stop,
    /// Stop it and remove the entry once the kill is confirmed.
    Delete,
}

/// The task configuration of one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskConfig {
    /// CPUs the task asks for.
    pub cpus: f64,
    /// Memory (MB) the task asks for.
    pub mem: f64,
    /// Topics to mirror; empty when `topics_regex` is set.
    #[serde(default)]
    pub topics: Vec<String>,
    /// A regex of the topics to mirror, instead of a list.
    #[serde(default)]
    pub topics_regex: Option<String>,
    /// Per-task consumer overrides (librdkafka names).
    #[serde(default)]
    pub consumer: BTreeMap<String, String>,
    /// Per-task producer overrides (librdkafka names).
    #[serde(default)]
    pub producer: BTreeMap<String, String>,
}

/// One remembered state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChange {
    /// The state entered.
    pub state: ServerState,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Why, when known (a Mesos status message, an operator command...).
    #[serde(default)]
    pub message: Option<String>,
}

/// The latest metrics document an executor sent, with its receive time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// When it arrived, in milliseconds since the Unix epoch.
    pub received_ms: u64,
    /// The JSON document as sent.
    pub document: serde_json::Value,
}

/// One mirroring task the operator asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Server {
    /// The operator's id.
    pub id: ServerId,
    /// The lifecycle state.
    pub state: ServerState,
    /// What the operator wants.
    #[serde(default)]
    pub goal: Goal,
    /// The task configuration.
    #[serde(flatten)]
    pub task: TaskConfig,
    /// The Mesos task id of the current launch.
    #[serde(default)]
    pub task_id: Option<String>,
    /// The executor id of the current launch.
    #[serde(default)]
    pub executor_id: Option<String>,
    /// The agent the current launch went to.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// The hostname of that agent.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Launches since the last healthy run (`[scheduler] healthy_after_ms`) or operator start.
    #[serde(default)]
    pub launch_attempts: u32,
    /// No relaunch before this time (ms since the epoch).
    #[serde(default)]
    pub next_retry_ms: Option<u64>,
    /// The last status message from Mesos or the executor.
    #[serde(default)]
    pub message: Option<String>,
    /// Since when the task is unreachable (TASK_UNREACHABLE), if it is.
    #[serde(default)]
    pub unreachable_since_ms: Option<u64>,
    /// The latest state changes, oldest first, at most [`HISTORY_LIMIT`].
    #[serde(default)]
    pub history: VecDeque<StateChange>,
    /// The latest executor metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
}

impl Server {
    /// A new server in state Added, recorded at `now_ms`.
    pub fn new(id: ServerId, task: TaskConfig, now_ms: u64) -> Self {
        let mut history = VecDeque::new();
        history.push_back(StateChange {
            state: ServerState::Added,
            at_ms: now_ms,
            message: None,
        });
        Server {
            id,
            state: ServerState::Added,
            goal: Goal::Run,
            task,
            task_id: None,
            executor_id: None,
            agent_id: None,
            hostname: None,
            launch_attempts: 0,
            next_retry_ms: None,
            message: None,
            unreachable_since_ms: None,
            history,
            metrics: None,
        }
    }

    /// Moves to `to` if [`TRANSITIONS`] allows it, recording it in the history.
    pub fn transition(
        &mut self,
        to: ServerState,
        now_ms: u64,
        message: Option<String>,
    ) -> Result<(), ModelError> {
        if !transition_allowed(self.state, to) {
            return Err(ModelError::InvalidTransition {
                id: self.id,
                from: self.state,
                to,
            });
        }
        self.state = to;
        if message.is_some() {
            self.message.clone_from(&message);
        }
        self.history.push_back(StateChange {
            state: to,
            at_ms: now_ms,
            message,
        });
        while self.history.len() > HISTORY_LIMIT {
            self.history.pop_front();
        }
        Ok(())
    }

    /// Whether a Mesos task of this server may be alive.
    pub fn has_task(&self) -> bool {
        self.task_id.is_some()
    }

    /// Forgets the current launch (after a terminal status).
    pub fn clear_task(&mut self) {
        self.task_id = None;
        self.executor_id = None;
        self.agent_id = None;
        self.hostname = None;
        self.unreachable_since_ms = None;
    }
}

/// The whole cluster: the persisted snapshot and the REST API's view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    /// The snapshot format version ([`CLUSTER_FORMAT_VERSION`]).
    pub version: u32,
    /// The framework id Mesos gave on the first SUBSCRIBED.
    #[serde(default)]
    pub framework_id: Option<String>,
    /// The servers by id; serialised as a list ordered by id.
    #[serde(
        serialize_with = "servers_as_list",
        deserialize_with = "servers_from_list",
        default
    )]
    pub servers: BTreeMap<ServerId, Server>,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            version: CLUSTER_FORMAT_VERSION,
            framework_id: None,
            servers: BTreeMap::new(),
        }
    }
}

fn servers_as_list<S: Serializer>(
    servers: &BTreeMap<ServerId, Server>,
    ser: S,
) -> Result<S::Ok, S::Error> {
    ser.collect_seq(servers.values())
}

fn servers_from_list<'de, D: Deserializer<'de>>(
    de: D,
) -> Result<BTreeMap<ServerId, Server>, D::Error> {
    let list = Vec::<Server>::deserialize(de)?;
    let mut map = BTreeMap::new();
    for server in list {
        let id = server.id;
        if map.insert(id, server).is_some() {
            return Err(serde::de::Error::custom(format!(
                "server id {id} appears twice"
            )));
        }
    }
    Ok(map)
}

impl Cluster {
    /// An empty cluster.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a snapshot, refusing one written by a newer format, and one
    /// whose per-task Kafka overrides hold a key an API caller could not
    /// have set (a tampered store must not inject connection or plugin keys).
    pub fn from_json(text: &str) -> Result<Cluster, ClusterParseError> {
        let cluster: Cluster = serde_json::from_str(text).map_err(ClusterParseError::Json)?;
        if cluster.version > CLUSTER_FORMAT_VERSION {
            return Err(ClusterParseError::Model(ModelError::UnsupportedVersion {
                found: cluster.version,
                supported: CLUSTER_FORMAT_VERSION,
            }));
        }
        for server in cluster.servers.values() {
            for (role, props) in [
                (crate::kafka_props::Role::Consumer, &server.task.consumer),
                (crate::kafka_props::Role::Producer, &server.task.producer),
            ] {
                crate::property_allowlist::check_overrides(role, props.keys()).map_err(|e| {
                    ClusterParseError::Override {
                        id: server.id,
                        reason: e,
                    }
                })?;
            }
        }
        Ok(cluster)
    }

    /// The snapshot as pretty JSON.
    pub fn to_json(&self) -> String {
        // serialising plain data with string keys cannot fail
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The id the next added server gets: the highest + 1, starting at 1;
    /// after an explicit id of `u32::MAX`, the lowest free one, so that one
    /// such request cannot stop every later add.
    pub fn next_id(&self) -> Result<ServerId, ModelError> {
        match self.servers.keys().next_back() {
            None => Ok(1),
            Some(&max) => match max.checked_add(1) {
                Some(next) => Ok(next),
                None => (1..=ServerId::MAX)
                    .zip(self.servers.keys())
                    .find(|(want, have)| want != *have)
                    .map(|(free, _)| free)
                    .ok_or(ModelError::IdsExhausted),
            },
        }
    }

    /// Checks that `id` is free, for an explicitly requested id.
    pub fn check_id_free(&self, id: ServerId) -> Result<(), ModelError> {
        if self.servers.contains_key(&id) {
            Err(ModelError::IdTaken(id))
        } else {
            Ok(())
        }
    }

    /// Adds a server with `id` (or the next free one) and returns its id.
    pub fn add(
        &mut self,
        id: Option<ServerId>,
        task: TaskConfig,
        now_ms: u64,
    ) -> Result<ServerId, ModelError> {
        let id = match id {
            Some(id) => {
                self.check_id_free(id)?;
                id
            }
            None => self.next_id()?,
        };
        self.servers.insert(id, Server::new(id, task, now_ms));
        Ok(id)
    }

    /// The server with `id`.
    pub fn get(&self, id: ServerId) -> Result<&Server, ModelError> {
        self.servers.get(&id).ok_or(ModelError::UnknownServer(id))
    }

    /// The server with `id`, mutable.
    pub fn get_mut(&mut self, id: ServerId) -> Result<&mut Server, ModelError> {
        self.servers
            .get_mut(&id)
            .ok_or(ModelError::UnknownServer(id))
    }

    /// The server whose current launch has `task_id`.
    pub fn server_by_task(&self, task_id: &str) -> Option<&Server> {
        self.servers
            .values()
            .find(|s| s.task_id.as_deref() == Some(task_id))
    }

    /// A copy whose Kafka overrides show secrets as "[redacted]".
    pub fn redacted(&self) -> Cluster {
        let mut copy = self.clone();
        for server in copy.servers.values_mut() {
            server.task.consumer = crate::kafka_props::redact(&server.task.consumer);
            server.task.producer = crate::kafka_props::redact(&server.task.producer);
        }
        copy
    }
}

/// A snapshot that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ClusterParseError {
    /// Not valid JSON of the snapshot's shape.
    #[error("invalid cluster snapshot: {0}")]
    Json(serde_json::Error),
    /// Valid JSON the model refuses.
    #[error("invalid cluster snapshot: {0}")]
    Model(ModelError),
    /// A server whose Kafka overrides only the operator's files may hold.
    #[error("invalid cluster snapshot: server {id}: {reason}")]
    Override {
        /// The server.
        id: ServerId,
        /// The refused key.
        reason: crate::property_allowlist::NotAllowed,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> TaskConfig {
        TaskConfig {
            cpus: 0.2,
            mem: 256.0,
            topics: vec!["t1".into()],
            topics_regex: None,
            consumer: BTreeMap::new(),
            producer: BTreeMap::new(),
        }
    }

    fn server_in(state: ServerState) -> Server {
        let mut s = Server::new(7, task(), 0);
        s.state = state;
        s
    }

    #[test]
    fn states_serialise_by_name() {
        for state in ServerState::ALL {
            let json = serde_json::to_string(&state).expect("serialises");
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            let back: ServerState = serde_json::from_str(&json).expect("parses");
            assert_eq!(back, state);
        }
        assert!(serde_json::from_str::<ServerState>("\"running\"").is_err());
    }

    #[test]
    fn every_listed_transition_is_allowed_and_recorded() {
        for &(from, to) in TRANSITIONS {
            let mut s = server_in(from);
            s.transition(to, 42, Some("why".into()))
                .unwrap_or_else(|e| panic!("{from} -> {to} refused: {e}"));
            assert_eq!(s.state, to);
            let last = s.history.back().expect("history entry");
            assert_eq!((last.state, last.at_ms), (to, 42));
            assert_eq!(s.message.as_deref(), Some("why"));
        }
    }

    #[test]
    fn every_unlisted_transition_is_refused_and_changes_nothing() {
        let mut refused = 0;
        for from in ServerState::ALL {
            for to in ServerState::ALL {
                if TRANSITIONS.contains(&(from, to)) {
                    continue;
                }
                let mut s = server_in(from);
                let before = s.clone();
                let err = s.transition(to, 1, None).expect_err("must be refused");
                assert_eq!(err, ModelError::InvalidTransition { id: 7, from, to });
                assert!(err
                    .to_string()
                    .contains(&format!("invalid state transition {from} -> {to}")));
                assert_eq!(s, before);
                refused += 1;
            }
        }
        assert_eq!(refused, 36 - TRANSITIONS.len());
    }

    #[test]
    fn the_lifecycle_of_the_contract_is_allowed() {
        use ServerState::*;
        for path in [
            &[Added, Starting, Running, Stopped, Starting, Running][..],
            &[Added, Starting, Running, Failed, Starting],
            &[Added, Starting, Running, Finished, Starting],
            &[Added, Starting, Starting, Running, Starting],
        ] {
            for pair in path.windows(2) {
                assert!(transition_allowed(pair[0], pair[1]), "{pair:?}");
            }
        }
        assert!(!transition_allowed(Running, Added));
        assert!(!transition_allowed(Stopped, Running));
    }

    #[test]
    fn history_is_bounded() {
        let mut s = Server::new(1, task(), 0);
        for i in 0..50 {
            let to = if i % 2 == 0 {
                ServerState::Starting
            } else {
                ServerState::Running
            };
            s.transition(to, i, None).expect("allowed");
        }
        assert_eq!(s.history.len(), HISTORY_LIMIT);
        assert_eq!(s.history.back().map(|c| c.at_ms), Some(49));
    }

    #[test]
    fn ids_are_highest_plus_one_and_taken_ids_refused() {
        let mut c = Cluster::new();
        assert_eq!(c.add(None, task(), 0), Ok(1));
        assert_eq!(c.add(None, task(), 0), Ok(2));
        assert_eq!(c.add(Some(10), task(), 0), Ok(10));
        assert_eq!(c.add(None, task(), 0), Ok(11));
        assert_eq!(c.add(Some(5), task(), 0), Ok(5));
        assert_eq!(c.add(None, task(), 0), Ok(12));
        assert_eq!(c.add(Some(10), task(), 0), Err(ModelError::IdTaken(10)));
        assert_eq!(c.servers.len(), 6);
        c.servers.remove(&12);
        c.servers.remove(&11);
        assert_eq!(c.next_id(), Ok(11));
        c.add(Some(u32::MAX), task(), 0).expect("free");
        // Ids 1, 2, 5, 10 and u32::MAX are taken: next is the lowest free one.
        assert_eq!(c.next_id(), Ok(3));
        assert_eq!(c.add(None, task(), 0), Ok(3));
        assert_eq!(c.add(None, task(), 0), Ok(4));
    }

    #[test]
    fn snapshot_round_trips_and_lists_servers() {
        let mut c = Cluster::new();
        c.framework_id = Some("fw-1".into());
        c.add(None, task(), 5).expect("add");
        c.add(None, task(), 6).expect("add");
        let json = c.to_json();
        let value: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(value["version"], 1);
        assert_eq!(value["servers"][1]["id"], 2);
        assert_eq!(value["servers"][0]["state"], "Added");
        assert_eq!(value["servers"][0]["cpus"], 0.2);
        assert_eq!(value["servers"][0]["topics"][0], "t1");
        assert_eq!(Cluster::from_json(&json).expect("parses"), c);
    }

    #[test]
    fn snapshot_errors_are_clear() {
        let dup = r#"{"version":1,"servers":[{"id":1,"state":"Added","cpus":1,"mem":1},
                     {"id":1,"state":"Added","cpus":1,"mem":1}]}"#;
        let err = Cluster::from_json(dup).expect_err("duplicate");
        assert!(
            err.to_string().contains("server id 1 appears twice"),
            "{err}"
        );
        let newer = r#"{"version":99,"servers":[]}"#;
        let err = Cluster::from_json(newer).expect_err("newer");
        assert!(err.to_string().contains("version 99"), "{err}");
        assert!(Cluster::from_json("{").is_err());
    }
}
