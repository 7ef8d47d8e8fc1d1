//! The API over TLS with the operator's certificate: served over https,
//! refused over plain http, and a key file others may read is refused.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use mmm_scheduler::serve::{self, Limits, Tls};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_over_tls_only() {
    let dir = tempfile::tempdir().expect("dir");
    let generated =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("certificate");
    let cert_pem = generated.cert.pem();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    fs::write(&cert, &cert_pem).expect("cert");
    fs::write(&key, generated.key_pair.serialize_pem()).expect("key");

    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = Tls::from_pem_files(&cert, &key).expect_err("key readable by others");
    assert!(
        err.to_string().contains("0644") && err.to_string().contains("key.pem"),
        "{err}"
    );
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");
    let tls = Tls::from_pem_files(&cert, &key).expect("tls");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new().route("/ping", get(|| async { "pong" }));
    tokio::spawn(serve::serve(listener, app, Limits::default(), tls));

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("root"))
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let answer = client
        .get(format!("https://{addr}/ping"))
        .send()
        .await
        .expect("https request");
    assert_eq!(answer.text().await.expect("body"), "pong");

    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
        .get(format!("http://{addr}/ping"))
        .send()
        .await;
    assert!(
        !plain.map(|r| r.status().is_success()).unwrap_or(false),
        "plain http was served"
    );
}

/// A standby's server over TLS hands the port over: once it is told to
/// stop, a client's kept-alive connection is closed, so its next request
/// reaches the new server instead of being answered "standby" for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_closes_kept_alive_connections_and_hands_the_port_over() {
    let dir = tempfile::tempdir().expect("dir");
    let generated =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("certificate");
    let cert_pem = generated.cert.pem();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    fs::write(&cert, &cert_pem).expect("cert");
    fs::write(&key, generated.key_pair.serialize_pem()).expect("key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");
    let tls = Tls::from_pem_files(&cert, &key).expect("tls");

    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    std_listener.set_nonblocking(true).expect("nonblocking");
    let addr = std_listener.local_addr().expect("addr");
    let first = tokio::net::TcpListener::from_std(std_listener.try_clone().expect("dup"))
        .expect("listener");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let standby = tokio::spawn(serve::serve_until(
        first,
        Router::new().route("/who", get(|| async { "standby" })),
        Limits::default(),
        tls.clone(),
        async {
            let _ = stopped.await;
        },
    ));

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("root"))
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let who = |client: reqwest::Client| async move {
        let answer = client.get(format!("https://{addr}/who")).send().await?;
        answer.text().await
    };
    assert_eq!(who(client.clone()).await.expect("https request"), "standby");

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(20), standby)
        .await
        .expect("the standby's server stops within the request timeout")
        .expect("join")
        .expect("no accept error");
    let second = tokio::net::TcpListener::from_std(std_listener).expect("listener");
    tokio::spawn(serve::serve(
        second,
        Router::new().route("/who", get(|| async { "leader" })),
        Limits::default(),
        tls,
    ));
    // A client may learn of the closed connection only by using it (one
    // failed request, as after any server restart); what it must never get
    // again is the standby's answer.
    let mut answers = Vec::new();
    for _ in 0..5 {
        match who(client.clone()).await {
            Ok(text) => {
                answers.push(text);
                break;
            }
            Err(e) => {
                answers.push(format!("error: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert_eq!(
        answers.last().map(String::as_str),
        Some("leader"),
        "the kept-alive connection was closed when the standby stopped: {answers:?}"
    );
    assert!(
        !answers.iter().any(|a| a == "standby"),
        "the standby answered after it stopped: {answers:?}"
    );
}
