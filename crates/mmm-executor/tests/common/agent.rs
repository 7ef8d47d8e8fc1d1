//! A minimal Mesos agent executor API: `POST /api/v1/executor` with a RecordIO
//! event stream, enough to drive the real `mmm-executor` binary.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use mesos_proto::recordio;
use mesos_proto::v1::executor::{call, event, Call, Event};
use mesos_proto::v1::{
    AgentId, AgentInfo, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo, TaskId, TaskInfo,
    TaskState, TaskStatus,
};
use mesos_proto::Message as _;
use mmm_test_support::ChildGuard;
use tokio::sync::mpsc;

#[derive(Default)]
struct AgentState {
    stream: Option<mpsc::UnboundedSender<Result<Bytes, std::io::Error>>>,
    subscribes: Vec<call::Subscribe>,
    updates: Vec<TaskStatus>,
    messages: Vec<Bytes>,
    auto_ack: bool,
    refuse_subscribe: bool,
}

type Shared = Arc<Mutex<AgentState>>;

/// The fake agent; stops with its runtime when dropped.
pub struct FakeAgent {
    state: Shared,
    port: u16,
    runtime: Option<tokio::runtime::Runtime>,
}

fn encode_event(event: &Event) -> Bytes {
    recordio::encode(&event.encode_to_vec())
}

async fn handle(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/x-protobuf") {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "protobuf only").into_response();
    }
    let Ok(call) = Call::decode(body) else {
        return (StatusCode::BAD_REQUEST, "undecodable call").into_response();
    };
    let kind = call.r#type.and_then(|t| call::Type::try_from(t).ok());
    let mut st = state.lock().expect("agent state");
    match kind {
        Some(call::Type::Subscribe) => {
            let Some(subscribe) = call.subscribe else {
                return (
                    StatusCode::BAD_REQUEST,
                    "Failed to validate Executor::Call: Expecting 'subscribe' to be present",
                )
                    .into_response();
            };
            if st.refuse_subscribe {
                return (StatusCode::SERVICE_UNAVAILABLE, "agent recovering").into_response();
            }
            st.subscribes.push(subscribe);
            let (tx, rx) = mpsc::unbounded_channel();
            let subscribed = Event {
                r#type: Some(event::Type::Subscribed as i32),
                subscribed: Some(event::Subscribed {
                    executor_info: ExecutorInfo {
                        executor_id: call.executor_id.clone(),
                        ..ExecutorInfo::default()
                    },
                    framework_info: FrameworkInfo {
                        user: "test".into(),
                        name: "mmm".into(),
                        id: Some(call.framework_id.clone()),
                        ..FrameworkInfo::default()
                    },
                    agent_info: AgentInfo {
                        hostname: "localhost".into(),
                        id: Some(AgentId {
                            value: "agent-1".into(),
                        }),
                        ..AgentInfo::default()
                    },
                    container_id: None,
                }),
                ..Event::default()
            };
            let _ = tx.send(Ok(encode_event(&subscribed)));
            st.stream = Some(tx);
            let stream = tokio_stream_from(rx);
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/x-protobuf")
                .body(Body::from_stream(stream))
                .expect("response")
        }
        Some(call::Type::Update) => {
            let Some(update) = call.update else {
                return (StatusCode::BAD_REQUEST, "Expecting 'update' to be present")
                    .into_response();
            };
            let status = update.status;
            if st.auto_ack {
                if let (Some(uuid), Some(tx)) = (status.uuid.clone(), st.stream.as_ref()) {
                    let ack = Event {
                        r#type: Some(event::Type::Acknowledged as i32),
                        acknowledged: Some(event::Acknowledged {
                            task_id: status.task_id.clone(),
                            uuid,
                        }),
                        ..Event::default()
                    };
                    let _ = tx.send(Ok(encode_event(&ack)));
                }
            }
            st.updates.push(status);
            StatusCode::ACCEPTED.into_response()
        }
        Some(call::Type::Message) => {
            let Some(message) = call.message else {
                return (StatusCode::BAD_REQUEST, "Expecting 'message' to be present")
                    .into_response();
            };
            st.messages.push(message.data);
            StatusCode::ACCEPTED.into_response()
        }
        _ => (StatusCode::BAD_REQUEST, "unexpected call").into_response(),
    }
}

fn tokio_stream_from(
    mut rx: mpsc::UnboundedReceiver<Result<Bytes, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

impl FakeAgent {
    /// Starts the agent on a free loopback port; it acknowledges every update.
    pub fn start() -> FakeAgent {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("agent runtime");
        let state: Shared = Arc::new(Mutex::new(AgentState {
            auto_ack: true,
            ..AgentState::default()
        }));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let app = Router::new()
            .route("/api/v1/executor", post(handle))
            .with_state(state.clone());
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeAgent {
            state,
            port,
            runtime: Some(runtime),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn send(&self, event: Event) {
        let st = self.state.lock().expect("agent state");
        let tx = st.stream.as_ref().expect("the executor has subscribed");
        tx.send(Ok(encode_event(&event))).expect("stream open");
    }

    /// Whether to acknowledge updates from now on.
    pub fn set_auto_ack(&self, on: bool) {
        self.state.lock().expect("agent state").auto_ack = on;
    }

    /// Makes SUBSCRIBE answer 503 (an agent that is recovering).
    pub fn set_refuse_subscribe(&self, on: bool) {
        self.state.lock().expect("agent state").refuse_subscribe = on;
    }

    /// Ends the current event stream, as an agent restart does.
    pub fn close_stream(&self) {
        self.state.lock().expect("agent state").stream = None;
    }

    /// Waits for the executor to subscribe `n` times in all.
    pub fn wait_subscribed(&self, n: usize, timeout: Duration) {
        super::wait_until("executor subscription", timeout, || {
            let st = self.state.lock().expect("agent state");
            st.subscribes.len() >= n && st.stream.is_some()
        });
    }

    /// The SUBSCRIBE calls received.
    pub fn subscribes(&self) -> Vec<call::Subscribe> {
        self.state.lock().expect("agent state").subscribes.clone()
    }

    /// Sends LAUNCH of a task with `data`.
    pub fn launch(&self, task_id: &str, data: &[u8]) {
        self.send(Event {
            r#type: Some(event::Type::Launch as i32),
            launch: Some(event::Launch {
                task: TaskInfo {
                    name: task_id.into(),
                    task_id: TaskId {
                        value: task_id.into(),
                    },
                    agent_id: AgentId {
                        value: "agent-1".into(),
                    },
                    data: Some(Bytes::copy_from_slice(data)),
                    ..TaskInfo::default()
                },
            }),
            ..Event::default()
        });
    }

    /// Sends KILL of `task_id`.
    pub fn kill(&self, task_id: &str) {
        self.send(Event {
            r#type: Some(event::Type::Kill as i32),
            kill: Some(event::Kill {
                task_id: TaskId {
                    value: task_id.into(),
                },
                kill_policy: None,
            }),
            ..Event::default()
        });
    }

    /// Sends SHUTDOWN.
    pub fn shutdown(&self) {
        self.send(Event {
            r#type: Some(event::Type::Shutdown as i32),
            ..Event::default()
        });
    }

    /// Every update received so far.
    pub fn updates(&self) -> Vec<TaskStatus> {
        self.state.lock().expect("agent state").updates.clone()
    }

    /// Every MESSAGE payload received so far.
    pub fn messages(&self) -> Vec<Bytes> {
        self.state.lock().expect("agent state").messages.clone()
    }

    /// Waits for an update in `state` and returns it.
    pub fn wait_for_state(&self, state: TaskState, timeout: Duration) -> TaskStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.updates().into_iter().find(|s| s.state == state as i32) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "no {state:?} update within {timeout:?}; updates: {:?}",
                self.updates()
                    .iter()
                    .map(|s| (s.state, s.message.clone()))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Ids the tests give their executors.
pub const FRAMEWORK_ID: &str = "framework-1";

/// The `mmm-executor` binary: cargo names it for integration tests; the
/// benchmark example finds it in the same profile directory.
pub fn executor_binary() -> std::path::PathBuf {
    if let Some(path) = option_env!("CARGO_BIN_EXE_mmm-executor") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("own path");
    let mut dir = exe.parent().expect("profile dir").to_path_buf();
    if dir.ends_with("examples") || dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join("mmm-executor");
    assert!(
        path.is_file(),
        "{} is missing: build it first (cargo build --release -p mmm-executor)",
        path.display()
    );
    path
}

/// Starts the real executor binary against `agent`, with its sandbox in `sandbox`.
pub fn spawn_executor(agent: &FakeAgent, sandbox: &Path, extra_env: &[(&str, &str)]) -> ChildGuard {
    let mut command = Command::new(executor_binary());
    command
        .env_clear()
        .env("MESOS_FRAMEWORK_ID", FRAMEWORK_ID)
        .env("MESOS_EXECUTOR_ID", "executor-1")
        .env("MESOS_AGENT_ENDPOINT", agent.endpoint())
        .env("MESOS_SANDBOX", sandbox)
        .env("MESOS_DIRECTORY", sandbox)
        .env("MESOS_SLAVE_ID", "agent-1")
        .env("MESOS_CHECKPOINT", "0")
        .env("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "10secs")
        .env("RUST_LOG", "info,mmm_executor=debug")
        .current_dir(sandbox);
    for (k, v) in extra_env {
        command.env(k, v);
    }
    ChildGuard::spawn_logged("mmm-executor", command, &sandbox.join("stderr"))
        .expect("executor starts")
}

/// Whether `status` carries what every executor update must.
pub fn assert_well_formed(status: &TaskStatus) {
    assert_eq!(
        status.uuid.as_ref().map(|u| u.len()),
        Some(16),
        "16-byte uuid"
    );
    assert_eq!(status.source, Some(2), "SOURCE_EXECUTOR");
    assert!(status.timestamp.is_some_and(|t| t > 1.0e9), "timestamp");
    assert_eq!(
        status.executor_id,
        Some(ExecutorId {
            value: "executor-1".into()
        })
    );
    let _ = FrameworkId::default();
}
