//! Each attack on the REST API, sent the way an attacker would send it,
//! through the scheduler's real router (in-process, with its driver and a
//! file state store), is refused and leaves the servers and the stored state
//! exactly as they were.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use mmm_core::model::Cluster;
use mmm_core::scheduler::{AddServers, Command, Scheduler, Settings};
use mmm_scheduler::access::{self, Access, TokenFile};
use mmm_scheduler::api::{self, ApiState};
use mmm_scheduler::dist::Dist;
use mmm_scheduler::driver::{CommandSender, Driver};
use mmm_scheduler::mesos::connection::SubscriptionState;
use mmm_scheduler::metrics::Metrics;
use mmm_scheduler::store::Store;
use mmm_scheduler::web::{self, WebState};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

const TOKEN: &str = "the-operators-token";
const HOST: &str = "127.0.0.1:7000";

struct Target {
    app: Router,
    dir: tempfile::TempDir,
    _outgoing: mpsc::UnboundedReceiver<mmm_core::scheduler::Action>,
    _subscription: watch::Sender<SubscriptionState>,
}

impl Target {
    fn state_file(&self) -> PathBuf {
        self.dir.path().join("state").join("mmm-state.json")
    }

    fn token_file(&self) -> PathBuf {
        self.dir.path().join("api-token")
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Value, axum::http::HeaderMap) {
        let response = self.app.clone().oneshot(request).await.expect("answered");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, json, headers)
    }

    async fn servers(&self) -> Value {
        let (_, json, _) = self.send(get("/api/status")).await;
        json["value"]["servers"].clone()
    }

    /// Sends `request`, expects `status` with a message naming `needle`,
    /// and checks that nothing changed.
    async fn refused(&self, request: Request<Body>, status: StatusCode, needle: &str) -> Value {
        let servers = self.servers().await;
        let stored = fs::read(self.state_file()).expect("state file");
        let what = format!("{} {}", request.method(), request.uri());
        let (got, json, _) = self.send(request).await;
        assert_eq!(got, status, "{what}: {json}");
        assert_eq!(json["success"], false, "{json}");
        let message = json["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(needle),
            "{what}: {message:?} lacks {needle:?}"
        );
        assert_eq!(
            json["value"]["servers"],
            serde_json::json!([]),
            "a refusal does not echo the cluster"
        );
        assert_eq!(self.servers().await, servers, "{what} changed the servers");
        assert!(
            fs::read(self.state_file()).expect("state file") == stored,
            "{what} changed the stored state"
        );
        json
    }
}

fn settings() -> Settings {
    let props = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    Settings {
        consumer: props(&[
            ("bootstrap.servers", "127.0.0.1:9"),
            ("group.id", "g"),
            ("sasl.password", "operators-secret"),
        ]),
        producer: props(&[("bootstrap.servers", "127.0.0.1:9")]),
        ..Settings::default()
    }
}

async fn target() -> Target {
    let dir = tempfile::tempdir().expect("temp dir");
    let token_file = dir.path().join("api-token");
    fs::write(&token_file, format!("{TOKEN}\n")).expect("token");
    fs::set_permissions(&token_file, fs::Permissions::from_mode(0o600)).expect("chmod");
    let state = dir.path().join("state").join("mmm-state.json");
    let store = Store::open(&state.to_string_lossy())
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
            count: 2,
            cpus: None,
            mem: None,
            topics: Some(vec!["t".into()]),
            topics_regex: None,
            consumer: BTreeMap::new(),
            producer: BTreeMap::new(),
            id: None,
        }))
        .await
        .expect("two servers added");
    let bound = HOST.parse().expect("addr");
    let access = Access::new(
        Some(TokenFile::open(&token_file).expect("token file")),
        access::allowed_hosts(&format!("http://{HOST}"), bound, &[]),
    );
    let web = WebState::start(
        "mmm-attack-test".into(),
        view_rx.clone(),
        sub_rx.clone(),
        true,
        false,
    );
    let app = api::app(
        ApiState {
            commands,
            view: view_rx,
            subscription: sub_rx,
            metrics,
            dist: Arc::new(Dist::open(&dir.path().join("dist")).expect("dist")),
            access: Arc::new(access),
        },
        web::router(web),
    );
    Target {
        app,
        dir,
        _outgoing: outgoing_rx,
        _subscription: sub_tx,
    }
}

fn get(path: &str) -> Request<Body> {
    Request::get(path)
        .header("Host", HOST)
        .body(Body::empty())
        .expect("request")
}

/// A POST as the CLI sends it: JSON, the token, our host.
fn post(path: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header("Host", HOST)
        .header("Content-Type", "application/json")
        .header("Authorization", format!("Bearer {TOKEN}"))
        .body(Body::from(body.to_string()))
        .expect("request")
}

#[tokio::test]
async fn kafka_overrides_beyond_tuning_are_refused_by_name() {
    let t = target().await;
    for (client, key, value) in [
        // The source's credentials sent to another broker.
        ("consumer", "bootstrap.servers", "evil:9093"),
        // The data copied elsewhere.
        ("producer", "bootstrap.servers", "evil:9093"),
        ("producer", "metadata.broker.list", "evil:9093"),
        // Native code loaded on the agent.
        ("consumer", "plugin.library.paths", "/tmp/evil.so"),
        ("producer", "ssl.engine.location", "/tmp/evil.so"),
        ("consumer", "ssl.providers", "evil"),
        ("consumer", "sasl.kerberos.kinit.cmd", "touch /tmp/pwned"),
        // Security downgraded, credentials replaced or read.
        ("consumer", "security.protocol", "plaintext"),
        ("producer", "sasl.jaas.config", "x"),
        ("consumer", "ssl.ca.location", "/tmp/evil-ca.pem"),
        // Someone else's group, or debug output of the protocol.
        ("consumer", "group.id", "victims-group"),
        ("producer", "debug", "all"),
    ] {
        let body =
            format!(r#"{{"amount": 1, "topics": ["t"], "{client}": {{"{key}": "{value}"}}}}"#);
        t.refused(
            post("/api/add", &body),
            StatusCode::BAD_REQUEST,
            &format!("{client} property {key:?}"),
        )
        .await;
    }
    // Tuning is allowed, in Java or librdkafka names.
    let (status, json, _) = t
        .send(post(
            "/api/add",
            r#"{"amount": 1, "topics": ["t"], "producer": {"linger.ms": 20, "compression.type": "zstd"},
                "consumer": {"fetch.max.wait.ms": 100}}"#,
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["value"]["servers"][2]["producer"]["linger.ms"], "20");
    // Nothing secret ever shows.
    assert!(!json.to_string().contains("operators-secret"));
}

#[tokio::test]
async fn callers_without_the_token_json_or_our_name_are_refused() {
    let t = target().await;
    let body = r#"{"amount": 1}"#;
    let without_token = Request::post("/api/add")
        .header("Host", HOST)
        .header("Content-Type", "application/json")
        .body(Body::from(body))
        .expect("request");
    t.refused(without_token, StatusCode::UNAUTHORIZED, "Authorization")
        .await;
    let wrong_token = Request::post("/api/delete")
        .header("Host", HOST)
        .header("Content-Type", "application/json")
        .header("Authorization", "Bearer guess")
        .body(Body::from(r#"{"ids": [1, 2]}"#))
        .expect("request");
    t.refused(wrong_token, StatusCode::UNAUTHORIZED, "invalid API token")
        .await;

    // A form a page of any site can post without asking the browser first.
    let mut form = post("/api/delete", r#"{"ids": [1]}"#);
    form.headers_mut().insert(
        "Content-Type",
        "text/plain;charset=UTF-8".parse().expect("value"),
    );
    t.refused(form, StatusCode::UNSUPPORTED_MEDIA_TYPE, "application/json")
        .await;

    // DNS rebinding: the attacker's name, pointed at the scheduler, in both
    // Host and Origin (they agree with each other, and prove nothing).
    for path in ["/api/status", "/", "/metrics"] {
        let rebound = Request::get(path)
            .header("Host", "attacker.example:7000")
            .header("Origin", "http://attacker.example:7000")
            .body(Body::empty())
            .expect("request");
        let (status, json, _) = t.send(rebound).await;
        assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{path}: {json}");
        assert!(json["message"]
            .as_str()
            .unwrap_or_default()
            .contains("attacker.example"));
    }
    let mut rebound = post("/api/stop", r#"{"ids": [1]}"#);
    rebound
        .headers_mut()
        .insert("Host", "attacker.example:7000".parse().expect("value"));
    t.refused(rebound, StatusCode::MISDIRECTED_REQUEST, "allowed_hosts")
        .await;

    // A page of another origin, even with our Host.
    let mut cross = post("/api/stop", r#"{"ids": [1]}"#);
    cross
        .headers_mut()
        .insert("Origin", "http://attacker.example".parse().expect("value"));
    t.refused(cross, StatusCode::FORBIDDEN, "cross-origin")
        .await;
    let mut null_origin = post("/api/stop", r#"{"ids": [1]}"#);
    null_origin
        .headers_mut()
        .insert("Origin", "null".parse().expect("value"));
    t.refused(null_origin, StatusCode::FORBIDDEN, "cross-origin")
        .await;

    // Our own page is allowed.
    let mut own = post("/api/stop", r#"{"ids": [1]}"#);
    own.headers_mut()
        .insert("Origin", format!("http://{HOST}").parse().expect("value"));
    let (status, json, _) = t.send(own).await;
    assert_eq!(status, StatusCode::OK, "{json}");
}

#[tokio::test]
async fn a_rotated_token_takes_effect_without_a_restart() {
    let t = target().await;
    fs::write(t.token_file(), "the-new-token-after-rotation\n").expect("rotate");
    t.refused(
        post("/api/add", r#"{"amount": 1}"#),
        StatusCode::UNAUTHORIZED,
        "invalid API token",
    )
    .await;
    let mut request = post("/api/add", r#"{"amount": 1, "topics": ["t"]}"#);
    request.headers_mut().insert(
        "Authorization",
        "Bearer the-new-token-after-rotation"
            .parse()
            .expect("value"),
    );
    let (status, json, _) = t.send(request).await;
    assert_eq!(status, StatusCode::OK, "{json}");
}

#[tokio::test]
async fn oversized_and_overlong_input_is_refused_and_ids_near_the_limit_do_not_block_adds() {
    let t = target().await;
    let long = "x".repeat(mmm_core::rest::MAX_STRING_LEN + 1);
    t.refused(
        post(
            "/api/add",
            &format!(r#"{{"amount": 1, "topics_regex": "{long}"}}"#),
        ),
        StatusCode::BAD_REQUEST,
        "limit",
    )
    .await;
    t.refused(
        post(
            "/api/add",
            &format!(r#"{{"amount": 1, "producer": {{"linger.ms": "{long}"}}}}"#),
        ),
        StatusCode::BAD_REQUEST,
        "producer.linger.ms",
    )
    .await;
    let many: Vec<String> = (0..=mmm_core::rest::MAX_OVERRIDES)
        .map(|i| format!(r#""linger.ms{i}": 1"#))
        .collect();
    t.refused(
        post(
            "/api/add",
            &format!(r#"{{"amount": 1, "producer": {{{}}}}}"#, many.join(",")),
        ),
        StatusCode::BAD_REQUEST,
        "overrides",
    )
    .await;
    t.refused(
        post("/api/add", r#"{"amount": 100000, "topics": ["t"]}"#),
        StatusCode::BAD_REQUEST,
        "maximum",
    )
    .await;
    let huge = format!(r#"{{"amount": 1, "x": "{}"}}"#, "y".repeat(200 * 1024));
    t.refused(
        post("/api/add", &huge),
        StatusCode::PAYLOAD_TOO_LARGE,
        "larger than",
    )
    .await;

    let (status, json, _) = t
        .send(post(
            "/api/add",
            &format!(r#"{{"amount": 1, "id": {}, "topics": ["t"]}}"#, u32::MAX),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let (status, json, _) = t
        .send(post("/api/add", r#"{"amount": 2, "topics": ["t"]}"#))
        .await;
    assert_eq!(status, StatusCode::OK, "later adds still work: {json}");
    let ids: Vec<u64> = json["value"]["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .filter_map(|s| s["id"].as_u64())
        .collect();
    assert_eq!(ids, vec![1, 2, 3, 4, u64::from(u32::MAX)]);
}

#[tokio::test]
async fn pages_carry_headers_that_keep_browsers_safe() {
    let t = target().await;
    for path in ["/", "/api/status", "/assets/status.js", "/api/nope"] {
        let (_, _, headers) = t.send(get(path)).await;
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(
            header("content-security-policy"),
            "default-src 'self'; frame-ancestors 'none'",
            "{path}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
    }
}

#[tokio::test]
async fn a_slow_client_is_cut_off_and_connections_are_bounded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = target().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let limits = mmm_scheduler::serve::Limits {
        header_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(300),
        max_connections: 2,
    };
    tokio::spawn(mmm_scheduler::serve::serve(
        listener,
        t.app.clone(),
        limits,
        mmm_scheduler::serve::Plain,
    ));

    // Slowloris: headers that never end. The server closes the connection.
    let mut slow = tokio::net::TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:7000\r\nX-a: ")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), slow.read_to_end(&mut buf)).await;
    assert!(
        closed.is_ok(),
        "the server keeps a connection whose headers never end"
    );

    // A kept-alive connection left idle after one request is closed too.
    let mut idle = tokio::net::TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1:7000\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), idle.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "an idle kept-alive connection stays open");
    assert!(String::from_utf8_lossy(&buf).contains("pong"));

    // A body that never arrives: 408, not a handler waiting for ever.
    let mut trickle = tokio::net::TcpStream::connect(addr).await.expect("connect");
    trickle
        .write_all(
            format!(
                "POST /api/add HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n\
                 Authorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n{{\"amo"
            )
            .as_bytes(),
        )
        .await
        .expect("write");
    let mut answer = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(20), trickle.read(&mut answer))
        .await
        .expect("an answer within the limit")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // Two connections held open: a third is closed at once.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let limits = mmm_scheduler::serve::Limits {
        header_timeout: Duration::from_secs(120),
        ..limits
    };
    tokio::spawn(mmm_scheduler::serve::serve(
        listener,
        t.app.clone(),
        limits,
        mmm_scheduler::serve::Plain,
    ));
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
        c.write_all(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1:7000\r\n")
            .await
            .expect("write");
        held.push(c);
    }
    let mut third = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let _ = third
        .write_all(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1:7000\r\n\r\n")
        .await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), third.read_to_end(&mut buf))
        .await
        .expect("closed, not served later");
    assert!(
        read.is_err() || buf.is_empty(),
        "a connection beyond the limit was served: {}",
        String::from_utf8_lossy(&buf)
    );
}
