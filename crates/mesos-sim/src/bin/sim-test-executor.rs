//! A minimal custom executor for the simulator's own tests.
//!
//! It subscribes, answers LAUNCH with TASK_RUNNING and KILL with TASK_KILLED,
//! echoes MESSAGEs back as `echo:<data>`, and obeys the task's `data`:
//! - `run` (or empty): keep running;
//! - `exit:N`: report TASK_RUNNING, then exit with code N without a
//!   terminal update;
//! - `finish`: report TASK_RUNNING then TASK_FINISHED, and exit 0;
//! - `ignore-shutdown`: keep running through SHUTDOWN (to be SIGKILLed).
//!
//! It writes its environment to `env.txt` in its working directory and
//! appends each acknowledged uuid to `acks.txt`, so tests can check both.

use std::collections::BTreeSet;
use std::io::Write;

use anyhow::{bail, Context};
use bytes::Bytes;
use futures::StreamExt;
use mesos_proto::v1::{
    executor as exec, task_status::Source, ExecutorId, FrameworkId, TaskId, TaskState, TaskStatus,
};
use mesos_proto::{calls, recordio, Message, CONTENT_TYPE_PROTOBUF};

struct Executor {
    client: reqwest::Client,
    url: String,
    framework_id: FrameworkId,
    executor_id: ExecutorId,
}

impl Executor {
    async fn post(&self, call: exec::Call) -> anyhow::Result<()> {
        let response = self
            .client
            .post(&self.url)
            .header("Content-Type", CONTENT_TYPE_PROTOBUF)
            .body(call.encode_to_vec())
            .send()
            .await
            .context("agent unreachable")?;
        if response.status().as_u16() != 202 {
            bail!(
                "agent answered {}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    async fn update(&self, task_id: &TaskId, state: TaskState) -> anyhow::Result<()> {
        let status = TaskStatus {
            task_id: task_id.clone(),
            state: state as i32,
            source: Some(Source::Executor as i32),
            uuid: Some(Bytes::copy_from_slice(uuid::Uuid::new_v4().as_bytes())),
            timestamp: Some(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0),
            ),
            ..TaskStatus::default()
        };
        self.post(calls::executor_update(
            &self.framework_id,
            &self.executor_id,
            status,
        ))
        .await
    }

    async fn message(&self, data: Bytes) -> anyhow::Result<()> {
        self.post(calls::executor_message(
            &self.framework_id,
            &self.executor_id,
            data,
        ))
        .await
    }
}

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    vars.sort();
    let mut dump = std::fs::File::create("env.txt").context("cannot write env.txt")?;
    for (k, v) in &vars {
        writeln!(dump, "{k}={v}")?;
    }
    // The agent's token on every call, and https with the agent's CA when
    // libprocess SSL is on, as a Mesos executor does.
    let mut headers = reqwest::header::HeaderMap::new();
    if let Ok(token) = std::env::var("MESOS_EXECUTOR_AUTHENTICATION_TOKEN") {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().context("token header")?,
        );
    }
    let mut client = reqwest::Client::builder().default_headers(headers);
    let tls = std::env::var("LIBPROCESS_SSL_ENABLED").is_ok_and(|v| v == "true" || v == "1");
    if let Ok(ca) = std::env::var("LIBPROCESS_SSL_CA_FILE") {
        let pem = std::fs::read(&ca).with_context(|| format!("cannot read {ca}"))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)? {
            client = client.add_root_certificate(cert);
        }
    }
    let executor = Executor {
        client: client.build()?,
        url: format!(
            "{}://{}/api/v1/executor",
            if tls { "https" } else { "http" },
            env("MESOS_AGENT_ENDPOINT")?
        ),
        framework_id: mesos_proto::ids::framework_id(env("MESOS_FRAMEWORK_ID")?),
        executor_id: mesos_proto::ids::executor_id(env("MESOS_EXECUTOR_ID")?),
    };
    let subscribe = calls::executor_subscribe(
        &executor.framework_id,
        &executor.executor_id,
        Vec::new(),
        Vec::new(),
    );
    let response = executor
        .client
        .post(&executor.url)
        .header("Content-Type", CONTENT_TYPE_PROTOBUF)
        .header("Accept", CONTENT_TYPE_PROTOBUF)
        .body(subscribe.encode_to_vec())
        .send()
        .await
        .context("cannot subscribe")?;
    if response.status().as_u16() != 200 {
        bail!("SUBSCRIBE answered {}", response.status());
    }
    let mut stream = response.bytes_stream();
    let mut decoder = recordio::Decoder::default();
    let mut running: BTreeSet<String> = BTreeSet::new();
    let mut ignore_shutdown = false;
    while let Some(chunk) = stream.next().await {
        decoder.feed(&chunk.context("stream broke")?);
        while let Some(record) = decoder.next_record()? {
            let event = exec::Event::decode(record)?;
            let kind = event
                .r#type
                .and_then(|t| exec::event::Type::try_from(t).ok());
            match kind {
                Some(exec::event::Type::Launch) => {
                    let Some(launch) = event.launch else { continue };
                    let task = launch.task;
                    let data = String::from_utf8_lossy(task.data.as_deref().unwrap_or_default())
                        .into_owned();
                    executor
                        .update(&task.task_id, TaskState::TaskRunning)
                        .await?;
                    running.insert(task.task_id.value.clone());
                    if let Some(code) = data.strip_prefix("exit:") {
                        std::process::exit(code.trim().parse().unwrap_or(1));
                    }
                    if data == "finish" {
                        executor
                            .update(&task.task_id, TaskState::TaskFinished)
                            .await?;
                        running.remove(&task.task_id.value);
                        if running.is_empty() {
                            // Give the agent time to read the update before the exit.
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                            return Ok(());
                        }
                    }
                    if data == "ignore-shutdown" {
                        ignore_shutdown = true;
                    }
                }
                Some(exec::event::Type::Kill) => {
                    let Some(kill) = event.kill else { continue };
                    executor
                        .update(&kill.task_id, TaskState::TaskKilled)
                        .await?;
                    running.remove(&kill.task_id.value);
                }
                Some(exec::event::Type::Message) => {
                    let data = event.message.map(|m| m.data).unwrap_or_default();
                    let mut echo = b"echo:".to_vec();
                    echo.extend_from_slice(&data);
                    executor.message(Bytes::from(echo)).await?;
                }
                Some(exec::event::Type::Acknowledged) => {
                    if let Some(ack) = event.acknowledged {
                        let mut f = std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open("acks.txt")?;
                        writeln!(
                            f,
                            "{} {}",
                            ack.task_id.value,
                            uuid::Uuid::from_slice(&ack.uuid)
                                .map(|u| u.to_string())
                                .unwrap_or_default()
                        )?;
                    }
                }
                Some(exec::event::Type::Shutdown) => {
                    if ignore_shutdown {
                        continue;
                    }
                    for task_id in std::mem::take(&mut running) {
                        executor
                            .update(&mesos_proto::ids::task_id(task_id), TaskState::TaskKilled)
                            .await?;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    return Ok(());
                }
                _ => {}
            }
        }
    }
    bail!("the agent closed the event stream")
}
