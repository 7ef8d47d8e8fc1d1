//! The REST API, compatible with the original framework's: every answer is
//! `{"success": bool, "message": "...", "value": {"servers": [...]}}`.
//!
//! Bad input is refused here or by the scheduler with a 4xx and a message
//! naming the problem; in both cases the cluster is unchanged.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mmm_core::kafka_props;
use mmm_core::model::{Cluster, Server, ServerId};
use mmm_core::scheduler::{AddServers, Command, CommandError};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::dist::{Dist, RefusedPath};
use crate::driver::{CommandFailure, CommandSender};
use crate::mesos::connection::SubscriptionState;
use crate::metrics::Metrics;

/// Request bodies above this are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub commands: CommandSender,
    pub view: watch::Receiver<Arc<Cluster>>,
    pub subscription: watch::Receiver<SubscriptionState>,
    pub metrics: Arc<Metrics>,
    pub dist: Arc<Dist>,
    /// When set, mutating calls need `Authorization: Bearer <token>`.
    pub token: Option<Arc<str>>,
}

/// The routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/ping", get(|| async { "pong" }))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/api/status", get(status))
        .route("/api/add", post(add))
        .route("/api/delete", post(delete))
        .route("/api/start", post(start))
        .route("/api/stop", post(stop))
        .route("/dist/{*file}", get(dist_file))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// One server as the API shows it. Kafka overrides are shown with their
/// secrets redacted.
#[derive(Debug, Serialize)]
pub struct ServerView {
    pub id: ServerId,
    pub state: &'static str,
    pub cpus: f64,
    pub mem: f64,
    pub topics: Vec<String>,
    pub topics_regex: Option<String>,
    pub consumer: BTreeMap<String, String>,
    pub producer: BTreeMap<String, String>,
    pub goal: String,
    pub task_id: Option<String>,
    pub agent_id: Option<String>,
    pub hostname: Option<String>,
    pub launch_attempts: u32,
    pub message: Option<String>,
    pub metrics: Option<Value>,
}

impl From<&Server> for ServerView {
    fn from(s: &Server) -> Self {
        ServerView {
            id: s.id,
            state: s.state.as_str(),
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
        }
    }
}

fn servers(cluster: &Cluster) -> Vec<ServerView> {
    cluster.servers.values().map(ServerView::from).collect()
}

fn reply(status: StatusCode, success: bool, message: String, value: Value) -> Response {
    (
        status,
        Json(serde_json::json!({"success": success, "message": message, "value": value})),
    )
        .into_response()
}

fn servers_value(cluster: &Cluster) -> Value {
    serde_json::json!({ "servers": servers(cluster) })
}

fn refuse(state: &ApiState, status: StatusCode, message: String) -> Response {
    let cluster = state.view.borrow().clone();
    reply(status, false, message, servers_value(&cluster))
}

async fn not_found(State(state): State<ApiState>) -> Response {
    refuse(&state, StatusCode::NOT_FOUND, "no such endpoint".into())
}

async fn status(State(state): State<ApiState>) -> Response {
    let cluster = state.view.borrow().clone();
    let message = if cluster.servers.is_empty() {
        "No servers were added. Add servers with 'add' command.".to_string()
    } else {
        format!("{} servers.", cluster.servers.len())
    };
    reply(StatusCode::OK, true, message, servers_value(&cluster))
}

async fn health(State(state): State<ApiState>) -> Response {
    let cluster = state.view.borrow().clone();
    let sub = state.subscription.borrow().clone();
    let (code, ok, message) = match &sub {
        SubscriptionState::Subscribed {
            framework_id,
            master,
        } => (
            StatusCode::OK,
            true,
            format!("subscribed as {framework_id} to {master}"),
        ),
        SubscriptionState::Connecting => (
            StatusCode::SERVICE_UNAVAILABLE,
            false,
            "subscribing to Mesos".to_string(),
        ),
        SubscriptionState::Disconnected { reason } => (
            StatusCode::SERVICE_UNAVAILABLE,
            false,
            format!("not subscribed: {reason}"),
        ),
    };
    reply(
        code,
        ok,
        message,
        serde_json::json!({"subscription": sub, "servers": servers(&cluster)}),
    )
}

async fn metrics(State(state): State<ApiState>) -> Response {
    let cluster = state.view.borrow().clone();
    let sub = state.subscription.borrow().clone();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(&cluster, &sub),
    )
        .into_response()
}

/// A request body refused before it reaches the scheduler.
#[derive(Debug)]
struct BadRequest(StatusCode, String);

/// Refuses a mutating call sent by a page of another origin, then checks the
/// token when the API is protected.
fn authorize(state: &ApiState, headers: &HeaderMap) -> Result<(), BadRequest> {
    check_same_origin(headers)?;
    let Some(token) = &state.token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if constant_time_eq(g.trim().as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err(BadRequest(
            StatusCode::UNAUTHORIZED,
            "invalid API token".into(),
        )),
        None => Err(BadRequest(
            StatusCode::UNAUTHORIZED,
            "this API needs \"Authorization: Bearer <token>\"".into(),
        )),
    }
}

/// Browsers send `Origin` with every cross-site POST, and a "simple" one
/// (form or text body) is sent without asking first; without this check any
/// web page an operator has open could add or delete tasks on an unprotected
/// API. Clients that are not browsers (the CLI, curl) send no `Origin`.
fn check_same_origin(headers: &HeaderMap) -> Result<(), BadRequest> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    let origin_host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(BadRequest(
            StatusCode::FORBIDDEN,
            format!("cross-origin request from {origin:?} refused"),
        ))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn json_object(body: Result<Bytes, BytesRejection>) -> Result<Map<String, Value>, BadRequest> {
    let body = body.map_err(|e| {
        let status = e.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("request body larger than {BODY_LIMIT} bytes")
        } else {
            format!("cannot read the request body: {e}")
        };
        BadRequest(status, message)
    })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BadRequest(
            StatusCode::BAD_REQUEST,
            "empty request body: a JSON object is expected".into(),
        ));
    }
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| BadRequest(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(BadRequest(
            StatusCode::BAD_REQUEST,
            format!("a JSON object is expected, got {}", type_name(&other)),
        )),
    }
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

fn bad(message: String) -> BadRequest {
    BadRequest(StatusCode::BAD_REQUEST, message)
}

fn only_keys(map: &Map<String, Value>, allowed: &[&str]) -> Result<(), BadRequest> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(bad(format!(
            "unknown field {k:?} (expected {})",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

fn integer(map: &Map<String, Value>, key: &str) -> Result<Option<i64>, BadRequest> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Ok(Some(i)),
            None if n.as_u64().is_some() || n.as_f64().is_some_and(|f| f.fract() == 0.0) => {
                Err(bad(format!("{key} {n} is out of range")))
            }
            None => Err(bad(format!("{key} must be an integer, got {n}"))),
        },
        Some(other) => Err(bad(format!(
            "{key} must be an integer, got {}",
            type_name(other)
        ))),
    }
}

fn number(map: &Map<String, Value>, key: &str) -> Result<Option<f64>, BadRequest> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| bad(format!("{key} must be a number"))),
        Some(other) => Err(bad(format!(
            "{key} must be a number, got {}",
            type_name(other)
        ))),
    }
}

fn string(map: &Map<String, Value>, key: &str) -> Result<Option<String>, BadRequest> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(bad(format!(
            "{key} must be a string, got {}",
            type_name(other)
        ))),
    }
}

fn string_list(map: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, BadRequest> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        // The original CLI sent topics comma-separated.
        Some(Value::String(s)) => Ok(Some(
            s.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
        )),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(bad(format!(
                    "{key}[{i}] must be a string, got {}",
                    type_name(other)
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(bad(format!(
            "{key} must be a list of strings, got {}",
            type_name(other)
        ))),
    }
}

fn kafka_overrides(
    map: &Map<String, Value>,
    key: &str,
) -> Result<BTreeMap<String, String>, BadRequest> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(props)) => props
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    other => {
                        return Err(bad(format!(
                            "{key}.{k} must be a string, number or boolean, got {}",
                            type_name(other)
                        )))
                    }
                };
                Ok((k.clone(), value))
            })
            .collect(),
        Some(other) => Err(bad(format!(
            "{key} must be an object of Kafka properties, got {}",
            type_name(other)
        ))),
    }
}

fn ids(map: &Map<String, Value>) -> Result<Vec<ServerId>, BadRequest> {
    let value = map
        .get("ids")
        .ok_or_else(|| bad("missing field \"ids\"".into()))?;
    let parse_one = |s: &str| -> Result<ServerId, BadRequest> {
        s.trim()
            .parse::<ServerId>()
            .map_err(|_| bad(format!("id {s:?} is not a server id (a positive integer)")))
    };
    match value {
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::Number(n) => n
                    .as_u64()
                    .and_then(|i| ServerId::try_from(i).ok())
                    .ok_or_else(|| bad(format!("id {n} is not a server id (a positive integer)"))),
                other => Err(bad(format!(
                    "ids must hold integers, got {}",
                    type_name(other)
                ))),
            })
            .collect(),
        // The original CLI sent "1,2".
        Value::String(s) => s
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(parse_one)
            .collect(),
        Value::Number(n) => parse_one(&n.to_string()).map(|id| vec![id]),
        other => Err(bad(format!(
            "ids must be a list of integers, got {}",
            type_name(other)
        ))),
    }
}

fn parse_add(map: &Map<String, Value>) -> Result<AddServers, BadRequest> {
    only_keys(
        map,
        &[
            "amount",
            "cpus",
            "mem",
            "topics",
            "topics_regex",
            "consumer",
            "producer",
            "id",
        ],
    )?;
    let count = integer(map, "amount")?.ok_or_else(|| bad("missing field \"amount\"".into()))?;
    let id = match integer(map, "id")? {
        None => None,
        Some(i) => Some(
            ServerId::try_from(i)
                .ok()
                .filter(|i| *i > 0)
                .ok_or_else(|| bad(format!("id {i} is not a server id (a positive integer)")))?,
        ),
    };
    Ok(AddServers {
        count,
        cpus: number(map, "cpus")?,
        mem: number(map, "mem")?,
        topics: string_list(map, "topics")?,
        topics_regex: string(map, "topics_regex")?,
        consumer: kafka_overrides(map, "consumer")?,
        producer: kafka_overrides(map, "producer")?,
        id,
    })
}

fn status_of(e: &CommandError) -> StatusCode {
    match e {
        CommandError::UnknownIds(_) => StatusCode::NOT_FOUND,
        CommandError::BeingDeleted(_) => StatusCode::CONFLICT,
        CommandError::Model(mmm_core::model::ModelError::IdTaken(_)) => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// The sentences of the original framework, which operators' scripts match.
fn original_message(kind: Kind, ids: &[ServerId]) -> String {
    let list = ids
        .iter()
        .map(ServerId::to_string)
        .collect::<Vec<_>>()
        .join(",");
    match kind {
        Kind::Add => format!("Added {} tasks successfully.", ids.len()),
        Kind::Delete => format!("Delete servers request (ids={list}) was sent successfully."),
        Kind::Start => format!("Start servers request (ids={list}) was sent successfully."),
        Kind::Stop => format!("Stop servers request (ids={list}) was sent successfully."),
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Add,
    Delete,
    Start,
    Stop,
}

async fn run_command(
    state: &ApiState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    kind: Kind,
    parse: impl FnOnce(&Map<String, Value>) -> Result<Command, BadRequest>,
) -> Response {
    let command = match authorize(state, headers)
        .and_then(|()| json_object(body))
        .and_then(|map| parse(&map))
    {
        Ok(c) => c,
        Err(BadRequest(status, message)) => {
            tracing::info!(%status, %message, "API request refused");
            return refuse(state, status, message);
        }
    };
    match state.commands.run(command).await {
        Ok(done) => reply(
            StatusCode::OK,
            true,
            original_message(kind, &done.outcome.ids),
            servers_value(&done.cluster),
        ),
        Err(CommandFailure::Refused(e)) => {
            tracing::info!(error = %e, "API command refused");
            refuse(state, status_of(&e), e.to_string())
        }
        Err(e @ CommandFailure::NotStored(_)) => {
            tracing::error!(error = %e, "API command failed");
            refuse(state, StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        Err(e @ CommandFailure::ShuttingDown) => {
            refuse(state, StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
    }
}

async fn add(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    run_command(&state, &headers, body, Kind::Add, |m| {
        parse_add(m).map(Command::Add)
    })
    .await
}

async fn delete(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    run_command(&state, &headers, body, Kind::Delete, |m| {
        only_keys(m, &["ids"])?;
        Ok(Command::Delete { ids: ids(m)? })
    })
    .await
}

async fn start(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    run_command(&state, &headers, body, Kind::Start, |m| {
        only_keys(m, &["ids"])?;
        Ok(Command::Start { ids: ids(m)? })
    })
    .await
}

async fn stop(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    run_command(&state, &headers, body, Kind::Stop, |m| {
        only_keys(m, &["ids"])?;
        Ok(Command::Stop { ids: ids(m)? })
    })
    .await
}

async fn dist_file(State(state): State<ApiState>, Path(file): Path<String>) -> Response {
    let path = match state.dist.resolve(&file) {
        Ok(p) => p,
        Err(e @ RefusedPath::Outside(_)) => {
            tracing::warn!(request = %file, "refused a dist path outside the directory");
            return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
        }
        Err(e @ RefusedPath::NotFound(_)) => {
            return (StatusCode::NOT_FOUND, e.to_string()).into_response()
        }
    };
    match tokio::fs::File::open(&path).await {
        Ok(f) => {
            let len = f.metadata().await.map(|m| m.len()).ok();
            let stream = tokio_util::io::ReaderStream::new(f);
            let mut response = Body::from_stream(stream).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/octet-stream"),
            );
            if let Some(len) = len {
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
            }
            response
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot open a dist file");
            (StatusCode::NOT_FOUND, format!("no such file {file:?}")).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("test input must be an object"),
        }
    }

    fn err(r: Result<impl std::fmt::Debug, BadRequest>) -> String {
        match r {
            Ok(v) => panic!("expected an error, got {v:?}"),
            Err(BadRequest(status, m)) => {
                assert!(status.is_client_error());
                m
            }
        }
    }

    #[test]
    fn add_requests_are_checked_field_by_field() {
        let a = parse_add(&obj(
            serde_json::json!({"amount": 2, "cpus": 0.5, "topics": ["a", "b"],
            "consumer": {"fetch.min.bytes": 1, "enable.auto.commit": false}}),
        ))
        .expect("valid");
        assert_eq!(a.count, 2);
        assert_eq!(a.cpus, Some(0.5));
        assert_eq!(a.topics, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(
            a.consumer.get("fetch.min.bytes").map(String::as_str),
            Some("1")
        );

        assert!(err(parse_add(&obj(serde_json::json!({"amount": "2"}))))
            .contains("amount must be an integer"));
        assert!(err(parse_add(&obj(serde_json::json!({"amount": 1.5})))).contains("amount"));
        assert!(err(parse_add(&obj(serde_json::json!({"amount": 1e30})))).contains("out of range"));
        assert!(err(parse_add(&obj(serde_json::json!({"cpus": 1})))).contains("\"amount\""));
        assert!(
            err(parse_add(&obj(serde_json::json!({"amount": 1, "cpu": 1})))).contains("\"cpu\"")
        );
        assert!(err(parse_add(&obj(
            serde_json::json!({"amount": 1, "topics": [1]})
        )))
        .contains("topics[0]"));
        assert!(err(parse_add(&obj(
            serde_json::json!({"amount": 1, "consumer": {"a": [1]}})
        )))
        .contains("consumer.a"));
    }

    #[test]
    fn ids_accept_lists_and_the_original_comma_form() {
        assert_eq!(
            ids(&obj(serde_json::json!({"ids": [1, 2]}))).ok(),
            Some(vec![1, 2])
        );
        assert_eq!(
            ids(&obj(serde_json::json!({"ids": "3,4"}))).ok(),
            Some(vec![3, 4])
        );
        assert!(err(ids(&obj(serde_json::json!({"ids": [-1]})))).contains("-1"));
        assert!(err(ids(&obj(serde_json::json!({"ids": ["x"]})))).contains("integers"));
        assert!(err(ids(&obj(serde_json::json!({})))).contains("\"ids\""));
    }

    #[test]
    fn server_views_redact_secrets() {
        let mut cluster = Cluster::new();
        let task = mmm_core::model::TaskConfig {
            cpus: 0.2,
            mem: 256.0,
            topics: vec!["t".into()],
            topics_regex: None,
            consumer: BTreeMap::from([("sasl.password".to_string(), "hunter2".to_string())]),
            producer: BTreeMap::from([("ssl.key.password".to_string(), "k3y".to_string())]),
        };
        cluster.add(None, task, 0).expect("add");
        let text = serde_json::to_string(&servers_value(&cluster)).expect("json");
        assert!(!text.contains("hunter2") && !text.contains("k3y"), "{text}");
        assert!(
            text.contains("\"state\":\"Added\"") && text.contains("\"id\":1"),
            "{text}"
        );
    }
}
