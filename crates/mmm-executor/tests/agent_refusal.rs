//! The real `mmm-executor` against mesos-sim agents that serve https and
//! authenticate executors: a refused token or an untrusted certificate ends
//! the executor at once with the cause in its log, also when checkpointing
//! would otherwise make it retry for the whole recovery timeout.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mesos_sim::{MesosSim, SimConfig};
use mmm_test_support::ChildGuard;

async fn https_agent(tls: &Path) -> (MesosSim, String) {
    let sim = MesosSim::start(SimConfig {
        tls_dir: Some(tls.to_path_buf()),
        authenticate_http_executors: true,
        ..SimConfig::with_agents(1).fast()
    })
    .await
    .expect("mesos-sim");
    let agent = sim.agent_ids().remove(0);
    let endpoint = sim.agent_endpoint(&agent).expect("endpoint");
    (sim, endpoint)
}

/// Runs the executor with the Mesos variables plus `extra`; returns its exit
/// code and its log.
fn run_executor(endpoint: &str, sandbox: &Path, extra: &[(&str, String)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mmm-executor"));
    cmd.env_clear()
        .env("MESOS_FRAMEWORK_ID", "fw-1")
        .env("MESOS_EXECUTOR_ID", "exec-1")
        .env("MESOS_AGENT_ENDPOINT", endpoint)
        .env("MESOS_SANDBOX", sandbox)
        .env("MESOS_CHECKPOINT", "1")
        .env("MESOS_RECOVERY_TIMEOUT", "15mins")
        .env("MESOS_SUBSCRIPTION_BACKOFF_MAX", "2secs")
        .env("LIBPROCESS_SSL_ENABLED", "true");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = ChildGuard::spawn("mmm-executor", cmd).expect("spawn");
    let status = child
        .wait_timeout(Duration::from_secs(60))
        .expect("wait")
        .expect("the executor gives up at once, not after the recovery timeout");
    let log = std::fs::read_to_string(sandbox.join("executor.log")).unwrap_or_default();
    (status.code().unwrap_or(-1), log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_ends_the_executor_naming_the_cause() {
    let tls = tempfile::tempdir().expect("tls");
    let (sim, endpoint) = https_agent(tls.path()).await;
    let sandbox = tempfile::tempdir().expect("sandbox");
    let ca = sim.ca_file().expect("CA").display().to_string();
    let (code, log) = tokio::task::spawn_blocking({
        let sandbox = sandbox.path().to_path_buf();
        move || {
            run_executor(
                &endpoint,
                &sandbox,
                &[
                    ("LIBPROCESS_SSL_CA_FILE", ca),
                    (
                        "MESOS_EXECUTOR_AUTHENTICATION_TOKEN",
                        "not.the.token".to_owned(),
                    ),
                ],
            )
        }
    })
    .await
    .expect("join");
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("401") && log.contains("MESOS_EXECUTOR_AUTHENTICATION_TOKEN"),
        "{log}"
    );
    assert!(
        log.contains("Invalid JWT"),
        "the agent's reason is kept: {log}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_agent_certificate_is_named() {
    let tls = tempfile::tempdir().expect("tls");
    let (sim, endpoint) = https_agent(tls.path()).await;
    let sandbox = tempfile::tempdir().expect("sandbox");
    let (code, log) = tokio::task::spawn_blocking({
        let sandbox = sandbox.path().to_path_buf();
        move || run_executor(&endpoint, &sandbox, &[("MESOS_CHECKPOINT", "0".to_owned())])
    })
    .await
    .expect("join");
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("https://") && log.contains("certificate"),
        "{log}"
    );
    sim.shutdown().await;
}
