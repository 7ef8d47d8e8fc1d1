//! The operator's commands (from the REST API) and their outcomes.

use std::collections::BTreeMap;

use crate::kafka_props::KafkaPropsError;
use crate::model::{ModelError, ServerId};

/// An input of [`super::Scheduler::command`].
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Add servers.
    Add(AddServers),
    /// Kill and remove servers.
    Delete {
        /// The servers.
        ids: Vec<ServerId>,
    },
    /// Start stopped, failed or finished servers.
    Start {
        /// The servers.
        ids: Vec<ServerId>,
    },
    /// Stop servers, keeping them.
    Stop {
        /// The servers.
        ids: Vec<ServerId>,
    },
}

/// An `add` request; unset fields take the configured defaults.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AddServers {
    /// How many servers (1 to the per-call maximum).
    pub count: i64,
    /// CPUs per task.
    pub cpus: Option<f64>,
    /// Memory (MB) per task.
    pub mem: Option<f64>,
    /// Topics to mirror.
    pub topics: Option<Vec<String>>,
    /// A topic regex instead of a list.
    pub topics_regex: Option<String>,
    /// Consumer overrides (Java or librdkafka names).
    pub consumer: BTreeMap<String, String>,
    /// Producer overrides (Java or librdkafka names).
    pub producer: BTreeMap<String, String>,
    /// An explicit id (only with count 1).
    pub id: Option<ServerId>,
}

/// What a successful command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    /// A sentence for the operator.
    pub message: String,
    /// The servers affected.
    pub ids: Vec<ServerId>,
    /// Things worth a warning (dropped Kafka keys...).
    pub warnings: Vec<String>,
}

/// A refused command; nothing changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    /// count below 1.
    #[error("count must be at least 1, got {0}")]
    CountTooSmall(i64),
    /// count above the per-call maximum.
    #[error("count {count} is above the maximum of {max} per call")]
    CountTooLarge {
        /// The count asked.
        count: i64,
        /// The maximum.
        max: u32,
    },
    /// The cluster would hold more servers than allowed.
    #[error("the cluster holds {existing} servers; at most {max} are allowed")]
    TooManyServers {
        /// Servers now.
        existing: usize,
        /// The maximum.
        max: usize,
    },
    /// An explicit id with a count other than 1.
    #[error("an explicit id needs count 1, got {0}")]
    IdWithCount(i64),
    /// A resource amount that is not a positive finite number or is absurdly large.
    #[error("{name} must be a positive number no larger than {max}, got {value}")]
    BadResource {
        /// "cpus" or "mem".
        name: &'static str,
        /// The value given.
        value: f64,
        /// The largest accepted.
        max: f64,
    },
    /// Bad topics or topic regex.
    #[error("{0}")]
    BadTopics(String),
    /// Kafka overrides that cannot be mapped.
    #[error("{0}")]
    KafkaProps(#[from] KafkaPropsError),
    /// The task the request describes could not run (e.g. an override
    /// empties bootstrap.servers, or the base configuration lacks group.id).
    #[error("the task would be invalid: {0}")]
    BadTaskData(String),
    /// No ids given.
    #[error("no server ids given")]
    NoIds,
    /// Ids that do not exist.
    #[error("unknown server ids: {}", join_ids(.0))]
    UnknownIds(Vec<ServerId>),
    /// A server being deleted cannot be started or stopped.
    #[error("server {0} is being deleted")]
    BeingDeleted(ServerId),
    /// The model refused (id taken, ids exhausted...).
    #[error("{0}")]
    Model(#[from] ModelError),
}

fn join_ids(ids: &[ServerId]) -> String {
    ids.iter()
        .map(ServerId::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
