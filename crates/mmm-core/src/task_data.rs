//! The document a mirroring task carries in `TaskInfo.data`: what to mirror,
//! from where, to where.
//!
//! The scheduler builds a [`TaskData`] and sends [`TaskData::to_json`]; the
//! executor reads it back with [`TaskData::from_json`], which validates every
//! key once so that the replication engine never sees a raw string key. Keys
//! this version does not know are ignored, so an older executor can read a
//! newer scheduler's document.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::{Map, Value};
use thiserror::Error;

/// The newest document version this code reads and the one it writes.
pub const TASK_DATA_VERSION: u64 = 1;

/// The default of `offset_commit_interval_ms`.
pub const DEFAULT_OFFSET_COMMIT_INTERVAL_MS: u64 = 60_000;

/// The default of `stall_timeout_ms`: five minutes.
pub const DEFAULT_STALL_TIMEOUT_MS: u64 = 300_000;

/// The default of `offset_sync_topic`: the compacted topic on the target
/// that holds the source → target offset mapping.
pub const DEFAULT_OFFSET_SYNC_TOPIC: &str = "mmm-offset-syncs";

/// The default of `sync_groups_interval_ms`: ten seconds.
pub const DEFAULT_SYNC_GROUPS_INTERVAL_MS: u64 = 10_000;

/// The record header naming the cluster a record was first produced on.
pub const PROVENANCE_HEADER: &str = "mmm-provenance";

/// Kafka's largest replication factor (an INT16 on the wire).
const MAX_REPLICATION_FACTOR: u64 = 32_767;

/// Kafka's limit on topic name length.
const MAX_TOPIC_NAME_LEN: usize = 249;

/// Librdkafka / Kafka client properties, by name.
pub type Properties = BTreeMap<String, String>;

/// How a record's target partition is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Partitioning {
    /// The same partition number as in the source topic.
    #[default]
    Preserve,
    /// The target producer's partitioner, from the record key.
    Hash,
}

impl Partitioning {
    /// The document's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Partitioning::Preserve => "preserve",
            Partitioning::Hash => "hash",
        }
    }
}

/// Which source topics a task mirrors: exactly one of the document's
/// `topics` and `topics_regex`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicSelection {
    /// A fixed, non-empty list of topic names.
    List(Vec<String>),
    /// Every topic whose whole name matches the pattern.
    Regex(String),
}

impl TopicSelection {
    /// The pattern to hand a librdkafka subscription, which treats a topic
    /// starting with `^` as a regex and matches it anywhere in the name:
    /// anchoring both ends keeps the whole-name match of the original.
    pub fn regex_subscription(pattern: &str) -> String {
        let inner = pattern.strip_prefix('^').unwrap_or(pattern);
        let inner = inner.strip_suffix('$').unwrap_or(inner);
        format!("^({inner})$")
    }
}

/// Which consumer groups' committed offsets are translated to the target:
/// the document's `sync_groups`, an array of names or one regex (a string)
/// that must match the whole group id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum GroupSelection {
    /// No group is synced.
    #[default]
    None,
    /// These groups.
    List(Vec<String>),
    /// Every group whose whole id matches the pattern.
    Regex(String),
}

impl GroupSelection {
    /// Whether no group is selected.
    pub fn is_none(&self) -> bool {
        match self {
            GroupSelection::None => true,
            GroupSelection::List(names) => names.is_empty(),
            GroupSelection::Regex(_) => false,
        }
    }

    /// A matcher for group ids; `None` when the pattern does not compile
    /// (validation refuses such a document first).
    pub fn matcher(&self) -> Option<GroupMatcher> {
        match self {
            GroupSelection::None => Some(GroupMatcher::Names(Vec::new())),
            GroupSelection::List(names) => Some(GroupMatcher::Names(names.clone())),
            GroupSelection::Regex(p) => Regex::new(&format!("^(?:{p})$"))
                .ok()
                .map(GroupMatcher::Regex),
        }
    }

    fn to_value(&self) -> Value {
        match self {
            GroupSelection::None => Value::Null,
            GroupSelection::List(names) => Value::from(names.clone()),
            GroupSelection::Regex(p) => Value::from(p.clone()),
        }
    }
}

/// A compiled [`GroupSelection`].
#[derive(Debug, Clone)]
pub enum GroupMatcher {
    /// Exactly these ids.
    Names(Vec<String>),
    /// Ids matching this anchored pattern.
    Regex(Regex),
}

impl GroupMatcher {
    /// Whether `group` is selected.
    pub fn matches(&self, group: &str) -> bool {
        match self {
            GroupMatcher::Names(names) => names.iter().any(|n| n == group),
            GroupMatcher::Regex(r) => r.is_match(group),
        }
    }
}

/// A validated `TaskInfo.data` document.
#[derive(Clone, PartialEq, Eq)]
pub struct TaskData {
    /// The document version it was written in (at most [`TASK_DATA_VERSION`]).
    pub version: u64,
    /// The scheduler's id of the server (mirroring slot) this task runs.
    pub server_id: u64,
    /// Consumer properties for the source cluster; has `bootstrap.servers` and `group.id`.
    pub consumer: Properties,
    /// Producer properties for the target cluster; has `bootstrap.servers`.
    pub producer: Properties,
    /// The source topics.
    pub topics: TopicSelection,
    /// How often delivered offsets are committed to the source group.
    pub offset_commit_interval_ms: u64,
    /// How target partitions are chosen.
    pub partitioning: Partitioning,
    /// Put before each source topic name to name the target topic.
    pub target_topic_prefix: String,
    /// Put after each source topic name to name the target topic.
    pub target_topic_suffix: String,
    /// Whether missing target topics are created with the source's partition count.
    pub create_topics: bool,
    /// The replication factor of created target topics; `None`: the broker's default.
    pub replication_factor: Option<u16>,
    /// How long a partition may make no progress because of a persistent
    /// error before the task fails.
    pub stall_timeout_ms: u64,
    /// Whether mirrored records carry the [`PROVENANCE_HEADER`] and records
    /// that originate on the target cluster are not mirrored back.
    pub provenance: bool,
    /// The name of the source cluster in provenance headers and offset
    /// syncs; `None`: the cluster id from the source's metadata.
    pub source_cluster_alias: Option<String>,
    /// The name of the target cluster in provenance headers: records that
    /// carry it came from the target and are not mirrored back; `None`:
    /// the cluster id from the target's metadata.
    pub target_cluster_alias: Option<String>,
    /// The compacted target topic that receives offset syncs; empty: none
    /// are written.
    pub offset_sync_topic: String,
    /// The consumer groups whose source offsets are translated to the target.
    pub sync_groups: GroupSelection,
    /// How often the selected groups are synced.
    pub sync_groups_interval_ms: u64,
}

impl std::fmt::Debug for TaskData {
    // The client properties hold the operator's credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::kafka_props::Redacted;
        f.debug_struct("TaskData")
            .field("version", &self.version)
            .field("server_id", &self.server_id)
            .field("consumer", &Redacted(&self.consumer))
            .field("producer", &Redacted(&self.producer))
            .field("topics", &self.topics)
            .field("offset_commit_interval_ms", &self.offset_commit_interval_ms)
            .field("partitioning", &self.partitioning)
            .field("target_topic_prefix", &self.target_topic_prefix)
            .field("target_topic_suffix", &self.target_topic_suffix)
            .field("create_topics", &self.create_topics)
            .field("replication_factor", &self.replication_factor)
            .field("stall_timeout_ms", &self.stall_timeout_ms)
            .field("provenance", &self.provenance)
            .field("source_cluster_alias", &self.source_cluster_alias)
            .field("target_cluster_alias", &self.target_cluster_alias)
            .field("offset_sync_topic", &self.offset_sync_topic)
            .field("sync_groups", &self.sync_groups)
            .field("sync_groups_interval_ms", &self.sync_groups_interval_ms)
            .finish()
    }
}

/// Why a `TaskInfo.data` document cannot be used. Each message names the key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TaskDataError {
    /// The bytes are not JSON.
    #[error("task data is not valid JSON: {reason}")]
    NotJson {
        /// The parser's explanation, with line and column.
        reason: String,
    },
    /// The document is JSON but not an object.
    #[error("task data must be a JSON object, found {found}")]
    NotAnObject {
        /// The JSON type found.
        found: &'static str,
    },
    /// A required key is absent (or null).
    #[error("task data key `{key}` is missing")]
    Missing {
        /// The key.
        key: String,
    },
    /// A key has a value of the wrong JSON type or range.
    #[error("task data key `{key}` must be {expected}, found {found}")]
    WrongType {
        /// The key, dotted for nested ones (`consumer.group.id`).
        key: String,
        /// What the key must hold.
        expected: &'static str,
        /// What it holds.
        found: String,
    },
    /// A version this executor cannot read.
    #[error("task data key `version` is {found}: this executor reads versions 1 to {supported}")]
    UnsupportedVersion {
        /// The document's version.
        found: u64,
        /// The newest version understood.
        supported: u64,
    },
    /// Both `topics` and `topics_regex` are set.
    #[error("task data keys `topics` and `topics_regex` are both set: set exactly one")]
    BothTopicSelections,
    /// Neither `topics` nor `topics_regex` is set.
    #[error("task data key `topics` or `topics_regex` is missing: set exactly one")]
    NoTopicSelection,
    /// `topics` is an empty list.
    #[error("task data key `topics` is an empty list: name at least one topic")]
    EmptyTopicList,
    /// A topic name (or the prefix/suffix) Kafka would refuse.
    #[error("task data key `{key}` holds invalid topic name {name:?}: {reason}")]
    InvalidTopicName {
        /// The key (`topics[2]`, `target_topic_prefix`).
        key: String,
        /// The offending name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `topics_regex` does not compile.
    #[error("task data key `topics_regex` does not compile ({pattern:?}): {reason}")]
    BadRegex {
        /// The pattern.
        pattern: String,
        /// The compiler's explanation.
        reason: String,
    },
    /// `offset_commit_interval_ms` is 0.
    #[error("task data key `offset_commit_interval_ms` must be greater than 0")]
    ZeroCommitInterval,
    /// A required client property is absent or empty.
    #[error("task data key `{section}` lacks the property `{property}`")]
    MissingProperty {
        /// `consumer` or `producer`.
        section: &'static str,
        /// The property.
        property: &'static str,
    },
    /// A client property that loads native code or runs a command on the
    /// agent: refused whoever wrote the document.
    #[error(
        "task data key `{section}.{property}` is refused: it loads code or runs a command on the agent"
    )]
    CodeLoadingProperty {
        /// `consumer` or `producer`.
        section: &'static str,
        /// The property.
        property: String,
    },
    /// `partitioning` is neither "preserve" nor "hash".
    #[error("task data key `partitioning` is {found:?}: expected \"preserve\" or \"hash\"")]
    BadPartitioning {
        /// The value found.
        found: String,
    },
    /// A client property would weaken the delivery guarantees.
    #[error("task data key `{section}.{}`: {source}", source.key())]
    Guarantee {
        /// `consumer` or `producer`.
        section: &'static str,
        /// The property and why it is refused.
        source: crate::delivery_guarantees::GuaranteeError,
    },
    /// `stall_timeout_ms` is 0.
    #[error("task data key `{key}` must be greater than 0")]
    Zero {
        /// The key.
        key: &'static str,
    },
    /// A key's value breaks a rule of its own.
    #[error("task data key `{key}` is invalid: {reason}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(key: impl Into<String>, expected: &'static str, found: &Value) -> TaskDataError {
    let found = match found {
        Value::Number(n) => format!("the number {n}"),
        other => type_name(other).to_string(),
    };
    TaskDataError::WrongType {
        key: key.into(),
        expected,
        found,
    }
}

/// The value of `key`, treating an explicit null as absent.
fn field<'a>(doc: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    doc.get(key).filter(|v| !v.is_null())
}

fn required<'a>(doc: &'a Map<String, Value>, key: &str) -> Result<&'a Value, TaskDataError> {
    field(doc, key).ok_or_else(|| TaskDataError::Missing { key: key.into() })
}

fn as_u64(key: &str, v: &Value) -> Result<u64, TaskDataError> {
    v.as_u64()
        .ok_or_else(|| wrong_type(key, "a non-negative integer", v))
}

fn as_string(key: &str, v: &Value) -> Result<String, TaskDataError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| wrong_type(key, "a string", v))
}

fn properties(section: &'static str, v: &Value) -> Result<Properties, TaskDataError> {
    let obj = v
        .as_object()
        .ok_or_else(|| wrong_type(section, "an object of string properties", v))?;
    obj.iter()
        .map(|(name, value)| {
            let value = as_string(&format!("{section}.{name}"), value)?;
            Ok((name.clone(), value))
        })
        .collect()
}

/// What is wrong with a cluster alias, if anything: it goes into record
/// headers and offset-sync keys, so it is short printable text.
pub fn cluster_alias_problem(alias: &str) -> Option<&'static str> {
    if alias.trim().is_empty() {
        Some("a cluster alias cannot be empty")
    } else if alias.len() > 249 {
        Some("longer than 249 characters")
    } else if alias.chars().any(|c| c.is_control() || c == '/') {
        Some("may not hold control characters or '/'")
    } else {
        None
    }
}

/// Kafka's topic name rule: 1 to 249 of `[a-zA-Z0-9._-]`, and not `.` or `..`.
fn check_topic_name(key: &str, name: &str, allow_empty: bool) -> Result<(), TaskDataError> {
    let invalid = |reason| TaskDataError::InvalidTopicName {
        key: key.into(),
        name: name.into(),
        reason,
    };
    if name.is_empty() && !allow_empty {
        return Err(invalid("a topic name cannot be empty"));
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(invalid("longer than 249 characters"));
    }
    if !allow_empty && (name == "." || name == "..") {
        return Err(invalid("`.` and `..` are not topic names"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(invalid(
            "only ASCII letters, digits, '.', '_' and '-' are allowed",
        ));
    }
    Ok(())
}

impl TaskData {
    /// A version-1 document with the defaults for every optional key.
    pub fn new(
        server_id: u64,
        consumer: Properties,
        producer: Properties,
        topics: TopicSelection,
    ) -> Self {
        Self {
            version: TASK_DATA_VERSION,
            server_id,
            consumer,
            producer,
            topics,
            offset_commit_interval_ms: DEFAULT_OFFSET_COMMIT_INTERVAL_MS,
            partitioning: Partitioning::Preserve,
            target_topic_prefix: String::new(),
            target_topic_suffix: String::new(),
            create_topics: true,
            replication_factor: None,
            stall_timeout_ms: DEFAULT_STALL_TIMEOUT_MS,
            provenance: true,
            source_cluster_alias: None,
            target_cluster_alias: None,
            offset_sync_topic: DEFAULT_OFFSET_SYNC_TOPIC.to_owned(),
            sync_groups: GroupSelection::None,
            sync_groups_interval_ms: DEFAULT_SYNC_GROUPS_INTERVAL_MS,
        }
    }

    /// Reads and validates a document. Unknown keys are ignored.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TaskDataError> {
        let doc: Value = serde_json::from_slice(bytes).map_err(|e| TaskDataError::NotJson {
            reason: e.to_string(),
        })?;
        let doc = match &doc {
            Value::Object(map) => map,
            other => {
                return Err(TaskDataError::NotAnObject {
                    found: type_name(other),
                })
            }
        };

        let version = as_u64("version", required(doc, "version")?)?;
        if version == 0 || version > TASK_DATA_VERSION {
            return Err(TaskDataError::UnsupportedVersion {
                found: version,
                supported: TASK_DATA_VERSION,
            });
        }
        let server_id = as_u64("server_id", required(doc, "server_id")?)?;
        let consumer = properties("consumer", required(doc, "consumer")?)?;
        let producer = properties("producer", required(doc, "producer")?)?;

        let topics = match (field(doc, "topics"), field(doc, "topics_regex")) {
            (Some(_), Some(_)) => return Err(TaskDataError::BothTopicSelections),
            (None, None) => return Err(TaskDataError::NoTopicSelection),
            (Some(list), None) => {
                let items = list
                    .as_array()
                    .ok_or_else(|| wrong_type("topics", "an array of topic names", list))?;
                let names = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| as_string(&format!("topics[{i}]"), v))
                    .collect::<Result<Vec<_>, _>>()?;
                TopicSelection::List(names)
            }
            (None, Some(pattern)) => TopicSelection::Regex(as_string("topics_regex", pattern)?),
        };

        let offset_commit_interval_ms = match field(doc, "offset_commit_interval_ms") {
            Some(v) => as_u64("offset_commit_interval_ms", v)?,
            None => DEFAULT_OFFSET_COMMIT_INTERVAL_MS,
        };
        let partitioning = match field(doc, "partitioning") {
            None => Partitioning::Preserve,
            Some(v) => match as_string("partitioning", v)?.as_str() {
                "preserve" => Partitioning::Preserve,
                "hash" => Partitioning::Hash,
                other => {
                    return Err(TaskDataError::BadPartitioning {
                        found: other.to_owned(),
                    })
                }
            },
        };
        let optional_string = |key: &str| -> Result<String, TaskDataError> {
            field(doc, key)
                .map(|v| as_string(key, v))
                .transpose()
                .map(Option::unwrap_or_default)
        };
        let target_topic_prefix = optional_string("target_topic_prefix")?;
        let target_topic_suffix = optional_string("target_topic_suffix")?;
        let create_topics = match field(doc, "create_topics") {
            Some(v) => v
                .as_bool()
                .ok_or_else(|| wrong_type("create_topics", "a boolean", v))?,
            None => true,
        };
        let replication_factor = match field(doc, "replication_factor") {
            Some(v) => Some(
                v.as_u64()
                    .filter(|n| (1..=MAX_REPLICATION_FACTOR).contains(n))
                    .and_then(|n| u16::try_from(n).ok())
                    .ok_or_else(|| wrong_type("replication_factor", "an integer 1 to 32767", v))?,
            ),
            None => None,
        };
        let stall_timeout_ms = match field(doc, "stall_timeout_ms") {
            Some(v) => as_u64("stall_timeout_ms", v)?,
            None => DEFAULT_STALL_TIMEOUT_MS,
        };
        let provenance = match field(doc, "provenance") {
            Some(v) => v
                .as_bool()
                .ok_or_else(|| wrong_type("provenance", "a boolean", v))?,
            None => true,
        };
        let source_cluster_alias = field(doc, "source_cluster_alias")
            .map(|v| as_string("source_cluster_alias", v))
            .transpose()?;
        let target_cluster_alias = field(doc, "target_cluster_alias")
            .map(|v| as_string("target_cluster_alias", v))
            .transpose()?;
        let offset_sync_topic = match field(doc, "offset_sync_topic") {
            Some(v) => as_string("offset_sync_topic", v)?,
            None => DEFAULT_OFFSET_SYNC_TOPIC.to_owned(),
        };
        let sync_groups = match field(doc, "sync_groups") {
            None => GroupSelection::None,
            Some(Value::String(pattern)) => GroupSelection::Regex(pattern.clone()),
            Some(Value::Array(items)) => GroupSelection::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| as_string(&format!("sync_groups[{i}]"), v))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(other) => {
                return Err(wrong_type(
                    "sync_groups",
                    "an array of group ids or a regex string",
                    other,
                ))
            }
        };
        let sync_groups_interval_ms = match field(doc, "sync_groups_interval_ms") {
            Some(v) => as_u64("sync_groups_interval_ms", v)?,
            None => DEFAULT_SYNC_GROUPS_INTERVAL_MS,
        };

        let data = Self {
            version,
            server_id,
            consumer,
            producer,
            topics,
            offset_commit_interval_ms,
            partitioning,
            target_topic_prefix,
            target_topic_suffix,
            create_topics,
            replication_factor,
            stall_timeout_ms,
            provenance,
            source_cluster_alias,
            target_cluster_alias,
            offset_sync_topic,
            sync_groups,
            sync_groups_interval_ms,
        };
        data.validate()?;
        Ok(data)
    }

    /// Checks the rules a parsed document must follow; [`TaskData::from_json`]
    /// calls it, and a scheduler can call it before sending a document.
    pub fn validate(&self) -> Result<(), TaskDataError> {
        if self.version == 0 || self.version > TASK_DATA_VERSION {
            return Err(TaskDataError::UnsupportedVersion {
                found: self.version,
                supported: TASK_DATA_VERSION,
            });
        }
        for (section, props, needed) in [
            (
                "consumer",
                &self.consumer,
                &["bootstrap.servers", "group.id"][..],
            ),
            ("producer", &self.producer, &["bootstrap.servers"][..]),
        ] {
            for &property in needed {
                if props.get(property).is_none_or(|v| v.trim().is_empty()) {
                    return Err(TaskDataError::MissingProperty { section, property });
                }
            }
            if let Some(property) = crate::property_allowlist::code_loading_key(props) {
                return Err(TaskDataError::CodeLoadingProperty {
                    section,
                    property: property.to_string(),
                });
            }
        }
        match &self.topics {
            TopicSelection::List(names) => {
                if names.is_empty() {
                    return Err(TaskDataError::EmptyTopicList);
                }
                for (i, name) in names.iter().enumerate() {
                    check_topic_name(&format!("topics[{i}]"), name, false)?;
                }
            }
            TopicSelection::Regex(pattern) => {
                if pattern.is_empty() {
                    return Err(TaskDataError::BadRegex {
                        pattern: pattern.clone(),
                        reason: "the pattern is empty".into(),
                    });
                }
                Regex::new(pattern).map_err(|e| TaskDataError::BadRegex {
                    pattern: pattern.clone(),
                    reason: e.to_string(),
                })?;
            }
        }
        if self.offset_commit_interval_ms == 0 {
            return Err(TaskDataError::ZeroCommitInterval);
        }
        check_topic_name("target_topic_prefix", &self.target_topic_prefix, true)?;
        check_topic_name("target_topic_suffix", &self.target_topic_suffix, true)?;
        if self.stall_timeout_ms == 0 {
            return Err(TaskDataError::Zero {
                key: "stall_timeout_ms",
            });
        }
        self.validate_disaster_recovery()?;
        if let Some(rf) = self.replication_factor {
            if !(1..=MAX_REPLICATION_FACTOR).contains(&u64::from(rf)) {
                return Err(TaskDataError::WrongType {
                    key: "replication_factor".into(),
                    expected: "an integer 1 to 32767",
                    found: format!("the number {rf}"),
                });
            }
        }
        crate::delivery_guarantees::check_consumer(&self.consumer).map_err(|source| {
            TaskDataError::Guarantee {
                section: "consumer",
                source,
            }
        })?;
        crate::delivery_guarantees::check_producer(&self.producer).map_err(|source| {
            TaskDataError::Guarantee {
                section: "producer",
                source,
            }
        })?;
        Ok(())
    }

    /// The rules of the provenance and offset-translation keys.
    fn validate_disaster_recovery(&self) -> Result<(), TaskDataError> {
        let invalid = |key, reason: &str| TaskDataError::Invalid {
            key,
            reason: reason.to_owned(),
        };
        for (key, alias) in [
            ("source_cluster_alias", &self.source_cluster_alias),
            ("target_cluster_alias", &self.target_cluster_alias),
        ] {
            if let Some(reason) = alias.as_deref().and_then(cluster_alias_problem) {
                return Err(invalid(key, reason));
            }
        }
        check_topic_name("offset_sync_topic", &self.offset_sync_topic, true)?;
        if self.sync_groups_interval_ms == 0 {
            return Err(TaskDataError::Zero {
                key: "sync_groups_interval_ms",
            });
        }
        match &self.sync_groups {
            GroupSelection::None => {}
            GroupSelection::List(names) => {
                if names.iter().any(|n| n.trim().is_empty()) {
                    return Err(invalid("sync_groups", "a group id cannot be empty"));
                }
            }
            GroupSelection::Regex(pattern) => {
                if pattern.is_empty() {
                    return Err(invalid("sync_groups", "the pattern is empty"));
                }
                Regex::new(pattern).map_err(|e| TaskDataError::Invalid {
                    key: "sync_groups",
                    reason: format!("the pattern {pattern:?} does not compile: {e}"),
                })?;
            }
        }
        if !self.sync_groups.is_none() {
            if self.offset_sync_topic.is_empty() {
                return Err(invalid(
                    "sync_groups",
                    "group offsets are translated through offset syncs; set offset_sync_topic",
                ));
            }
            if self.partitioning != Partitioning::Preserve {
                return Err(invalid(
                    "sync_groups",
                    "offsets translate only with partitioning \"preserve\": \"hash\" spreads a source partition over several target partitions",
                ));
            }
        }
        Ok(())
    }

    /// The target topic of a source topic: prefix + source + suffix.
    pub fn target_topic(&self, source: &str) -> String {
        format!(
            "{}{}{}",
            self.target_topic_prefix, source, self.target_topic_suffix
        )
    }

    /// The document as JSON, with every key of the current version.
    pub fn to_json(&self) -> Vec<u8> {
        let (topics, topics_regex) = match &self.topics {
            TopicSelection::List(names) => (Value::from(names.clone()), Value::Null),
            TopicSelection::Regex(pattern) => (Value::Null, Value::from(pattern.clone())),
        };
        let props = |p: &Properties| {
            Value::Object(
                p.iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                    .collect(),
            )
        };
        let doc = serde_json::json!({
            "version": self.version,
            "server_id": self.server_id,
            "consumer": props(&self.consumer),
            "producer": props(&self.producer),
            "topics": topics,
            "topics_regex": topics_regex,
            "offset_commit_interval_ms": self.offset_commit_interval_ms,
            "partitioning": self.partitioning.as_str(),
            "target_topic_prefix": self.target_topic_prefix,
            "target_topic_suffix": self.target_topic_suffix,
            "create_topics": self.create_topics,
            "replication_factor": self.replication_factor,
            "stall_timeout_ms": self.stall_timeout_ms,
            "provenance": self.provenance,
            "source_cluster_alias": self.source_cluster_alias,
            "target_cluster_alias": self.target_cluster_alias,
            "offset_sync_topic": self.offset_sync_topic,
            "sync_groups": self.sync_groups.to_value(),
            "sync_groups_interval_ms": self.sync_groups_interval_ms,
        });
        // A Value built from strings and integers always serializes.
        serde_json::to_vec(&doc).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn contract_example() -> Value {
        serde_json::json!({
          "version": 1,
          "server_id": 1,
          "consumer": {"bootstrap.servers": "src:9092", "group.id": "mirror_maker_group"},
          "producer": {"bootstrap.servers": "dst:9092", "acks": "all"},
          "topics": ["t1", "t2"],
          "topics_regex": null,
          "offset_commit_interval_ms": 60000,
          "partitioning": "preserve",
          "target_topic_prefix": "",
          "target_topic_suffix": "",
          "create_topics": true
        })
    }

    fn parse(v: &Value) -> Result<TaskData, TaskDataError> {
        TaskData::from_json(&serde_json::to_vec(v).expect("serializes"))
    }

    fn with(mut v: Value, key: &str, value: Value) -> Value {
        v.as_object_mut().expect("object").insert(key.into(), value);
        v
    }

    fn without(mut v: Value, key: &str) -> Value {
        v.as_object_mut().expect("object").remove(key);
        v
    }

    fn err_text(v: &Value) -> String {
        parse(v).expect_err("document must be refused").to_string()
    }

    #[test]
    fn code_loading_properties_are_refused_whoever_wrote_them() {
        for (section, key) in [
            ("consumer", "plugin.library.paths"),
            ("producer", "ssl.engine.location"),
            ("consumer", "ssl.providers"),
            ("producer", "sasl.kerberos.kinit.cmd"),
        ] {
            let mut v = contract_example();
            v[section][key] = Value::from("/tmp/evil.so");
            let text = err_text(&v);
            assert!(
                text.contains(&format!("`{section}.{key}`")) && text.contains("loads code"),
                "{text}"
            );
        }
    }

    #[test]
    fn contract_example_parses() {
        let d = parse(&contract_example()).expect("valid");
        assert_eq!(d.version, 1);
        assert_eq!(d.server_id, 1);
        assert_eq!(d.consumer["group.id"], "mirror_maker_group");
        assert_eq!(d.producer["acks"], "all");
        assert_eq!(
            d.topics,
            TopicSelection::List(vec!["t1".into(), "t2".into()])
        );
        assert_eq!(d.offset_commit_interval_ms, 60_000);
        assert_eq!(d.partitioning, Partitioning::Preserve);
        assert!(d.create_topics);
    }

    #[test]
    fn optional_keys_take_their_defaults() {
        let mut v = contract_example();
        for k in [
            "offset_commit_interval_ms",
            "partitioning",
            "target_topic_prefix",
            "target_topic_suffix",
            "create_topics",
            "topics_regex",
        ] {
            v = without(v, k);
        }
        let d = parse(&v).expect("valid");
        assert_eq!(
            d.offset_commit_interval_ms,
            DEFAULT_OFFSET_COMMIT_INTERVAL_MS
        );
        assert_eq!(d.partitioning, Partitioning::Preserve);
        assert_eq!(d.target_topic_prefix, "");
        assert_eq!(d.target_topic_suffix, "");
        assert!(d.create_topics);
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let v = with(
            contract_example(),
            "from_the_future",
            serde_json::json!({"x": [1]}),
        );
        assert_eq!(
            parse(&v).expect("valid"),
            parse(&contract_example()).expect("valid")
        );
    }

    #[test]
    fn round_trips_through_to_json() {
        let mut d = parse(&contract_example()).expect("valid");
        d.partitioning = Partitioning::Hash;
        d.target_topic_prefix = "dc1.".into();
        d.target_topic_suffix = "-copy".into();
        d.create_topics = false;
        d.offset_commit_interval_ms = 5;
        d.replication_factor = Some(3);
        d.stall_timeout_ms = 1234;
        assert_eq!(TaskData::from_json(&d.to_json()).expect("valid"), d);
        d.topics = TopicSelection::Regex("^orders\\..*".into());
        let json: Value = serde_json::from_slice(&d.to_json()).expect("json");
        assert_eq!(json["topics"], Value::Null);
        assert_eq!(json["topics_regex"], "^orders\\..*");
        assert_eq!(TaskData::from_json(&d.to_json()).expect("valid"), d);
    }

    #[test]
    fn regex_selection_is_read() {
        let v = with(
            without(contract_example(), "topics"),
            "topics_regex",
            "^orders\\..*".into(),
        );
        let d = parse(&v).expect("valid");
        assert_eq!(d.topics, TopicSelection::Regex("^orders\\..*".into()));
    }

    #[test]
    fn both_or_neither_topic_selection_is_refused() {
        let both = with(contract_example(), "topics_regex", "a.*".into());
        assert_eq!(parse(&both), Err(TaskDataError::BothTopicSelections));
        assert!(err_text(&both).contains("topics_regex"));
        let neither = without(without(contract_example(), "topics"), "topics_regex");
        assert_eq!(parse(&neither), Err(TaskDataError::NoTopicSelection));
    }

    #[test]
    fn empty_topic_list_and_bad_names_are_refused() {
        let v = with(contract_example(), "topics", serde_json::json!([]));
        assert_eq!(parse(&v), Err(TaskDataError::EmptyTopicList));
        let v = with(contract_example(), "topics", serde_json::json!(["ok", ""]));
        assert!(err_text(&v).contains("topics[1]"));
        let v = with(
            contract_example(),
            "topics",
            serde_json::json!(["ok", "bad name"]),
        );
        assert!(err_text(&v).contains("topics[1]"));
        let v = with(contract_example(), "topics", serde_json::json!(["ok", 3]));
        assert!(err_text(&v).contains("`topics[1]` must be a string"));
        let v = with(contract_example(), "topics", "t1".into());
        assert!(err_text(&v).contains("`topics` must be an array"));
        let v = with(contract_example(), "target_topic_prefix", "a/b".into());
        assert!(err_text(&v).contains("target_topic_prefix"));
    }

    #[test]
    fn bad_regex_is_refused_with_the_key() {
        let v = with(
            without(contract_example(), "topics"),
            "topics_regex",
            "orders(".into(),
        );
        let text = err_text(&v);
        assert!(
            text.contains("topics_regex") && text.contains("orders("),
            "{text}"
        );
    }

    #[test]
    fn unsupported_versions_are_refused() {
        for version in [0, 2, 99] {
            let v = with(contract_example(), "version", version.into());
            assert_eq!(
                parse(&v),
                Err(TaskDataError::UnsupportedVersion {
                    found: version,
                    supported: 1
                })
            );
        }
        let v = with(contract_example(), "version", "1".into());
        assert!(err_text(&v).contains("`version` must be a non-negative integer"));
        assert!(err_text(&without(contract_example(), "version")).contains("`version` is missing"));
    }

    #[test]
    fn zero_interval_is_refused() {
        let v = with(contract_example(), "offset_commit_interval_ms", 0.into());
        assert!(err_text(&v).contains("offset_commit_interval_ms"));
        let v = with(contract_example(), "offset_commit_interval_ms", (-5).into());
        assert!(err_text(&v).contains("offset_commit_interval_ms"));
    }

    #[test]
    fn required_properties_are_checked() {
        let v = with(
            contract_example(),
            "consumer",
            serde_json::json!({"bootstrap.servers": "a:1"}),
        );
        assert_eq!(
            parse(&v),
            Err(TaskDataError::MissingProperty {
                section: "consumer",
                property: "group.id"
            })
        );
        assert!(err_text(&v).contains("`consumer` lacks the property `group.id`"));
        let v = with(
            contract_example(),
            "producer",
            serde_json::json!({"acks": "all"}),
        );
        assert!(err_text(&v).contains("`producer` lacks the property `bootstrap.servers`"));
        let v = with(
            contract_example(),
            "producer",
            serde_json::json!({"bootstrap.servers": " "}),
        );
        assert!(err_text(&v).contains("bootstrap.servers"));
        assert!(
            err_text(&without(contract_example(), "consumer")).contains("`consumer` is missing")
        );
    }

    #[test]
    fn property_values_must_be_strings() {
        let v = with(
            contract_example(),
            "consumer",
            serde_json::json!({"bootstrap.servers": "a:1", "group.id": "g", "fetch.min.bytes": 1}),
        );
        let text = err_text(&v);
        assert!(
            text.contains("`consumer.fetch.min.bytes` must be a string"),
            "{text}"
        );
        let v = with(contract_example(), "producer", serde_json::json!(["x"]));
        assert!(err_text(&v).contains("`producer` must be an object"));
    }

    #[test]
    fn partitioning_and_create_topics_are_checked() {
        let v = with(contract_example(), "partitioning", "hash".into());
        assert_eq!(parse(&v).expect("valid").partitioning, Partitioning::Hash);
        let v = with(contract_example(), "partitioning", "random".into());
        assert!(err_text(&v).contains("`partitioning` is \"random\""));
        let v = with(contract_example(), "create_topics", "yes".into());
        assert!(err_text(&v).contains("`create_topics` must be a boolean"));
    }

    #[test]
    fn replication_factor_and_stall_timeout_are_read_and_checked() {
        let d = parse(&contract_example()).expect("valid");
        assert_eq!(d.replication_factor, None);
        assert_eq!(d.stall_timeout_ms, DEFAULT_STALL_TIMEOUT_MS);
        let v = with(contract_example(), "replication_factor", 3.into());
        assert_eq!(parse(&v).expect("valid").replication_factor, Some(3));
        for bad in [
            serde_json::json!(0),
            serde_json::json!(-1),
            serde_json::json!("3"),
        ] {
            let v = with(contract_example(), "replication_factor", bad);
            assert!(err_text(&v).contains("`replication_factor`"));
        }
        let v = with(contract_example(), "stall_timeout_ms", 0.into());
        assert!(err_text(&v).contains("`stall_timeout_ms`"));
    }

    #[test]
    fn weaker_delivery_settings_are_refused_naming_the_key() {
        for (section, key, value) in [
            ("producer", "acks", "1"),
            ("producer", "enable.idempotence", "false"),
            ("producer", "transactional.id", "tx-1"),
            ("consumer", "isolation.level", "read_uncommitted"),
        ] {
            let mut v = contract_example();
            v[section][key] = value.into();
            let text = err_text(&v);
            assert!(text.contains(&format!("`{section}.{key}`")), "{text}");
        }
    }

    #[test]
    fn non_json_and_non_objects_are_refused() {
        assert!(matches!(
            TaskData::from_json(b"{not json"),
            Err(TaskDataError::NotJson { .. })
        ));
        assert_eq!(
            TaskData::from_json(b"[1]"),
            Err(TaskDataError::NotAnObject { found: "an array" })
        );
        assert!(matches!(
            TaskData::from_json(b""),
            Err(TaskDataError::NotJson { .. })
        ));
    }

    #[test]
    fn disaster_recovery_keys_default_and_round_trip() {
        let d = parse(&contract_example()).expect("valid");
        assert!(d.provenance);
        assert_eq!(d.source_cluster_alias, None);
        assert_eq!(d.target_cluster_alias, None);
        assert_eq!(d.offset_sync_topic, DEFAULT_OFFSET_SYNC_TOPIC);
        assert_eq!(d.sync_groups, GroupSelection::None);
        assert_eq!(d.sync_groups_interval_ms, DEFAULT_SYNC_GROUPS_INTERVAL_MS);

        let mut v = contract_example();
        v["provenance"] = false.into();
        v["source_cluster_alias"] = "dc-east".into();
        v["target_cluster_alias"] = "dc-west".into();
        v["offset_sync_topic"] = "syncs".into();
        v["sync_groups"] = serde_json::json!(["billing", "audit"]);
        v["sync_groups_interval_ms"] = 500.into();
        let d = parse(&v).expect("valid");
        assert_eq!(TaskData::from_json(&d.to_json()).as_ref(), Ok(&d));
        let m = d.sync_groups.matcher().expect("compiles");
        assert!(m.matches("billing") && !m.matches("billing2"));

        v["sync_groups"] = "app-.*".into();
        let d = parse(&v).expect("valid");
        assert_eq!(d.sync_groups, GroupSelection::Regex("app-.*".into()));
        let m = d.sync_groups.matcher().expect("compiles");
        assert!(m.matches("app-1") && !m.matches("my-app-1"));
        assert_eq!(TaskData::from_json(&d.to_json()).as_ref(), Ok(&d));
    }

    #[test]
    fn bad_disaster_recovery_keys_are_named() {
        for (key, value, needle) in [
            ("provenance", serde_json::json!("yes"), "`provenance`"),
            (
                "source_cluster_alias",
                serde_json::json!(""),
                "`source_cluster_alias`",
            ),
            (
                "source_cluster_alias",
                serde_json::json!("a/b"),
                "`source_cluster_alias`",
            ),
            (
                "target_cluster_alias",
                serde_json::json!(" "),
                "`target_cluster_alias`",
            ),
            (
                "target_cluster_alias",
                serde_json::json!(7),
                "`target_cluster_alias`",
            ),
            (
                "offset_sync_topic",
                serde_json::json!("bad topic"),
                "`offset_sync_topic`",
            ),
            ("sync_groups", serde_json::json!(7), "`sync_groups`"),
            (
                "sync_groups",
                serde_json::json!(["ok", ""]),
                "`sync_groups`",
            ),
            (
                "sync_groups",
                serde_json::json!("(unclosed"),
                "does not compile",
            ),
            (
                "sync_groups_interval_ms",
                serde_json::json!(0),
                "`sync_groups_interval_ms`",
            ),
        ] {
            let v = with(contract_example(), key, value);
            assert!(err_text(&v).contains(needle), "{key}: {}", err_text(&v));
        }
        let mut v = contract_example();
        v["sync_groups"] = serde_json::json!(["g"]);
        v["partitioning"] = "hash".into();
        assert!(err_text(&v).contains("\"preserve\""), "{}", err_text(&v));
        v["partitioning"] = "preserve".into();
        v["offset_sync_topic"] = "".into();
        assert!(
            err_text(&v).contains("offset_sync_topic"),
            "{}",
            err_text(&v)
        );
    }

    #[test]
    fn target_topic_applies_prefix_and_suffix() {
        let mut d = parse(&contract_example()).expect("valid");
        assert_eq!(d.target_topic("t1"), "t1");
        d.target_topic_prefix = "a.".into();
        d.target_topic_suffix = ".b".into();
        assert_eq!(d.target_topic("t1"), "a.t1.b");
    }

    #[test]
    fn regex_subscription_anchors_the_whole_name() {
        assert_eq!(
            TopicSelection::regex_subscription("orders\\..*"),
            "^(orders\\..*)$"
        );
        assert_eq!(
            TopicSelection::regex_subscription("^orders\\..*$"),
            "^(orders\\..*)$"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = TaskData::from_json(&bytes);
        }

        #[test]
        fn arbitrary_json_values_never_panic(
            key in prop::sample::select(vec![
                "version", "server_id", "consumer", "producer", "topics", "topics_regex",
                "offset_commit_interval_ms", "partitioning", "target_topic_prefix",
                "target_topic_suffix", "create_topics", "replication_factor",
                "stall_timeout_ms", "provenance", "source_cluster_alias", "target_cluster_alias",
                "offset_sync_topic", "sync_groups", "sync_groups_interval_ms",
            ]),
            value in prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(|f| serde_json::json!(f)),
                ".{0,20}".prop_map(Value::from),
                proptest::collection::vec(".{0,8}", 0..4).prop_map(Value::from),
            ],
        ) {
            let v = with(contract_example(), key, value);
            if let Ok(d) = parse(&v) {
                prop_assert_eq!(TaskData::from_json(&d.to_json()), Ok(d));
            }
        }
    }
}
