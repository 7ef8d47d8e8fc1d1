//! The status page on the API port: `GET /` (the framework's webui_url),
//! its assets, and the data it refreshes itself with.
//!
//! The page only reads; its buttons call the REST API from the browser, so
//! they need the same bearer token as any other client.

mod chart;
mod dashboard;
mod format;
mod page;
mod reading;
mod samples;

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use mmm_core::model::Cluster;
use tokio::sync::watch;

pub use dashboard::{Dashboard, FrameworkView, Sources, TaskView};
pub use page::Fragments;
pub use samples::{RateHistory, Sample, MAX_SAMPLES, WINDOW_MS};

use crate::driver::now_ms;
use crate::mesos::connection::SubscriptionState;

const SCRIPT: &str = include_str!("../../assets/status.js");
const STYLE: &str = include_str!("../../assets/status.css");

/// What the page's handlers read.
#[derive(Debug, Clone)]
pub struct WebState {
    pub framework_name: String,
    pub view: watch::Receiver<Arc<Cluster>>,
    pub subscription: watch::Receiver<SubscriptionState>,
    pub samples: Arc<RateHistory>,
    pub started_ms: u64,
    /// Whether the REST API wants a bearer token for changes.
    pub protected: bool,
    /// Whether it listens beyond loopback without one (`[api] insecure`).
    pub insecure: bool,
}

impl WebState {
    /// The page's state, with a task that samples each new cluster view
    /// for the chart for as long as the views keep coming.
    pub fn start(
        framework_name: String,
        view: watch::Receiver<Arc<Cluster>>,
        subscription: watch::Receiver<SubscriptionState>,
        protected: bool,
        insecure: bool,
    ) -> WebState {
        let samples = Arc::new(RateHistory::default());
        tokio::spawn(samples::record(view.clone(), samples.clone()));
        WebState {
            framework_name,
            view,
            subscription,
            samples,
            started_ms: now_ms(),
            protected,
            insecure,
        }
    }

    /// The dashboard as of now.
    pub fn dashboard(&self) -> Dashboard {
        let now = now_ms();
        let cluster = self.view.borrow().clone();
        let subscription = self.subscription.borrow().clone();
        Dashboard::build(
            Sources {
                framework_name: &self.framework_name,
                cluster: &cluster,
                subscription: &subscription,
                samples: &self.samples.snapshot(now),
                started_ms: self.started_ms,
                protected: self.protected,
                insecure: self.insecure,
            },
            now,
        )
    }
}

/// The page's routes, to merge into the API's router.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/api/dashboard", get(dashboard_json))
        .route("/status/fragments", get(fragments))
        .route("/assets/status.js", get(script))
        .route("/assets/status.css", get(style))
        .with_state(state)
}

/// Each poll must show the current state, never a cached one.
const NO_STORE: (header::HeaderName, &str) = (header::CACHE_CONTROL, "no-store");

async fn index(State(state): State<WebState>) -> Response {
    ([NO_STORE], Html(page::render(&state.dashboard()))).into_response()
}

async fn dashboard_json(State(state): State<WebState>) -> Response {
    ([NO_STORE], Json(state.dashboard())).into_response()
}

async fn fragments(State(state): State<WebState>) -> Response {
    ([NO_STORE], Json(Fragments::of(&state.dashboard()))).into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}
