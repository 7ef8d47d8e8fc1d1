//! A scripted scheduler for the simulator's tests: plain reqwest calls and a
//! RecordIO decoder, nothing from the product.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use mesos_proto::v1::framework_info::{capability::Type as Cap, Capability};
use mesos_proto::v1::scheduler::{self as sched, event::Type as Ev};
use mesos_proto::v1::{self, FrameworkId, FrameworkInfo, TaskInfo, TaskStatus};
use mesos_proto::{calls, recordio, Message, CONTENT_TYPE_PROTOBUF, STREAM_ID_HEADER};
use mesos_sim::{MesosSim, SimConfig};
use tokio::sync::mpsc;

pub const WAIT: Duration = Duration::from_secs(20);

pub async fn start(agents: usize) -> MesosSim {
    MesosSim::start(SimConfig::with_agents(agents).fast())
        .await
        .expect("simulator starts")
}

pub fn framework_info(caps: &[Cap]) -> FrameworkInfo {
    FrameworkInfo {
        user: "root".into(),
        name: "sim-test".into(),
        failover_timeout: Some(3600.0),
        checkpoint: Some(true),
        capabilities: caps
            .iter()
            .map(|c| Capability {
                r#type: Some(*c as i32),
            })
            .collect(),
        ..FrameworkInfo::default()
    }
}

/// An HTTP answer: status and body text.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

/// POSTs raw bytes with the given headers.
pub async fn post_raw(
    url: &str,
    content_type: Option<&str>,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Answer {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut req = client.post(url).body(body);
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("request reaches the simulator");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    Answer {
        status,
        body: r.text().await.expect("body"),
        headers,
    }
}

pub async fn get(url: &str) -> Answer {
    let r = reqwest::get(url)
        .await
        .expect("request reaches the simulator");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    Answer {
        status,
        body: r.text().await.expect("body"),
        headers,
    }
}

/// A subscribed scheduler and its event stream.
pub struct Scheduler {
    pub url: String,
    pub stream_id: String,
    pub framework_id: FrameworkId,
    pub subscribed: sched::event::Subscribed,
    events: mpsc::UnboundedReceiver<sched::Event>,
    /// Events read but not yet asked for.
    backlog: Vec<sched::Event>,
}

impl Scheduler {
    pub async fn subscribe(master_url: &str, info: FrameworkInfo) -> Self {
        Self::subscribe_at(&format!("{master_url}/api/v1/scheduler"), info).await
    }

    pub async fn subscribe_at(url: &str, info: FrameworkInfo) -> Self {
        let call = calls::subscribe(info);
        let response = reqwest::Client::new()
            .post(url)
            .header("Content-Type", CONTENT_TYPE_PROTOBUF)
            .header("Accept", CONTENT_TYPE_PROTOBUF)
            .body(call.encode_to_vec())
            .send()
            .await
            .expect("SUBSCRIBE reaches the master");
        assert_eq!(response.status().as_u16(), 200, "SUBSCRIBE answered 200");
        let stream_id = response
            .headers()
            .get(STREAM_ID_HEADER)
            .expect("Mesos-Stream-Id header")
            .to_str()
            .expect("ascii")
            .to_owned();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut body = response.bytes_stream();
        tokio::spawn(async move {
            let mut decoder = recordio::Decoder::default();
            while let Some(Ok(chunk)) = body.next().await {
                decoder.feed(&chunk);
                while let Ok(Some(record)) = decoder.next_record() {
                    let event = sched::Event::decode(record).expect("event decodes");
                    if tx.send(event).is_err() {
                        return;
                    }
                }
            }
        });
        let first = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("SUBSCRIBED in time")
            .expect("stream open");
        assert_eq!(
            first.r#type,
            Some(Ev::Subscribed as i32),
            "first event is SUBSCRIBED: {first:?}"
        );
        let subscribed = first.subscribed.expect("subscribed field");
        Self {
            url: url.to_owned(),
            stream_id,
            framework_id: subscribed.framework_id.clone(),
            subscribed,
            events: rx,
            backlog: Vec::new(),
        }
    }

    /// Sends a call with this stream's id.
    pub async fn call(&self, call: sched::Call) -> Answer {
        post_raw(
            &self.url,
            Some(CONTENT_TYPE_PROTOBUF),
            &[(STREAM_ID_HEADER, &self.stream_id)],
            call.encode_to_vec(),
        )
        .await
    }

    /// Sends a call that must be answered 202.
    pub async fn call_ok(&self, call: sched::Call) {
        let answer = self.call(call).await;
        assert_eq!(answer.status, 202, "call accepted: {}", answer.body);
    }

    /// The next event matching `pred` (earlier non-matching ones are kept).
    pub async fn expect(
        &mut self,
        what: &str,
        mut pred: impl FnMut(&sched::Event) -> bool,
    ) -> sched::Event {
        if let Some(pos) = self.backlog.iter().position(&mut pred) {
            return self.backlog.remove(pos);
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = tokio::time::timeout(left, self.events.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("timed out waiting for {what}; backlog: {:?}", self.backlog)
                })
                .unwrap_or_else(|| panic!("stream closed while waiting for {what}"));
            if pred(&event) {
                return event;
            }
            self.backlog.push(event);
        }
    }

    /// Whether an event matching `pred` arrives within `window`.
    pub async fn sees_within(
        &mut self,
        window: Duration,
        mut pred: impl FnMut(&sched::Event) -> bool,
    ) -> bool {
        if self.backlog.iter().any(&mut pred) {
            return true;
        }
        let deadline = Instant::now() + window;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(event)) => {
                    if pred(&event) {
                        return true;
                    }
                    self.backlog.push(event);
                }
                Ok(None) | Err(_) => return false,
            }
        }
    }

    /// Drops the events read so far.
    pub fn clear_backlog(&mut self) {
        self.backlog.clear();
    }

    /// Waits until the stream ends, returning the events seen before.
    pub async fn until_closed(&mut self) -> Vec<sched::Event> {
        let mut seen = std::mem::take(&mut self.backlog);
        loop {
            match tokio::time::timeout(WAIT, self.events.recv()).await {
                Ok(Some(e)) => seen.push(e),
                Ok(None) => return seen,
                Err(_) => panic!("stream did not close; saw {seen:?}"),
            }
        }
    }

    pub async fn offer(&mut self) -> v1::Offer {
        let e = self
            .expect("OFFERS", |e| e.r#type == Some(Ev::Offers as i32))
            .await;
        e.offers
            .expect("offers")
            .offers
            .into_iter()
            .next()
            .expect("one offer")
    }

    pub async fn offer_on(&mut self, agent_id: &str) -> v1::Offer {
        let agent = agent_id.to_owned();
        let e = self
            .expect("an offer on the agent", |e| {
                e.offers
                    .as_ref()
                    .is_some_and(|o| o.offers.iter().any(|x| x.agent_id.value == agent))
            })
            .await;
        e.offers
            .expect("offers")
            .offers
            .into_iter()
            .find(|o| o.agent_id.value == agent_id)
            .expect("offer on agent")
    }

    /// The next UPDATE for `task_id` in `state`.
    pub async fn update(&mut self, task_id: &str, state: v1::TaskState) -> TaskStatus {
        let id = task_id.to_owned();
        let e = self
            .expect(&format!("{task_id} {}", state.as_str_name()), |e| {
                e.update
                    .as_ref()
                    .is_some_and(|u| u.status.task_id.value == id && u.status.state == state as i32)
            })
            .await;
        e.update.expect("update").status
    }

    pub async fn ack(&self, status: &TaskStatus) {
        self.call_ok(calls::acknowledge(
            &self.framework_id,
            status.agent_id.clone().expect("agent id"),
            status.task_id.clone(),
            status.uuid.clone().expect("uuid"),
        ))
        .await;
    }
}

/// Serves files over HTTP on a free loopback port, for the fetcher.
pub struct FileServer {
    pub addr: SocketAddr,
    handle: tokio::task::JoinHandle<()>,
}

impl FileServer {
    pub async fn start(files: Vec<(&'static str, Vec<u8>)>) -> Self {
        let mut router = axum::Router::new();
        for (name, bytes) in files {
            let bytes = Bytes::from(bytes);
            router = router.route(
                &format!("/{name}"),
                axum::routing::get(move || async move { bytes.clone() }),
            );
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { addr, handle }
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

pub fn test_executor_bytes() -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_BIN_EXE_sim-test-executor")))
        .expect("test executor built")
}

/// A task for the test executor, fetched from `url`.
pub fn executor_task(
    offer: &v1::Offer,
    task_id: &str,
    executor_id: &str,
    url: &str,
    data: &str,
) -> TaskInfo {
    TaskInfo {
        name: task_id.into(),
        task_id: mesos_proto::ids::task_id(task_id),
        agent_id: offer.agent_id.clone(),
        resources: vec![
            mesos_proto::resources::scalar("cpus", 0.1),
            mesos_proto::resources::scalar("mem", 64.0),
        ],
        executor: Some(v1::ExecutorInfo {
            r#type: Some(v1::executor_info::Type::Custom as i32),
            executor_id: mesos_proto::ids::executor_id(executor_id),
            framework_id: Some(offer.framework_id.clone()),
            command: Some(v1::CommandInfo {
                uris: vec![v1::command_info::Uri {
                    value: url.into(),
                    executable: Some(true),
                    extract: Some(false),
                    ..Default::default()
                }],
                value: Some("./sim-test-executor".into()),
                ..Default::default()
            }),
            name: Some("sim test executor".into()),
            ..Default::default()
        }),
        data: Some(Bytes::from(data.to_owned())),
        ..TaskInfo::default()
    }
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

/// The test itself playing an executor against an agent's API.
pub struct ExecutorClient {
    pub url: String,
    pub framework_id: FrameworkId,
    pub executor_id: v1::ExecutorId,
    events: mpsc::UnboundedReceiver<v1::executor::Event>,
}

impl ExecutorClient {
    pub async fn subscribe(endpoint: &str, framework_id: &FrameworkId, executor_id: &str) -> Self {
        let url = format!("http://{endpoint}/api/v1/executor");
        let executor_id = mesos_proto::ids::executor_id(executor_id);
        let call = calls::executor_subscribe(framework_id, &executor_id, Vec::new(), Vec::new());
        let response = reqwest::Client::new()
            .post(&url)
            .header("Content-Type", CONTENT_TYPE_PROTOBUF)
            .header("Accept", CONTENT_TYPE_PROTOBUF)
            .body(call.encode_to_vec())
            .send()
            .await
            .expect("agent reachable");
        assert_eq!(
            response.status().as_u16(),
            200,
            "executor SUBSCRIBE answered 200"
        );
        let (tx, rx) = mpsc::unbounded_channel();
        let mut body = response.bytes_stream();
        tokio::spawn(async move {
            let mut decoder = recordio::Decoder::default();
            while let Some(Ok(chunk)) = body.next().await {
                decoder.feed(&chunk);
                while let Ok(Some(record)) = decoder.next_record() {
                    let event = v1::executor::Event::decode(record).expect("event decodes");
                    if tx.send(event).is_err() {
                        return;
                    }
                }
            }
        });
        Self {
            url,
            framework_id: framework_id.clone(),
            executor_id,
            events: rx,
        }
    }

    pub async fn next(&mut self) -> v1::executor::Event {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("executor event in time")
            .expect("executor stream open")
    }

    /// Sends UPDATE of `state` with `uuid`; returns the HTTP answer.
    pub async fn update(&self, task_id: &str, state: v1::TaskState, uuid: &Bytes) -> Answer {
        let status = TaskStatus {
            task_id: mesos_proto::ids::task_id(task_id),
            state: state as i32,
            source: Some(v1::task_status::Source::Executor as i32),
            uuid: Some(uuid.clone()),
            ..TaskStatus::default()
        };
        post_raw(
            &self.url,
            Some(CONTENT_TYPE_PROTOBUF),
            &[],
            calls::executor_update(&self.framework_id, &self.executor_id, status).encode_to_vec(),
        )
        .await
    }
}

/// A task whose executor never subscribes by itself (`sleep`), so the test
/// can play the executor.
pub fn silent_executor_task(offer: &v1::Offer, task_id: &str, executor_id: &str) -> TaskInfo {
    let mut task = executor_task(offer, task_id, executor_id, "http://unused", "");
    if let Some(e) = task.executor.as_mut() {
        e.command = Some(v1::CommandInfo {
            value: Some("exec /bin/sleep 60".into()),
            ..Default::default()
        });
    }
    task
}

pub fn new_uuid() -> Bytes {
    Bytes::copy_from_slice(uuid::Uuid::new_v4().as_bytes())
}
