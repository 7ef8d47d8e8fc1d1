//! A stand-in for the scheduler's REST API on a free loopback port: it records
//! every request and answers each path with a reply the test chose.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;

/// One request as the fake API received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: Option<Value>,
}

#[derive(Default)]
struct Shared {
    requests: Vec<Request>,
    replies: HashMap<String, (u16, String)>,
}

pub struct FakeApi {
    // Dropping the runtime stops the server.
    _runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

impl FakeApi {
    pub fn start() -> FakeApi {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let router = Router::new()
            .fallback(record_and_reply)
            .with_state(shared.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        runtime.spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeApi {
            _runtime: runtime,
            addr,
            shared,
        }
    }

    /// `http://127.0.0.1:<port>/api`
    pub fn base(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// `http://127.0.0.1:<port>`
    pub fn root(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers `path` (e.g. "/api/status") with `status` and `body`.
    pub fn reply(&self, path: &str, status: u16, body: &str) {
        self.lock()
            .replies
            .insert(path.to_string(), (status, body.to_string()));
    }

    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// Waits until at least `count` requests arrived, failing after `limit`.
    pub fn wait_for_requests(&self, count: usize, limit: Duration) -> Vec<Request> {
        let deadline = Instant::now() + limit;
        loop {
            let requests = self.requests();
            if requests.len() >= count {
                return requests;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {count} requests arrived within {limit:?}",
                requests.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().expect("fake API state lock")
    }
}

async fn record_and_reply(
    State(shared): State<Arc<Mutex<Shared>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let request = Request {
        method: method.to_string(),
        path: uri.path().to_string(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        body: serde_json::from_slice(&body).ok(),
    };
    let mut shared = shared.lock().expect("fake API state lock");
    let reply = shared.replies.get(&request.path).cloned();
    shared.requests.push(request);
    match reply {
        Some((status, body)) => (
            StatusCode::from_u16(status).expect("a valid status"),
            [("content-type", "application/json")],
            body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such endpoint").into_response(),
    }
}
