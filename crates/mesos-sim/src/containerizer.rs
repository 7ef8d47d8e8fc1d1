//! Starting an executor the way the Mesos posix launcher does: a sandbox,
//! the fetched URIs, the Mesos environment only, and stdout/stderr files.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;

use mesos_proto::v1::{environment::variable::Type as VarType, ExecutorInfo};

use crate::agent;
use crate::fetcher;
use crate::state::{stout_duration, ExecutorPhase, SharedRef};

type ExecKey = (String, String);

/// What the launch needs, copied out of the state.
struct LaunchPlan {
    info: ExecutorInfo,
    sandbox: PathBuf,
    env: BTreeMap<String, String>,
    fail_fetch: bool,
}

/// Starts the executor in the background; its exit is reported to the agent.
pub(crate) fn spawn_executor(
    shared: SharedRef,
    agent_idx: usize,
    key: ExecKey,
    container_id: String,
) {
    tokio::spawn(async move {
        let result = run(&shared, agent_idx, &key, &container_id).await;
        let mut st = shared.lock();
        match result {
            Ok(status) => agent::executor_terminated(
                &shared,
                &mut st,
                agent_idx,
                &key,
                &container_id,
                status,
                None,
            ),
            Err(error) => {
                tracing::warn!(framework_id = %key.0, executor_id = %key.1, %error, "executor launch failed");
                agent::executor_terminated(
                    &shared,
                    &mut st,
                    agent_idx,
                    &key,
                    &container_id,
                    -1,
                    Some(error),
                );
            }
        }
    });
}

fn plan(
    shared: &SharedRef,
    agent_idx: usize,
    key: &ExecKey,
    container_id: &str,
) -> Option<LaunchPlan> {
    let mut st = shared.lock();
    let checkpoint = st
        .frameworks
        .get(&key.0)
        .and_then(|f| f.info.checkpoint)
        .unwrap_or(false);
    let fail_fetch = if st.faults.fail_next_fetch > 0 {
        st.faults.fail_next_fetch -= 1;
        true
    } else {
        false
    };
    let agent = &st.agents[agent_idx];
    let executor = agent
        .executors
        .get(key)
        .filter(|e| e.container_id == container_id)?;
    let grace = agent::grace_period(&executor.info, shared.config.executor_shutdown_grace_period);
    let sandbox = executor.sandbox.display().to_string();
    let mut env: BTreeMap<String, String> =
        shared.config.executor_environment.iter().cloned().collect();
    if let Some(dir) = &shared.config.tls_dir {
        env.insert("LIBPROCESS_SSL_ENABLED".into(), "true".into());
        env.insert(
            "LIBPROCESS_SSL_CA_FILE".into(),
            crate::tls::ca_file(dir).display().to_string(),
        );
    }
    env.insert("MESOS_FRAMEWORK_ID".into(), key.0.clone());
    env.insert("MESOS_EXECUTOR_ID".into(), key.1.clone());
    env.insert("MESOS_AGENT_ENDPOINT".into(), agent.endpoint());
    env.insert("MESOS_DIRECTORY".into(), sandbox.clone());
    env.insert("MESOS_SANDBOX".into(), sandbox);
    env.insert("MESOS_SLAVE_ID".into(), agent.id.clone());
    env.insert(
        "MESOS_SLAVE_PID".into(),
        format!("slave(1)@{}", agent.endpoint()),
    );
    env.insert(
        "MESOS_CHECKPOINT".into(),
        if checkpoint { "1" } else { "0" }.into(),
    );
    env.insert(
        "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD".into(),
        stout_duration(grace),
    );
    env.insert("MESOS_HTTP_COMMAND_EXECUTOR".into(), "0".into());
    if shared.config.authenticate_http_executors {
        env.insert(
            "MESOS_EXECUTOR_AUTHENTICATION_TOKEN".into(),
            shared.executor_tokens.issue(&key.0, &key.1, container_id),
        );
    }
    if checkpoint {
        env.insert("MESOS_RECOVERY_TIMEOUT".into(), "15mins".into());
        env.insert(
            "MESOS_SUBSCRIPTION_BACKOFF_MAX".into(),
            stout_duration(shared.config.executor_reregistration_timeout),
        );
    }
    Some(LaunchPlan {
        info: executor.info.clone(),
        sandbox: executor.sandbox.clone(),
        env,
        fail_fetch,
    })
}

/// Fetches, starts and waits; returns the raw wait status, or why the
/// container could not be launched.
async fn run(
    shared: &SharedRef,
    agent_idx: usize,
    key: &ExecKey,
    container_id: &str,
) -> Result<i32, String> {
    let Some(mut plan) = plan(shared, agent_idx, key, container_id) else {
        return Err("executor removed before launch".into());
    };
    tokio::fs::create_dir_all(&plan.sandbox)
        .await
        .map_err(|e| format!("failed to create sandbox '{}': {e}", plan.sandbox.display()))?;
    let command = plan.info.command.clone().unwrap_or_default();
    for uri in &command.uris {
        if plan.fail_fetch {
            return Err(fetcher::FetchError::Injected {
                uri: uri.value.clone(),
            }
            .to_string());
        }
        fetcher::fetch(&shared.http, uri, &plan.sandbox)
            .await
            .map_err(|e| format!("Failed to fetch all URIs for container '{container_id}': {e}"))?;
    }
    if let Some(env) = &command.environment {
        for var in &env.variables {
            let kind = var.r#type.and_then(|t| VarType::try_from(t).ok());
            if kind == Some(VarType::Secret) || var.secret.is_some() {
                return Err(format!(
                    "environment variable '{}' is a secret, which mesos-sim does not resolve",
                    var.name
                ));
            }
            plan.env
                .insert(var.name.clone(), var.value.clone().unwrap_or_default());
        }
    }
    let Some(value) = command.value.clone() else {
        return Err("the executor's CommandInfo has no 'value' to run".into());
    };
    let stdout = std::fs::File::create(plan.sandbox.join("stdout"))
        .map_err(|e| format!("failed to create stdout in the sandbox: {e}"))?;
    let stderr = std::fs::File::create(plan.sandbox.join("stderr"))
        .map_err(|e| format!("failed to create stderr in the sandbox: {e}"))?;
    let mut cmd = if command.shell.unwrap_or(true) {
        let mut c = tokio::process::Command::new("/bin/sh");
        c.arg("-c").arg(&value);
        c
    } else {
        let mut c = tokio::process::Command::new(&value);
        if let Some((argv0, rest)) = command.arguments.split_first() {
            c.arg0(argv0);
            c.args(rest);
        }
        c
    };
    cmd.env_clear()
        .envs(&plan.env)
        .current_dir(&plan.sandbox)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .process_group(0);

    let mut child = {
        // Spawn under the lock so a concurrent shutdown or agent kill sees
        // the pid or sees that the executor is gone.
        let mut st = shared.lock();
        let agent = &mut st.agents[agent_idx];
        let Some(executor) = agent
            .executors
            .get_mut(key)
            .filter(|e| e.container_id == container_id && !e.shutting_down)
        else {
            return Err("executor shut down before it started".into());
        };
        if !agent.alive {
            return Err("agent is gone".into());
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("failed to execute '{value}': {e}"))?;
        executor.pid = child.id();
        executor.phase = ExecutorPhase::Running;
        let pid = executor.pid;
        if let Some(view) = st
            .sandboxes
            .iter_mut()
            .find(|s| s.container_id == container_id)
        {
            view.pid = pid;
        }
        child
    };
    let status = child
        .wait()
        .await
        .map_err(|e| format!("failed to wait for the executor: {e}"))?;
    use std::os::unix::process::ExitStatusExt;
    Ok(status.into_raw())
}
