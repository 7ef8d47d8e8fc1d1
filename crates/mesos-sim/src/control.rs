//! The control API on the master port, for the binary and for tests in
//! other languages: faults on demand and inspection.
//!
//! - `GET  /sim/state`                      everything, as JSON
//! - `POST /sim/agents/{id}/kill`           kill an agent
//! - `POST /sim/master/restart`             master failover
//! - `POST /sim/offers/rescind`             rescind all offers, or `{"offer_id": ".."}`
//! - `POST /sim/fetch/fail`                 the next fetch fails
//! - `POST /sim/updates/duplicate`          `{"count": n}` (default 1)
//! - `POST /sim/updates/reorder`            `{"count": n}` (default 1)
//! - `POST /sim/heartbeats/delay`           `{"seconds": s}`
//! - `POST /sim/agents/{id}/restart`        `{"downtime_secs": s}` (default 1)
//! - `POST /sim/agents/{id}/fail-executor-updates` `{"count": n}` (default 1)

// A refusal is an HTTP response built once per refused request; boxing it
// would only add an allocation.
#![allow(clippy::result_large_err)]

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::agent;
use crate::inspect;
use crate::sim::{rescind, restart_master};
use crate::state::SharedRef;

pub(crate) fn router() -> Router<SharedRef> {
    Router::new()
        .route("/sim/state", get(state))
        .route("/sim/agents/{id}/kill", post(kill_agent))
        .route(
            "/sim/agents/{id}/drop-executor-streams",
            post(drop_executor_streams),
        )
        .route("/sim/agents/{id}/restart", post(restart_agent))
        .route(
            "/sim/agents/{id}/fail-executor-updates",
            post(fail_executor_updates),
        )
        .route("/sim/master/restart", post(restart))
        .route("/sim/offers/rescind", post(rescind_offers))
        .route("/sim/fetch/fail", post(fail_fetch))
        .route("/sim/updates/duplicate", post(duplicate))
        .route("/sim/updates/reorder", post(reorder))
        .route("/sim/heartbeats/delay", post(delay_heartbeats))
}

fn json_error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// Parses an optional JSON body; an empty body is the default.
fn body<T: for<'de> Deserialize<'de> + Default>(bytes: &Bytes) -> Result<T, Response> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| json_error(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
}

async fn state(State(shared): State<SharedRef>) -> Response {
    Json(inspect::snapshot(&shared.lock())).into_response()
}

async fn kill_agent(State(shared): State<SharedRef>, Path(id): Path<String>) -> Response {
    let mut st = shared.lock();
    match st.agent_index(&id) {
        Some(idx) => {
            agent::kill_agent(&mut st, idx);
            Json(serde_json::json!({ "killed": id })).into_response()
        }
        None => json_error(StatusCode::NOT_FOUND, format!("no agent with id '{id}'")),
    }
}

async fn drop_executor_streams(
    State(shared): State<SharedRef>,
    Path(id): Path<String>,
) -> Response {
    let mut st = shared.lock();
    match st.agent_index(&id) {
        Some(idx) => {
            let dropped = agent::drop_executor_streams(&mut st, idx);
            Json(serde_json::json!({ "agent": id, "dropped": dropped })).into_response()
        }
        None => json_error(StatusCode::NOT_FOUND, format!("no agent with id '{id}'")),
    }
}

#[derive(Deserialize)]
struct RestartBody {
    downtime_secs: f64,
}

impl Default for RestartBody {
    fn default() -> Self {
        Self { downtime_secs: 1.0 }
    }
}

async fn restart_agent(
    State(shared): State<SharedRef>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    let req: RestartBody = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if !req.downtime_secs.is_finite() || !(0.0..=3600.0).contains(&req.downtime_secs) {
        return json_error(
            StatusCode::BAD_REQUEST,
            format!(
                "'downtime_secs' must be between 0 and 3600, got {}",
                req.downtime_secs
            ),
        );
    }
    let Some(idx) = shared.lock().agent_index(&id) else {
        return json_error(StatusCode::NOT_FOUND, format!("no agent with id '{id}'"));
    };
    agent::restart(&shared, idx, Duration::from_secs_f64(req.downtime_secs));
    Json(serde_json::json!({ "restarting": id })).into_response()
}

async fn fail_executor_updates(
    State(shared): State<SharedRef>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    let count = match body::<CountBody>(&bytes) {
        Ok(b) => b.count,
        Err(r) => return r,
    };
    let mut st = shared.lock();
    match st.agent_index(&id) {
        Some(idx) => {
            st.agents[idx].fail_executor_updates += count;
            StatusCode::NO_CONTENT.into_response()
        }
        None => json_error(StatusCode::NOT_FOUND, format!("no agent with id '{id}'")),
    }
}

async fn restart(State(shared): State<SharedRef>) -> Response {
    let mut st = shared.lock();
    restart_master(&mut st);
    Json(serde_json::json!({ "master_id": st.master_id })).into_response()
}

#[derive(Deserialize, Default)]
struct RescindBody {
    offer_id: Option<String>,
}

async fn rescind_offers(State(shared): State<SharedRef>, bytes: Bytes) -> Response {
    let req: RescindBody = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut st = shared.lock();
    let ids: Vec<String> = match req.offer_id {
        Some(id) if st.offers.contains_key(&id) => vec![id],
        Some(id) => {
            return json_error(
                StatusCode::NOT_FOUND,
                format!("no outstanding offer with id '{id}'"),
            )
        }
        None => st.offers.keys().cloned().collect(),
    };
    for id in &ids {
        rescind(&mut st, id);
    }
    Json(serde_json::json!({ "rescinded": ids })).into_response()
}

async fn fail_fetch(State(shared): State<SharedRef>) -> Response {
    shared.lock().faults.fail_next_fetch += 1;
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct CountBody {
    count: u32,
}

impl Default for CountBody {
    fn default() -> Self {
        Self { count: 1 }
    }
}

async fn duplicate(State(shared): State<SharedRef>, bytes: Bytes) -> Response {
    match body::<CountBody>(&bytes) {
        Ok(b) => {
            shared.lock().faults.duplicate_updates += b.count;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => r,
    }
}

async fn reorder(State(shared): State<SharedRef>, bytes: Bytes) -> Response {
    match body::<CountBody>(&bytes) {
        Ok(b) => {
            shared.lock().faults.reorder_updates += b.count;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => r,
    }
}

#[derive(Deserialize, Default)]
struct DelayBody {
    seconds: f64,
}

async fn delay_heartbeats(State(shared): State<SharedRef>, bytes: Bytes) -> Response {
    let req: DelayBody = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if !req.seconds.is_finite() || req.seconds < 0.0 || req.seconds > 86_400.0 {
        return json_error(
            StatusCode::BAD_REQUEST,
            format!("'seconds' must be between 0 and 86400, got {}", req.seconds),
        );
    }
    shared.lock().faults.heartbeats_paused_until =
        Some(Instant::now() + Duration::from_secs_f64(req.seconds));
    StatusCode::NO_CONTENT.into_response()
}
