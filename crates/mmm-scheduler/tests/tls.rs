//! Masters and agents over https (mesos-sim with a CA made by the test), a
//! leader found in ZooKeeper reached over https, executors that must
//! authenticate, and proxies in the environment that Mesos traffic ignores.

mod common;

use std::path::Path;

use common::{wait_until, Scheduler, WAIT};
use mesos_sim::{MesosSim, SimConfig};
use mmm_test_support::ZooKeeperServer;
use zookeeper_client as zk;

/// A loopback URL where nothing listens: a proxy that cannot forward.
fn dead_proxy() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// Adds `lines` to the `[mesos]` section of the scheduler's configuration.
fn add_mesos_keys(s: &Scheduler, lines: &str) {
    let path = s.path("mmm.toml");
    let toml = std::fs::read_to_string(&path).expect("read config");
    let toml = toml.replacen("[mesos]\n", &format!("[mesos]\n{lines}\n"), 1);
    std::fs::write(&path, toml).expect("write config");
}

/// Starts the scheduler with every proxy variable pointing to `proxy`.
async fn start_behind_dead_proxy(s: &mut Scheduler, proxy: &str) {
    let mut cmd = s.command();
    for name in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        cmd.env(name, proxy);
    }
    s.start_with(cmd).await;
}

fn ca_line(ca: &Path) -> String {
    format!("ca_file = \"{}\"", ca.display())
}

/// The scheduler subscribes to an https master it trusts through
/// `[mesos] ca_file`, and its stand-in executor runs on an https agent that
/// authenticates executors; proxies in the environment are ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_master_and_agents_with_executor_authentication_and_no_proxy() {
    let tls = tempfile::tempdir().expect("tls dir");
    let sim = MesosSim::start(SimConfig {
        tls_dir: Some(tls.path().to_path_buf()),
        authenticate_http_executors: true,
        ..SimConfig::with_agents(1).fast()
    })
    .await
    .expect("mesos-sim over https");
    assert!(sim.master_url().starts_with("https://"));
    let ca = sim.ca_file().expect("CA file");

    let mut s = Scheduler::new(&sim.master_url(), "");
    add_mesos_keys(&s, &ca_line(&ca));
    start_behind_dead_proxy(&mut s, &dead_proxy()).await;
    let framework_id = s.wait_subscribed().await;
    let (_, health) = s.get_json("/health").await;
    assert_eq!(
        health["value"]["subscription"]["master"],
        format!("{}/", sim.master_url()),
        "{health}"
    );
    assert!(sim
        .snapshot()
        .frameworks
        .iter()
        .any(|f| f.id == framework_id && f.connected));

    let (status, body) = s.post("/api/add", r#"{"amount": 1}"#).await;
    assert_eq!(status, 200, "{body}");
    s.wait_server_state(1, "Running").await;
    let env = sim
        .snapshot()
        .sandboxes
        .first()
        .map(|v| std::fs::read_to_string(v.path.join("env.txt")).unwrap_or_default())
        .unwrap_or_default();
    assert!(env.contains("LIBPROCESS_SSL_ENABLED=true"), "{env}");
    assert!(
        env.contains("MESOS_EXECUTOR_AUTHENTICATION_TOKEN="),
        "{env}"
    );
    drop(s);
    sim.shutdown().await;
}

/// Without the CA, the master's certificate is refused and /health says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_master_certificate_is_refused_and_named() {
    let tls = tempfile::tempdir().expect("tls dir");
    let sim = MesosSim::start(SimConfig {
        tls_dir: Some(tls.path().to_path_buf()),
        ..SimConfig::with_agents(1).fast()
    })
    .await
    .expect("mesos-sim over https");
    let mut s = Scheduler::new(&sim.master_url(), "");
    s.start().await;
    let reason = wait_until("/health to name the certificate", WAIT, || async {
        let (_, health) = s.get_json("/health").await;
        let reason = health["value"]["subscription"]["reason"]
            .as_str()?
            .to_owned();
        reason.contains("certificate").then_some(reason)
    })
    .await;
    assert!(reason.contains(&sim.master_url()), "{reason}");
    assert!(sim.snapshot().frameworks.is_empty(), "never subscribed");
    drop(s);
    sim.shutdown().await;
}

/// `master_scheme = "https"`: the leader named in ZooKeeper is reached over
/// https, by the host name its MasterInfo gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_found_in_zookeeper_is_reached_over_https() {
    let zk_server = tokio::task::spawn_blocking(ZooKeeperServer::start)
        .await
        .expect("join")
        .expect("ZooKeeper starts");
    let hosts = zk_server.connect_string();
    let client = zk::Client::connect(&hosts).await.expect("zk client");
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    client
        .mkdir("/mesos", &persistent)
        .await
        .expect("mkdir /mesos");
    let tls = tempfile::tempdir().expect("tls dir");
    let sim = MesosSim::start(SimConfig {
        tls_dir: Some(tls.path().to_path_buf()),
        ..SimConfig::with_agents(1).fast()
    })
    .await
    .expect("mesos-sim over https");
    let addr = sim.master_addr();
    let info = serde_json::json!({
        "id": "master-1",
        "hostname": "localhost",
        "ip": 16_777_343u32,
        "port": addr.port(),
        "pid": format!("master@{addr}"),
        "address": {"hostname": "localhost", "ip": addr.ip().to_string(), "port": addr.port()},
        "version": "1.11.0"
    });
    client
        .create(
            "/mesos/json.info_",
            info.to_string().as_bytes(),
            &zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all()),
        )
        .await
        .expect("announce the master");

    let mut s = Scheduler::new(&format!("zk://{hosts}/mesos"), "");
    add_mesos_keys(
        &s,
        &format!(
            "master_scheme = \"https\"\n{}",
            ca_line(&sim.ca_file().expect("CA"))
        ),
    );
    s.start().await;
    s.wait_subscribed().await;
    let (_, health) = s.get_json("/health").await;
    assert_eq!(
        health["value"]["subscription"]["master"],
        format!("https://localhost:{}/", addr.port()),
        "{health}"
    );
    drop(s);
    sim.shutdown().await;
    drop(zk_server);
}
