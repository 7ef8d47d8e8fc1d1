//! Property tests of the scheduler's HTTP surface on arbitrary input: the
//! real router and driver in-process on loopback, with a file state store.
//!
//! - Every REST body parser gets arbitrary bytes and arbitrary JSON (biased
//!   towards the real field names): the answer is always a JSON document;
//!   a refusal is a 4xx with `success: false` and a message, and leaves the
//!   servers and the stored state exactly as they were.
//! - The dist file server gets arbitrary paths (dot segments, encoded
//!   slashes, absolute paths, a symlink that leads out): it never serves a
//!   byte of a file outside dist/.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mmm_core::model::Cluster;
use mmm_core::scheduler::{AddServers, Command, Scheduler, Settings};
use mmm_scheduler::access::Access;
use mmm_scheduler::api::{self, ApiState};
use mmm_scheduler::dist::Dist;
use mmm_scheduler::driver::{CommandSender, Driver};
use mmm_scheduler::mesos::connection::SubscriptionState;
use mmm_scheduler::metrics::Metrics;
use mmm_scheduler::store::Store;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, watch};

const SECRET: &str = "TOP-SECRET-OUTSIDE-DIST";
const INSIDE: [(&str, &str); 3] = [
    ("mmm-executor", "EXECUTOR-BYTES"),
    ("notes.txt", "NOTES-BYTES"),
    ("sub/inner.txt", "INNER-BYTES"),
];

/// The scheduler's API with its driver, three servers added, and a dist/
/// next to a secret file (and a symlink to it inside dist/).
struct Served {
    base: String,
    addr: String,
    dir: tempfile::TempDir,
    dist: Dist,
    client: reqwest::Client,
    // Kept so that the driver's calls for Mesos have somewhere to go.
    _outgoing: mpsc::UnboundedReceiver<mmm_core::scheduler::Action>,
    _subscription: watch::Sender<SubscriptionState>,
}

impl Served {
    fn state_file(&self) -> PathBuf {
        self.dir.path().join("state").join("mmm-state.json")
    }
}

fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).expect("create dir");
    }
    fs::write(path, text).expect("write file");
}

fn settings() -> Settings {
    let props = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    Settings {
        consumer: props(&[("bootstrap.servers", "127.0.0.1:9"), ("group.id", "g")]),
        producer: props(&[("bootstrap.servers", "127.0.0.1:9")]),
        ..Settings::default()
    }
}

async fn serve() -> Served {
    let dir = tempfile::tempdir().expect("temp dir");
    let dist_dir = dir.path().join("dist");
    for (name, content) in INSIDE {
        write(&dist_dir.join(name), content);
    }
    write(&dir.path().join("secret.txt"), SECRET);
    std::os::unix::fs::symlink("../secret.txt", dist_dir.join("link")).expect("symlink");
    let dist = Dist::open(&dist_dir).expect("dist");

    let store = Store::open(
        &dir.path()
            .join("state")
            .join("mmm-state.json")
            .to_string_lossy(),
    )
    .await
    .expect("state store");
    let (view_tx, view_rx) = watch::channel(Arc::new(Cluster::new()));
    let (sub_tx, sub_rx) = watch::channel(SubscriptionState::Connecting);
    let (outgoing_tx, outgoing_rx) = mpsc::unbounded_channel();
    let metrics = Arc::new(Metrics::default());
    let driver = Driver::new(
        Scheduler::new(settings(), Cluster::new(), 7),
        store,
        outgoing_tx,
        view_tx,
        Arc::clone(&metrics),
    );
    let (input_tx, input_rx) = mpsc::channel(16);
    tokio::spawn(driver.run(input_rx));
    let commands = CommandSender(input_tx);
    commands
        .run(Command::Add(AddServers {
            count: 3,
            cpus: None,
            mem: None,
            topics: Some(vec!["t".into()]),
            topics_regex: None,
            consumer: BTreeMap::new(),
            producer: BTreeMap::new(),
            id: None,
        }))
        .await
        .expect("three servers added");

    let app = api::router(ApiState {
        commands,
        view: view_rx,
        subscription: sub_rx,
        metrics,
        dist: Arc::new(dist.clone()),
        access: Arc::new(Access::open()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Served {
        base: format!("http://{addr}"),
        addr,
        dir,
        dist,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client"),
        _outgoing: outgoing_rx,
        _subscription: sub_tx,
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

const FIELDS: [&str; 10] = [
    "amount",
    "cpus",
    "mem",
    "topics",
    "topics_regex",
    "consumer",
    "producer",
    "id",
    "ids",
    "colour",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-3i64..5).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(serde_json::json!(1e300)),
        ".{0,12}".prop_map(Value::String),
        "[0-9, -]{0,8}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object whose keys are mostly the fields the parsers know.
fn request_object() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (
            prop_oneof![4 => prop::sample::select(FIELDS.to_vec()).prop_map(str::to_string), 1 => ".{0,8}"],
            prop_oneof![
                2 => json_value(),
                // Values some field accepts, so that valid requests occur too.
                1 => (1i64..4).prop_map(Value::from),
                1 => prop::collection::vec(1u64..6, 1..3).prop_map(|ids| serde_json::json!(ids)),
                1 => Just(serde_json::json!(["t"])),
            ],
        ),
        0..4,
    )
    .prop_map(|fields| Value::Object(fields.into_iter().collect()))
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Bodies some endpoint carries out, so that both sides are reached.
        prop::sample::select(vec![
            r#"{"ids": [1]}"#,
            r#"{"ids": "2"}"#,
            r#"{"amount": 1, "topics": ["t"]}"#,
            r#"{"amount": 2, "topics": "t", "producer": {"linger.ms": 5}}"#,
        ])
        .prop_map(|b| b.as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..200),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        request_object().prop_map(|v| v.to_string().into_bytes()),
        // Valid JSON cut short or with trailing bytes.
        (request_object(), any::<prop::sample::Index>(), ".{0,4}").prop_map(|(v, cut, tail)| {
            let text = v.to_string();
            let at = cut.index(text.len() + 1);
            let mut bytes = text.into_bytes();
            bytes.truncate(at);
            bytes.extend(tail.into_bytes());
            bytes
        }),
    ]
}

async fn servers(s: &Served) -> Value {
    let status: Value = s
        .client
        .get(format!("{}/api/status", s.base))
        .send()
        .await
        .expect("GET /api/status")
        .json()
        .await
        .expect("status JSON");
    status["value"]["servers"].clone()
}

/// Whether a body was carried out (true) or refused (false).
async fn post_checks(s: &Served, endpoint: &str, body: Vec<u8>) -> Result<bool, TestCaseError> {
    let servers_before = servers(s).await;
    let stored_before = fs::read(s.state_file()).expect("state file");
    let shown = String::from_utf8_lossy(&body).into_owned();
    let response = s
        .client
        .post(format!("{}{endpoint}", s.base))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| TestCaseError::fail(format!("{endpoint} {shown:?}: no answer: {e}")))?;
    let status = response.status();
    let text = response.text().await.expect("answer body");
    let json: Value = serde_json::from_str(&text).map_err(|e| {
        TestCaseError::fail(format!(
            "{endpoint} {shown:?}: answer is not JSON ({e}): {text}"
        ))
    })?;
    prop_assert!(json["value"]["servers"].is_array(), "{}", json);
    if status.is_success() {
        prop_assert_eq!(&json["success"], &Value::Bool(true), "{}", json);
        return Ok(true);
    }
    prop_assert!(
        status.is_client_error(),
        "{} {:?}: {} {}",
        endpoint,
        shown,
        status,
        json
    );
    prop_assert_eq!(&json["success"], &Value::Bool(false), "{}", json);
    prop_assert!(
        json["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        json
    );
    prop_assert_eq!(
        servers(s).await,
        servers_before,
        "{} {:?} was refused but changed the servers",
        endpoint,
        shown
    );
    prop_assert!(
        fs::read(s.state_file()).expect("state file") == stored_before,
        "{} {:?} was refused but changed the stored state",
        endpoint,
        shown
    );
    Ok(false)
}

#[test]
fn every_rest_body_is_answered_and_a_refusal_changes_nothing() {
    let rt = runtime();
    let served = rt.block_on(serve());
    let endpoints =
        prop::sample::select(vec!["/api/add", "/api/delete", "/api/start", "/api/stop"]);
    let (carried_out, refused) = (Cell::new(0), Cell::new(0));
    runner(1000)
        .run(&(endpoints, body()), |(endpoint, body)| {
            let counter = if rt.block_on(post_checks(&served, endpoint, body))? {
                &carried_out
            } else {
                &refused
            };
            counter.set(counter.get() + 1);
            Ok(())
        })
        .expect("property holds");
    // Both sides of the property were reached.
    assert!(
        refused.get() > 0 && carried_out.get() > 0,
        "{} carried out, {} refused",
        carried_out.get(),
        refused.get()
    );
}

fn path_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("..".to_string()),
        Just(".".to_string()),
        Just(String::new()),
        Just("%2e%2e".to_string()),
        Just("%2E.".to_string()),
        Just("..%2f..".to_string()),
        Just("..%5c".to_string()),
        Just("%00".to_string()),
        Just("secret.txt".to_string()),
        Just("link".to_string()),
        Just("dist".to_string()),
        Just("sub".to_string()),
        Just("inner.txt".to_string()),
        Just("mmm-executor".to_string()),
        Just("etc".to_string()),
        "[a-z.%/\\\\~]{1,8}",
        ".{1,6}",
    ]
}

fn dist_path() -> impl Strategy<Value = String> {
    (any::<bool>(), prop::collection::vec(path_segment(), 1..6)).prop_map(|(absolute, segments)| {
        let joined = segments.join("/");
        if absolute {
            format!("/{joined}")
        } else {
            joined
        }
    })
}

/// `path` as a request target: bytes HTTP does not allow raw are
/// percent-encoded; dots, slashes and `%` go as they are, so that dot
/// segments and the client's own encodings reach the server.
fn request_target(path: &str) -> String {
    let mut target = String::from("/dist/");
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/%".contains(&b) {
            target.push(char::from(b));
        } else {
            target.push_str(&format!("%{b:02X}"));
        }
    }
    target
}

/// A raw GET, so that no client normalises the path first.
async fn raw_get(addr: &str, target: &str) -> (String, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read answer");
    let head_end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer.len(), |i| i + 4);
    let status_line = String::from_utf8_lossy(&answer[..head_end])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    (status_line, answer[head_end..].to_vec())
}

#[test]
fn the_dist_server_never_serves_a_file_outside_dist() {
    let rt = runtime();
    let served = rt.block_on(serve());
    let root = fs::canonicalize(served.dir.path().join("dist")).expect("dist root");
    let (served_inside, refused) = (Cell::new(0), Cell::new(0));
    runner(1000)
        .run(&dist_path(), |path| {
            if let Ok(resolved) = served.dist.resolve(&path) {
                prop_assert!(
                    resolved.starts_with(&root) && resolved.is_file(),
                    "{:?} resolved to {}",
                    path,
                    resolved.display()
                );
            }
            let target = request_target(&path);
            let (status_line, body) = rt.block_on(raw_get(&served.addr, &target));
            prop_assert!(!status_line.contains(" 5"), "{}: {}", target, status_line);
            let body = String::from_utf8_lossy(&body);
            prop_assert!(!body.contains(SECRET), "{} served the secret", target);
            if status_line.contains(" 200 ") {
                prop_assert!(
                    INSIDE.iter().any(|(_, content)| body == *content),
                    "{} served {:?}",
                    target,
                    body
                );
                served_inside.set(served_inside.get() + 1);
            } else {
                refused.set(refused.get() + 1);
            }
            Ok(())
        })
        .expect("property holds");
    assert!(
        served_inside.get() > 0 && refused.get() > 0,
        "{} served, {} refused",
        served_inside.get(),
        refused.get()
    );
    // The files inside are served, the way out through the symlink is not.
    let (status, body) = rt.block_on(raw_get(&served.addr, "/dist/sub/inner.txt"));
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body, b"INNER-BYTES");
    let (status, _) = rt.block_on(raw_get(&served.addr, "/dist/link"));
    assert!(!status.contains(" 200 "), "{status}");
}
