//! What a standby scheduler answers while another one leads: it waits for
//! the ZooKeeper state lock, and meanwhile its REST API names the leader.
//! Status and health answer 200 with the leader's address (a standby is
//! healthy as a standby: Marathon must not kill it); everything else 503,
//! naming the leader, so that a client goes there.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::watch;

/// The leading scheduler's API URL as its lock names it; `None` before
/// the lock was read.
pub type LeaderCell = watch::Receiver<Option<String>>;

fn leader_text(leader: &LeaderCell) -> String {
    leader
        .borrow()
        .clone()
        .unwrap_or_else(|| "not known yet".to_string())
}

fn reply(status: StatusCode, success: bool, message: String, leader: &LeaderCell) -> Response {
    let value = serde_json::json!({"standby": true, "leader": *leader.borrow()});
    (
        status,
        Json(serde_json::json!({"success": success, "message": message, "value": value})),
    )
        .into_response()
}

async fn status(State(leader): State<LeaderCell>) -> Response {
    let message = format!(
        "standby: the leading scheduler is at {}",
        leader_text(&leader)
    );
    reply(StatusCode::OK, true, message, &leader)
}

async fn refuse(State(leader): State<LeaderCell>) -> Response {
    let message = format!(
        "this scheduler is a standby; the leading scheduler is at {}",
        leader_text(&leader)
    );
    reply(StatusCode::SERVICE_UNAVAILABLE, false, message, &leader)
}

/// The standby's routes: `/ping`, `GET /api/status`, `GET /health`, and
/// 503 for the rest.
pub fn router(leader: LeaderCell) -> Router {
    Router::new()
        .route("/ping", get(|| async { "pong" }))
        .route("/api/status", get(status))
        .route("/health", get(status))
        .fallback(refuse)
        .with_state(leader)
}
