//! Agents that authenticate executors (`--authenticate_http_executors`).

mod common;

use std::time::Duration;

use common::{executor_task, framework_info, post_raw, unique, FileServer, Scheduler, WAIT};
use mesos_proto::v1::TaskState;
use mesos_proto::{calls, Message, CONTENT_TYPE_PROTOBUF};
use mesos_sim::{MesosSim, SimConfig};

async fn env_of(sandbox: &std::path::Path) -> String {
    let path = sandbox.join("env.txt");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(&path) {
            if text.contains("MESOS_EXECUTOR_ID") {
                return text;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn token_in(env: &str) -> String {
    env.lines()
        .find_map(|l| l.strip_prefix("MESOS_EXECUTOR_AUTHENTICATION_TOKEN="))
        .expect("the agent gives the executor a token")
        .to_owned()
}

/// Executors with their tokens run; calls without one, with a forged one, or
/// with another executor's are refused with Mesos's answers.
#[tokio::test]
async fn executors_need_their_own_token() {
    let script = format!(
        "#!/bin/sh\nexec '{}' \"$@\"\n",
        env!("CARGO_BIN_EXE_sim-test-executor")
    );
    let files = FileServer::start(vec![("sim-test-executor", script.into_bytes())]).await;
    let sim = MesosSim::start(SimConfig {
        authenticate_http_executors: true,
        ..SimConfig::with_agents(1).fast()
    })
    .await
    .expect("simulator starts");
    let mut s = Scheduler::subscribe(&sim.master_url(), framework_info(&[])).await;
    let offer = s.offer().await;
    let (task_a, task_b) = (unique("task"), unique("task"));
    let (exec_a, exec_b) = (unique("exec"), unique("exec"));
    let url = files.url("sim-test-executor");
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![
            executor_task(&offer, &task_a, &exec_a, &url, "run"),
            executor_task(&offer, &task_b, &exec_b, &url, "run"),
        ],
        5.0,
    ))
    .await;
    // The test executor sends its token: both reach TASK_RUNNING.
    s.update(&task_a, TaskState::TaskRunning).await;
    s.update(&task_b, TaskState::TaskRunning).await;

    let snapshot = sim.snapshot();
    let sandbox_of = |exec: &str| {
        snapshot
            .sandboxes
            .iter()
            .find(|v| v.executor_id == exec)
            .expect("sandbox")
            .path
            .clone()
    };
    let token_a = token_in(&env_of(&sandbox_of(&exec_a)).await);
    let token_b = token_in(&env_of(&sandbox_of(&exec_b)).await);
    assert_ne!(token_a, token_b, "one token per executor");
    assert_eq!(token_a.split('.').count(), 3, "a JWT: {token_a}");

    let agent = sim
        .agent_endpoint(&offer.agent_id.value)
        .expect("agent endpoint");
    let api = format!("http://{agent}/api/v1/executor");
    let message = |exec: &str| {
        calls::executor_message(
            &s.framework_id,
            &mesos_proto::ids::executor_id(exec),
            bytes::Bytes::from_static(b"hello"),
        )
        .encode_to_vec()
    };
    let subscribe_b = calls::executor_subscribe(
        &s.framework_id,
        &mesos_proto::ids::executor_id(&exec_b),
        Vec::new(),
        Vec::new(),
    )
    .encode_to_vec();

    // No token: 401 with both challenges, for SUBSCRIBE and for the rest.
    for body in [subscribe_b.clone(), message(&exec_b)] {
        let answer = post_raw(&api, Some(CONTENT_TYPE_PROTOBUF), &[], body).await;
        assert_eq!(answer.status, 401, "{}", answer.body);
        assert_eq!(
            answer.headers["www-authenticate"],
            "Basic realm=\"mesos-agent-executor\",Bearer realm=\"mesos-agent-executor\""
        );
        assert!(answer.body.contains("401 Unauthorized."), "{}", answer.body);
    }
    // A token the agent did not sign.
    let mut parts: Vec<&str> = token_b.split('.').collect();
    parts[2] = "c2lnbmF0dXJl";
    let forged = format!("Bearer {}", parts.join("."));
    let answer = post_raw(
        &api,
        Some(CONTENT_TYPE_PROTOBUF),
        &[("Authorization", &forged)],
        message(&exec_b),
    )
    .await;
    assert_eq!(answer.status, 401);
    let challenge = answer.headers["www-authenticate"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        challenge.contains("error=\"invalid_token\"")
            && challenge.contains("Invalid JWT: Token signature does not match"),
        "{challenge}"
    );
    // Another executor's token: authenticated, but not this executor.
    let answer = post_raw(
        &api,
        Some(CONTENT_TYPE_PROTOBUF),
        &[("Authorization", &format!("Bearer {token_a}"))],
        message(&exec_b),
    )
    .await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(
        answer.body.contains(&format!(
            "does not contain an 'eid' claim with the executor ID {exec_b}"
        )),
        "{}",
        answer.body
    );
    // Its own token: accepted.
    let answer = post_raw(
        &api,
        Some(CONTENT_TYPE_PROTOBUF),
        &[("Authorization", &format!("Bearer {token_b}"))],
        message(&exec_b),
    )
    .await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    sim.shutdown().await;
}
