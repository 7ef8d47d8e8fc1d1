//! `POST /api/v1/executor` on each agent.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use mesos_proto::v1::{executor as exec, task_status::Source, TaskState};

use crate::agent;
use crate::http_scheduler::{
    accepts_protobuf, decode_body, method_not_allowed, stream_response, text,
};
use crate::state::SharedRef;

/// The agent a request reached.
#[derive(Clone)]
pub(crate) struct AgentHandle {
    pub shared: SharedRef,
    pub index: usize,
}

/// The checks of `validation::executor::call::validate`.
fn validate(c: &exec::Call) -> Result<exec::call::Type, String> {
    let Some(kind) = c.r#type.and_then(|t| exec::call::Type::try_from(t).ok()) else {
        return Err("Expecting 'type' to be present".into());
    };
    if c.executor_id.value.is_empty() {
        return Err("Expecting 'executor_id' to be present".into());
    }
    if c.framework_id.value.is_empty() {
        return Err("Expecting 'framework_id' to be present".into());
    }
    match kind {
        exec::call::Type::Subscribe if c.subscribe.is_none() => {
            Err("Expecting 'subscribe' to be present".into())
        }
        exec::call::Type::Message if c.message.is_none() => {
            Err("Expecting 'message' to be present".into())
        }
        exec::call::Type::Update => {
            let Some(update) = &c.update else {
                return Err("Expecting 'update' to be present".into());
            };
            let status = &update.status;
            let Some(uuid) = &status.uuid else {
                return Err("Expecting 'uuid' to be present".into());
            };
            if uuid.len() != 16 {
                return Err(format!(
                    "Not a valid UUID: expecting 16 bytes, got {}",
                    uuid.len()
                ));
            }
            if let Some(id) = &status.executor_id {
                if id.value != c.executor_id.value {
                    return Err(format!(
                        "ExecutorID in Call: {} does not match ExecutorID in TaskStatus: {}",
                        c.executor_id.value, id.value
                    ));
                }
            }
            if status.source != Some(Source::Executor as i32) {
                return Err(format!(
                    "Received Call from executor {} of framework {} with invalid source, expecting 'SOURCE_EXECUTOR'",
                    c.executor_id.value, c.framework_id.value
                ));
            }
            if status.state == TaskState::TaskStaging as i32 {
                return Err(format!(
                    "Received TASK_STAGING from executor {} of framework {} which is not allowed",
                    c.executor_id.value, c.framework_id.value
                ));
            }
            Ok(kind)
        }
        _ => Ok(kind),
    }
}

pub(crate) async fn handle(
    State(agent): State<AgentHandle>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return method_not_allowed(&method);
    }
    let c: exec::Call = match decode_body(&headers, &body, crate::required::Kind::ExecutorCall) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let kind = match validate(&c) {
        Ok(kind) => kind,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("Failed to validate Executor::Call: {e}"),
            )
        }
    };
    let shared = &agent.shared;
    let key = (c.framework_id.value.clone(), c.executor_id.value.clone());
    if kind == exec::call::Type::Subscribe {
        if let Err(r) = accepts_protobuf(&headers) {
            return r;
        }
        let (tx, response) = stream_response(None);
        let mut st = shared.lock();
        return match agent::executor_subscribe(&mut st, agent.index, &key, tx) {
            Ok(()) => response,
            Err((code, message)) => text(
                StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
                message,
            ),
        };
    }
    let mut st = shared.lock();
    if let Err((code, message)) = agent::check_subscribed(&st, agent.index, &key) {
        return text(
            StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
            message,
        );
    }
    match kind {
        exec::call::Type::Update => {
            if let Some(update) = c.update {
                agent::executor_update(shared, &mut st, agent.index, &key, update.status);
            }
        }
        exec::call::Type::Message => {
            if let Some(m) = c.message {
                agent::executor_message(&mut st, agent.index, &key, m.data);
            }
        }
        exec::call::Type::Heartbeat | exec::call::Type::Subscribe => {}
        exec::call::Type::Unknown => return text(StatusCode::NOT_IMPLEMENTED, ""),
    }
    text(StatusCode::ACCEPTED, "")
}
