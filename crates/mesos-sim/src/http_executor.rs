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

/// The executor API of agent `index`.
pub(crate) fn router(shared: SharedRef, index: usize) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/executor", axum::routing::any(handle))
        .with_state(AgentHandle { shared, index })
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
    // The route is authenticated before anything else, as libprocess does.
    let claims = if agent.shared.config.authenticate_http_executors {
        let header = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match agent.shared.executor_tokens.authenticate(header) {
            Ok(claims) => Some(claims),
            Err(refusal) => {
                let mut response = text(StatusCode::UNAUTHORIZED, refusal.body);
                if let Ok(value) = refusal.challenge.parse() {
                    response
                        .headers_mut()
                        .insert(axum::http::header::WWW_AUTHENTICATE, value);
                }
                return response;
            }
        }
    } else {
        None
    };
    if agent.shared.lock().agents[agent.index].down {
        // A connection opened before the restart: the agent process behind
        // it is gone.
        let mut response = text(StatusCode::SERVICE_UNAVAILABLE, "Agent is restarting");
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
        return response;
    }
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
    let refused = |(code, message): agent::CallRefusal| {
        text(
            StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
            message,
        )
    };
    if kind == exec::call::Type::Subscribe {
        if let Err(r) = accepts_protobuf(&headers) {
            return r;
        }
        let (tx, response) = stream_response(None);
        let mut st = shared.lock();
        if let Some(claims) = &claims {
            if let Err(r) = agent::check_claims(&st, agent.index, &key, claims) {
                return refused(r);
            }
        }
        let unacknowledged = c
            .subscribe
            .map(|s| s.unacknowledged_updates)
            .unwrap_or_default();
        return match agent::executor_subscribe(&mut st, agent.index, &key, tx) {
            Ok(()) => {
                // As the agent does: each update the executor still holds is
                // handled like a new UPDATE (duplicates are recognised).
                for update in unacknowledged {
                    agent::executor_update(shared, &mut st, agent.index, &key, update.status);
                }
                response
            }
            Err((code, message)) => text(
                StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
                message,
            ),
        };
    }
    let mut st = shared.lock();
    if st.agents[agent.index].recovering_until.is_some() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Agent has not finished recovery",
        );
    }
    if let Some(claims) = &claims {
        if let Err(r) = agent::check_claims(&st, agent.index, &key, claims) {
            return refused(r);
        }
    }
    if kind == exec::call::Type::Update && st.agents[agent.index].fail_executor_updates > 0 {
        st.agents[agent.index].fail_executor_updates -= 1;
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "mesos-sim: this UPDATE is refused on purpose (fail-executor-updates fault)",
        );
    }
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
