//! The REST contract: every request and answer body of the API, defined once
//! and used by both the scheduler and the CLI.
//!
//! Requests refuse unknown fields, and [`AddRequest::from_body`] /
//! [`IdsRequest::from_body`] are the only way the scheduler builds them from
//! bytes: every limit and the Kafka property allowlist are checked there.
//! Answers keep the original framework's shape,
//! `{"message": "...", "success": bool, "value": {...}}`, and read leniently
//! (missing fields default, unknown fields are ignored) so that a CLI can talk
//! to an older or newer scheduler.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::kafka_props::{self, Role};
use crate::model::{Server, ServerId};
use crate::property_allowlist::{self, NotAllowed};
use crate::replication_report::{GroupSyncReport, ReplicationReport};
use crate::scheduler::AddServers;

/// Request bodies above this many bytes are refused.
pub const BODY_LIMIT: usize = 64 * 1024;
/// The longest string value a request may hold (a topic, a regex, a property).
pub const MAX_STRING_LEN: usize = 1024;
/// The most topics one add request may name.
pub const MAX_TOPICS: usize = 1000;
/// The most Kafka overrides of one client in one add request.
pub const MAX_OVERRIDES: usize = 64;
/// The most ids one request may name.
pub const MAX_IDS: usize = 10_000;

/// A request body that cannot be used; the message names the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Nothing but whitespace.
    #[error("empty request body: a JSON object is expected")]
    Empty,
    /// Not JSON.
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// JSON, but not an object.
    #[error("a JSON object is expected, got {0}")]
    NotAnObject(&'static str),
    /// A field of the wrong type or an unknown field.
    #[error("{0}")]
    Field(String),
    /// A value beyond a limit.
    #[error("{0}")]
    Limit(String),
    /// A Kafka property a caller may not set.
    #[error("{0}")]
    NotAllowed(#[from] NotAllowed),
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

/// Parses a request object of type `T`, naming the field of any error.
fn parse_object<T: DeserializeOwned>(body: &[u8]) -> Result<T, RequestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(RequestError::Empty);
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| RequestError::Malformed(e.to_string()))?;
    if !value.is_object() {
        return Err(RequestError::NotAnObject(type_name(&value)));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        RequestError::Field(if path == "." || inner.starts_with("unknown field") {
            inner
        } else {
            format!("{path}: {inner}")
        })
    })
}

fn check_len(field: &str, value: &str) -> Result<(), RequestError> {
    if value.len() > MAX_STRING_LEN {
        Err(RequestError::Limit(format!(
            "{field} is {} bytes long, above the limit of {MAX_STRING_LEN}",
            value.len()
        )))
    } else {
        Ok(())
    }
}

/// An integer field that names its problem: out of range, or not whole.
fn whole(field: &str, n: &serde_json::Number) -> Result<i64, RequestError> {
    match n.as_i64() {
        Some(i) => Ok(i),
        None if n.as_u64().is_some() || n.as_f64().is_some_and(|f| f.fract() == 0.0) => {
            Err(RequestError::Field(format!("{field} {n} is out of range")))
        }
        None => Err(RequestError::Field(format!(
            "{field} must be an integer, got {n}"
        ))),
    }
}

/// Topics, as a list or as the original CLI's comma-separated string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicList(pub Vec<String>);

impl Serialize for TopicList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for TopicList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TopicList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of topic names or a comma-separated string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<TopicList, E> {
                Ok(TopicList(
                    s.split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string)
                        .collect(),
                ))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TopicList, A::Error> {
                let mut out = Vec::new();
                while let Some(t) = seq.next_element::<String>()? {
                    if out.len() == MAX_TOPICS {
                        return Err(de::Error::custom(format!("more than {MAX_TOPICS} topics")));
                    }
                    out.push(t);
                }
                Ok(TopicList(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A Kafka property value: a string, or a number or boolean written as one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyValue(pub String);

impl Serialize for PropertyValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PropertyValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PropertyValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<PropertyValue, E> {
                Ok(PropertyValue(s.to_string()))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<PropertyValue, E> {
                Ok(PropertyValue(b.to_string()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<PropertyValue, E> {
                Ok(PropertyValue(n.to_string()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<PropertyValue, E> {
                Ok(PropertyValue(n.to_string()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<PropertyValue, E> {
                Ok(PropertyValue(Value::from(n).to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// `POST /api/add`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddRequest {
    /// How many tasks.
    pub amount: serde_json::Number,
    /// CPUs per task; the scheduler's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Memory per task (MB); the scheduler's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<f64>,
    /// Topics to mirror.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topics: Option<TopicList>,
    /// A topic regex, instead of a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topics_regex: Option<String>,
    /// Consumer tuning overrides (see the property allowlist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<BTreeMap<String, PropertyValue>>,
    /// Producer tuning overrides (see the property allowlist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<BTreeMap<String, PropertyValue>>,
    /// An explicit id, with amount 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<serde_json::Number>,
}

impl AddRequest {
    /// A request for `amount` tasks with the scheduler's defaults.
    pub fn new(amount: u32) -> Self {
        AddRequest {
            amount: amount.into(),
            cpus: None,
            mem: None,
            topics: None,
            topics_regex: None,
            consumer: None,
            producer: None,
            id: None,
        }
    }

    /// Parses and checks a request body: the one constructor from bytes.
    pub fn from_body(body: &[u8]) -> Result<Self, RequestError> {
        let request: AddRequest = parse_object(body)?;
        request.check()?;
        Ok(request)
    }

    /// Checks every limit and the property allowlist.
    pub fn check(&self) -> Result<(), RequestError> {
        whole("amount", &self.amount)?;
        if let Some(id) = &self.id {
            whole("id", id)?;
        }
        if let Some(topics) = &self.topics {
            if topics.0.len() > MAX_TOPICS {
                return Err(RequestError::Limit(format!(
                    "{} topics, above the limit of {MAX_TOPICS}",
                    topics.0.len()
                )));
            }
            for (i, t) in topics.0.iter().enumerate() {
                check_len(&format!("topics[{i}]"), t)?;
            }
        }
        if let Some(regex) = &self.topics_regex {
            check_len("topics_regex", regex)?;
        }
        for (role, props) in [
            (Role::Consumer, &self.consumer),
            (Role::Producer, &self.producer),
        ] {
            let Some(props) = props else { continue };
            if props.len() > MAX_OVERRIDES {
                return Err(RequestError::Limit(format!(
                    "{} {role} overrides, above the limit of {MAX_OVERRIDES}",
                    props.len()
                )));
            }
            for (k, v) in props {
                check_len(&format!("{role} property name"), k)?;
                check_len(&format!("{role}.{k}"), &v.0)?;
            }
            property_allowlist::check_overrides(role, props.keys())?;
        }
        Ok(())
    }

    /// The scheduler's command; the state machine checks the rest (resource
    /// ranges, topic names, the per-call maximum).
    pub fn into_command(self) -> Result<AddServers, RequestError> {
        let count = whole("amount", &self.amount)?;
        let id = match &self.id {
            None => None,
            Some(n) => {
                let i = whole("id", n)?;
                Some(
                    ServerId::try_from(i)
                        .ok()
                        .filter(|i| *i > 0)
                        .ok_or_else(|| {
                            RequestError::Field(format!(
                                "id {i} is not a server id (a positive integer)"
                            ))
                        })?,
                )
            }
        };
        let props = |p: Option<BTreeMap<String, PropertyValue>>| {
            p.unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect()
        };
        Ok(AddServers {
            count,
            cpus: self.cpus,
            mem: self.mem,
            topics: self.topics.map(|t| t.0),
            topics_regex: self.topics_regex,
            consumer: props(self.consumer),
            producer: props(self.producer),
            id,
        })
    }
}

/// Server ids, as a list, one number, or the original CLI's `"1,2"`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdList(pub Vec<ServerId>);

impl Serialize for IdList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

fn server_id<E: de::Error>(text: &str) -> Result<ServerId, E> {
    text.trim()
        .parse::<ServerId>()
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| E::custom(format!("id {text} is not a server id (a positive integer)")))
}

/// One id inside a list.
struct OneId(ServerId);

impl<'de> Deserialize<'de> for OneId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = OneId;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a server id (a positive integer)")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<OneId, E> {
                server_id(&n.to_string()).map(OneId)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<OneId, E> {
                server_id(&n.to_string()).map(OneId)
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<OneId, E> {
                server_id(&n.to_string()).map(OneId)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for IdList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IdList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of server ids")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<IdList, E> {
                s.split(',')
                    .filter(|p| !p.trim().is_empty())
                    .map(server_id)
                    .collect::<Result<_, _>>()
                    .map(IdList)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<IdList, E> {
                server_id(&n.to_string()).map(|i| IdList(vec![i]))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<IdList, E> {
                server_id(&n.to_string()).map(|i| IdList(vec![i]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IdList, A::Error> {
                let mut out = Vec::new();
                while let Some(OneId(id)) = seq.next_element()? {
                    if out.len() == MAX_IDS {
                        return Err(de::Error::custom(format!("more than {MAX_IDS} ids")));
                    }
                    out.push(id);
                }
                Ok(IdList(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `POST /api/delete`, `/api/start` and `/api/stop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdsRequest {
    /// The servers.
    pub ids: IdList,
}

impl IdsRequest {
    /// A request for `ids`.
    pub fn new(ids: Vec<ServerId>) -> Self {
        IdsRequest { ids: IdList(ids) }
    }

    /// Parses and checks a request body: the one constructor from bytes.
    pub fn from_body(body: &[u8]) -> Result<Self, RequestError> {
        parse_object(body)
    }
}

/// Every answer: `{"message": ..., "success": ..., "value": ...}`, in this
/// order (the original's bytes: its keys sorted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer<V> {
    /// A sentence for the operator.
    #[serde(default)]
    pub message: String,
    /// Whether the request succeeded.
    pub success: bool,
    /// What the request returns.
    pub value: V,
}

/// The value of most answers: the servers, ordered by id.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ServersValue {
    /// The servers.
    #[serde(default)]
    pub servers: Vec<ServerView>,
}

/// One server as the API shows it: Kafka overrides with their secrets
/// redacted, the executor's latest metrics document as sent. The fields are
/// in alphabetical order, the order of the original's bytes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerView {
    /// The agent of the current launch.
    pub agent_id: Option<String>,
    /// Consumer overrides, secrets redacted.
    pub consumer: BTreeMap<String, String>,
    /// CPUs per task.
    pub cpus: f64,
    /// What the operator wants: Run, Stop or Delete.
    pub goal: String,
    /// Per synced consumer group: when its translated offsets were last
    /// written on the target (from the executor's metrics); absent when none.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub group_syncs: BTreeMap<String, GroupSyncReport>,
    /// That agent's hostname.
    pub hostname: Option<String>,
    /// The operator's id.
    pub id: ServerId,
    /// Launches since the last TASK_RUNNING.
    pub launch_attempts: u32,
    /// Memory per task (MB).
    pub mem: f64,
    /// The last status message.
    pub message: Option<String>,
    /// The executor's latest metrics document.
    pub metrics: Option<Value>,
    /// Producer overrides, secrets redacted.
    pub producer: BTreeMap<String, String>,
    /// Added, Starting, Running...
    pub state: String,
    /// The Mesos task id of the current launch.
    pub task_id: Option<String>,
    /// Topics mirrored.
    pub topics: Vec<String>,
    /// The topic regex mirrored.
    pub topics_regex: Option<String>,
    /// Per source `topic-partition`: how far the mirror's committed offset
    /// is past what the published offset syncs translate exactly (from the
    /// executor's metrics); absent when the task writes no offset syncs.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub translation_lag: BTreeMap<String, i64>,
}

impl ServerView {
    /// The partition with the largest translation lag, and that lag.
    pub fn max_translation_lag(&self) -> Option<(&str, i64)> {
        self.translation_lag
            .iter()
            .map(|(partition, lag)| (partition.as_str(), *lag))
            .max_by_key(|&(_, lag)| lag)
    }
}

impl From<&Server> for ServerView {
    fn from(s: &Server) -> Self {
        let report = s
            .metrics
            .as_ref()
            .map(|m| ReplicationReport::from_metrics(&m.document))
            .unwrap_or_default();
        ServerView {
            id: s.id,
            state: s.state.as_str().to_string(),
            cpus: s.task.cpus,
            mem: s.task.mem,
            topics: s.task.topics.clone(),
            topics_regex: s.task.topics_regex.clone(),
            consumer: kafka_props::redact(&s.task.consumer),
            producer: kafka_props::redact(&s.task.producer),
            goal: format!("{:?}", s.goal),
            task_id: s.task_id.clone(),
            agent_id: s.agent_id.clone(),
            hostname: s.hostname.clone(),
            launch_attempts: s.launch_attempts,
            message: s.message.clone(),
            metrics: s.metrics.as_ref().map(|m| m.document.clone()),
            translation_lag: report
                .offset_syncs
                .map(|syncs| syncs.translation_lag)
                .unwrap_or_default(),
            group_syncs: report.group_syncs,
        }
    }
}

impl ServersValue {
    /// The servers of `cluster`, ordered by id.
    pub fn of(cluster: &crate::model::Cluster) -> Self {
        ServersValue {
            servers: cluster.servers.values().map(ServerView::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cluster, TaskConfig};

    fn add(body: &str) -> Result<AddServers, String> {
        AddRequest::from_body(body.as_bytes())
            .and_then(AddRequest::into_command)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn add_requests_are_typed_and_checked() {
        let a = add(r#"{"amount": 2, "cpus": 0.5, "topics": ["a", "b"],
                "consumer": {"fetch.min.bytes": 1, "check.crcs": false}}"#)
        .expect("valid");
        assert_eq!((a.count, a.cpus), (2, Some(0.5)));
        assert_eq!(a.topics, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(
            a.consumer.get("fetch.min.bytes").map(String::as_str),
            Some("1")
        );
        assert_eq!(
            a.consumer.get("check.crcs").map(String::as_str),
            Some("false")
        );
        let a = add(r#"{"amount": 1, "topics": "x, y", "consumer": null}"#).expect("valid");
        assert_eq!(a.topics, Some(vec!["x".to_string(), "y".to_string()]));

        for (body, needle) in [
            ("", "empty request body"),
            ("{x", "malformed JSON"),
            ("[1]", "a JSON object is expected, got an array"),
            (r#"{"amount": "2"}"#, "amount: invalid type: string"),
            (r#"{"amount": 1.5}"#, "amount must be an integer"),
            (r#"{"amount": 1e30}"#, "out of range"),
            (r#"{"cpus": 1}"#, "missing field `amount`"),
            (r#"{"amount": 1, "cpu": 1}"#, "unknown field `cpu`"),
            (r#"{"amount": 1, "topics": [1]}"#, "topics[0]"),
            (
                r#"{"amount": 1, "consumer": {"fetch.min.bytes": [1]}}"#,
                "consumer.fetch.min.bytes",
            ),
            (r#"{"amount": 1, "id": 0}"#, "id 0 is not a server id"),
            (
                r#"{"amount": 1, "id": 4294967296}"#,
                "id 4294967296 is not a server id",
            ),
        ] {
            let err = add(body).expect_err(body);
            assert!(err.contains(needle), "{body}: {err}");
        }
    }

    #[test]
    fn kafka_overrides_outside_the_allowlist_are_refused_by_name() {
        for (client, key) in [
            ("consumer", "bootstrap.servers"),
            ("producer", "bootstrap.servers"),
            ("consumer", "plugin.library.paths"),
            ("producer", "ssl.engine.location"),
            ("consumer", "security.protocol"),
            ("consumer", "group.id"),
            ("consumer", "sasl.password"),
        ] {
            let body = format!(r#"{{"amount": 1, "{client}": {{"{key}": "x"}}}}"#);
            let err = add(&body).expect_err(&body);
            assert!(err.contains(&format!("{key:?}")), "{err}");
        }
    }

    #[test]
    fn long_strings_and_too_many_items_are_refused() {
        let long = "x".repeat(MAX_STRING_LEN + 1);
        let err = add(&format!(r#"{{"amount": 1, "topics_regex": "{long}"}}"#)).expect_err("long");
        assert!(
            err.contains("topics_regex") && err.contains("limit"),
            "{err}"
        );
        let many: Vec<String> = (0..=MAX_OVERRIDES)
            .map(|i| format!("\"k{i}\": \"v\""))
            .collect();
        let err = add(&format!(
            r#"{{"amount": 1, "producer": {{{}}}}}"#,
            many.join(",")
        ))
        .expect_err("many");
        assert!(err.contains("overrides"), "{err}");
    }

    #[test]
    fn ids_accept_lists_one_number_and_the_original_comma_form() {
        let ids = |b: &str| IdsRequest::from_body(b.as_bytes()).map(|r| r.ids.0);
        assert_eq!(ids(r#"{"ids": [1, 2]}"#), Ok(vec![1, 2]));
        assert_eq!(ids(r#"{"ids": "3,4"}"#), Ok(vec![3, 4]));
        assert_eq!(ids(r#"{"ids": 5}"#), Ok(vec![5]));
        for (body, needle) in [
            (r#"{"ids": [-1]}"#, "-1"),
            (r#"{"ids": ["x"]}"#, "ids[0]"),
            (r#"{}"#, "missing field `ids`"),
            (r#"{"ids": [1], "more": 1}"#, "unknown field `more`"),
        ] {
            let err = ids(body).expect_err(body).to_string();
            assert!(err.contains(needle), "{body}: {err}");
        }
    }

    #[test]
    fn the_cli_requests_round_trip() {
        let mut request = AddRequest::new(2);
        request.topics = Some(TopicList(vec!["a".into()]));
        let text = serde_json::to_string(&request).expect("json");
        assert_eq!(text, r#"{"amount":2,"topics":["a"]}"#);
        assert_eq!(AddRequest::from_body(text.as_bytes()), Ok(request));
        let text = serde_json::to_string(&IdsRequest::new(vec![1, 3])).expect("json");
        assert_eq!(text, r#"{"ids":[1,3]}"#);
    }

    /// A task of 0.2 CPU and 256 MB mirroring topic `t`.
    fn task_of_t(consumer: BTreeMap<String, String>) -> TaskConfig {
        TaskConfig {
            cpus: 0.2,
            mem: 256.0,
            topics: vec!["t".into()],
            topics_regex: None,
            consumer,
            producer: BTreeMap::new(),
        }
    }

    #[test]
    fn answers_keep_the_original_bytes_and_redact_secrets() {
        let mut cluster = Cluster::new();
        let consumer = BTreeMap::from([("sasl.password".to_string(), "hunter2".to_string())]);
        cluster.add(None, task_of_t(consumer), 0).expect("add");
        let answer = Answer {
            message: "1 servers.".to_string(),
            success: true,
            value: ServersValue::of(&cluster),
        };
        let text = serde_json::to_string(&answer).expect("json");
        // The bytes the API wrote before these types existed.
        assert_eq!(
            text,
            r#"{"message":"1 servers.","success":true,"value":{"servers":[{"agent_id":null,"consumer":{"sasl.password":"[redacted]"},"cpus":0.2,"goal":"Run","hostname":null,"id":1,"launch_attempts":0,"mem":256.0,"message":null,"metrics":null,"producer":{},"state":"Added","task_id":null,"topics":["t"],"topics_regex":null}]}}"#
        );
        let back: Answer<ServersValue> = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back, answer);
        // An executor's document without offset syncs adds nothing either.
        cluster.get_mut(1).expect("server").metrics = Some(crate::model::Metrics {
            received_ms: 5,
            document: serde_json::json!({"kind": "metrics", "lag": {"t-0": 1}}),
        });
        let text = serde_json::to_string(&ServersValue::of(&cluster)).expect("json");
        assert!(
            !text.contains("translation_lag") && !text.contains("group_syncs"),
            "{text}"
        );
        let lenient: Answer<ServersValue> =
            serde_json::from_str(r#"{"success":true,"value":{"servers":[{"id":4,"future":1}]}}"#)
                .expect("lenient");
        assert_eq!(lenient.value.servers[0].id, 4);
    }

    #[test]
    fn translation_lag_and_group_syncs_come_from_the_executors_document() {
        let mut cluster = Cluster::new();
        let id = cluster
            .add(None, task_of_t(BTreeMap::new()), 0)
            .expect("add");
        cluster.get_mut(id).expect("server").metrics = Some(crate::model::Metrics {
            received_ms: 9,
            document: serde_json::json!({"kind": "metrics",
                "offset_syncs": {"topic": "mmm-offset-syncs", "translation_lag": {"t-0": 3, "t-1": 12},
                    "last_sync_unix_ms": 40, "syncs_written": 2, "error": null},
                "group_syncs": {"billing": {"last_sync_unix_ms": 41, "partitions": 2, "skipped": null},
                    "audit": {"last_sync_unix_ms": 0, "partitions": 0,
                        "skipped": "the group has active members on the target"}}}),
        });
        let view = &ServersValue::of(&cluster).servers[0];
        assert_eq!(view.max_translation_lag(), Some(("t-1", 12)));
        let json = serde_json::to_value(view).expect("json");
        assert_eq!(
            json["translation_lag"],
            serde_json::json!({"t-0": 3, "t-1": 12})
        );
        assert_eq!(
            json["group_syncs"]["billing"],
            serde_json::json!({"last_sync_unix_ms": 41, "partitions": 2, "skipped": null})
        );
        assert_eq!(
            json["group_syncs"]["audit"]["skipped"],
            "the group has active members on the target"
        );
        let back: ServerView = serde_json::from_value(json).expect("reads back");
        assert_eq!(&back, view);
    }
}
