//! The REST API, compatible with the original framework's: every answer is
//! `{"message": "...", "success": bool, "value": {"servers": [...]}}`. The
//! bodies are the types of `mmm_core::rest`, shared with the CLI.
//!
//! Bad input is refused here or by the scheduler with a 4xx and a message
//! naming the problem; in both cases the cluster is unchanged. Every request
//! must name this scheduler in its Host header; mutating calls must also be
//! JSON, come from no other web origin and, when a token is configured,
//! carry it.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mmm_core::model::{Cluster, ServerId};
use mmm_core::rest::{AddRequest, Answer, IdsRequest, RequestError, ServersValue};
use mmm_core::scheduler::{Command, CommandError};
use serde::Serialize;
use tokio::sync::watch;

use crate::access::{self, Access};
use crate::dist::{Dist, RefusedPath};
use crate::driver::{CommandFailure, CommandSender};
use crate::mesos::connection::SubscriptionState;
use crate::metrics::Metrics;

pub use mmm_core::rest::BODY_LIMIT;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub commands: CommandSender,
    pub view: watch::Receiver<Arc<Cluster>>,
    pub subscription: watch::Receiver<SubscriptionState>,
    pub metrics: Arc<Metrics>,
    pub dist: Arc<Dist>,
    /// The token and the hosts requests may name.
    pub access: Arc<Access>,
}

/// The API's routes alone.
pub fn router(state: ApiState) -> Router {
    app(state, Router::new())
}

/// The API's routes and `extra` (the status page), behind the host check
/// and the security headers.
pub fn app(state: ApiState, extra: Router) -> Router {
    let access = state.access.clone();
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
        .merge(extra)
        .layer(middleware::from_fn_with_state(access, guard))
}

/// Refuses a request whose Host names another server (DNS rebinding), and
/// adds the headers that keep browsers from framing, sniffing or leaking.
async fn guard(State(access): State<Arc<Access>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or_default();
    let mut response = if access.host_allowed(host) {
        next.run(request).await
    } else {
        tracing::info!(%host, "refused a request for another host");
        refuse(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this scheduler does not answer to the host {host:?} \
                 (add it to [api] allowed_hosts if it is one of its names)"
            ),
        )
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A refusal: the answer's shape without the cluster, so that a request
/// that fails cannot be used to read it.
fn refuse(status: StatusCode, message: String) -> Response {
    reply(status, false, message, ServersValue::default())
}

fn reply<V: Serialize>(status: StatusCode, success: bool, message: String, value: V) -> Response {
    (
        status,
        Json(Answer {
            message,
            success,
            value,
        }),
    )
        .into_response()
}

async fn not_found() -> Response {
    refuse(StatusCode::NOT_FOUND, "no such endpoint".into())
}

async fn status(State(state): State<ApiState>) -> Response {
    let cluster = state.view.borrow().clone();
    let message = if cluster.servers.is_empty() {
        "No servers were added. Add servers with 'add' command.".to_string()
    } else {
        format!("{} servers.", cluster.servers.len())
    };
    reply(StatusCode::OK, true, message, ServersValue::of(&cluster))
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
        HealthValue {
            servers: ServersValue::of(&cluster).servers,
            subscription: sub,
        },
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

/// The value of `/health`.
#[derive(Debug, Serialize)]
struct HealthValue {
    servers: Vec<mmm_core::rest::ServerView>,
    subscription: SubscriptionState,
}

/// A request refused before it reaches the scheduler.
#[derive(Debug)]
struct BadRequest(StatusCode, String);

impl From<RequestError> for BadRequest {
    fn from(e: RequestError) -> Self {
        BadRequest(StatusCode::BAD_REQUEST, e.to_string())
    }
}

/// The checks of a mutating call: no other web origin, the token when the
/// API is protected, and a JSON body.
fn authorize(state: &ApiState, headers: &HeaderMap) -> Result<(), BadRequest> {
    check_origin(&state.access, headers)?;
    check_token(&state.access, headers)?;
    check_json(headers)
}

fn check_token(access: &Access, headers: &HeaderMap) -> Result<(), BadRequest> {
    let Some(file) = &access.token else {
        return Ok(());
    };
    let token = file.token();
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

/// Browsers send `Origin` with every cross-site POST; it must name this
/// scheduler (the Host check alone cannot tell a rebound name from ours,
/// since the attacker's page sends its own name in both). Clients that are
/// not browsers (the CLI, curl) send no `Origin`.
fn check_origin(access: &Access, headers: &HeaderMap) -> Result<(), BadRequest> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    if origin != "null" && access.host_allowed(access::authority(origin)) {
        Ok(())
    } else {
        Err(BadRequest(
            StatusCode::FORBIDDEN,
            format!("cross-origin request from {origin:?} refused"),
        ))
    }
}

/// A form or `text/plain` body is what a page of another site can send
/// without asking the browser first; the API takes JSON only.
fn check_json(headers: &HeaderMap) -> Result<(), BadRequest> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(BadRequest(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be application/json, got {content_type:?}"),
        ))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, BadRequest> {
    body.map_err(|e| {
        let status = e.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("request body larger than {BODY_LIMIT} bytes")
        } else {
            format!("cannot read the request body: {e}")
        };
        BadRequest(status, message)
    })
}

fn parse_add(body: &[u8]) -> Result<Command, BadRequest> {
    Ok(Command::Add(AddRequest::from_body(body)?.into_command()?))
}

fn parse_ids(body: &[u8]) -> Result<Vec<ServerId>, BadRequest> {
    Ok(IdsRequest::from_body(body)?.ids.0)
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
    parse: impl FnOnce(&[u8]) -> Result<Command, BadRequest>,
) -> Response {
    let command = match authorize(state, headers)
        .and_then(|()| body_bytes(body))
        .and_then(|bytes| parse(&bytes))
    {
        Ok(c) => c,
        Err(BadRequest(status, message)) => {
            tracing::info!(%status, %message, "API request refused");
            return refuse(status, message);
        }
    };
    match state.commands.run(command).await {
        Ok(done) => reply(
            StatusCode::OK,
            true,
            original_message(kind, &done.outcome.ids),
            ServersValue::of(&done.cluster),
        ),
        Err(CommandFailure::Refused(e)) => {
            tracing::info!(error = %e, "API command refused");
            refuse(status_of(&e), e.to_string())
        }
        Err(e @ CommandFailure::NotStored(_)) => {
            tracing::error!(error = %e, "API command failed");
            refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        Err(e @ CommandFailure::ShuttingDown) => {
            refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
    }
}

async fn add(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    run_command(&state, &headers, body, Kind::Add, parse_add).await
}

async fn delete(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    run_command(&state, &headers, body, Kind::Delete, |b| {
        Ok(Command::Delete { ids: parse_ids(b)? })
    })
    .await
}

async fn start(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    run_command(&state, &headers, body, Kind::Start, |b| {
        Ok(Command::Start { ids: parse_ids(b)? })
    })
    .await
}

async fn stop(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    run_command(&state, &headers, body, Kind::Stop, |b| {
        Ok(Command::Stop { ids: parse_ids(b)? })
    })
    .await
}

async fn dist_file(State(state): State<ApiState>, Path(file): Path<String>) -> Response {
    let path = match state.dist.served(&file) {
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
