//! The Mesos v1 HTTP executor: subscribes to the agent, runs one mirroring
//! task with the replication engine, and reports its states.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use mesos_proto::calls::{executor_message, executor_subscribe, executor_update};
use mesos_proto::recordio::Decoder;
use mesos_proto::v1::executor::{event, Call, Event};
use mesos_proto::v1::{
    task_status, AgentId, ExecutorId, FrameworkId, TaskId, TaskInfo, TaskState, TaskStatus,
};
use mesos_proto::Message as _;
use mmm_core::task_data::TaskData;
use thiserror::Error;
use tokio::sync::mpsc;

use crate::agent_http::{AgentCallError, AgentHttp};
use crate::engine::{Engine, EngineError, EngineResult, Limits};
use crate::mesos_env::MesosEnv;
use crate::metrics::RateReporter;

/// How long the executor waits for the agent to acknowledge its last update,
/// once the agent has taken it, before it exits anyway.
const FINAL_ACK_WAIT: Duration = Duration::from_secs(5);
/// How long a finished executor keeps trying to hand its last update to an
/// agent that is up but refuses it.
const FINAL_DELIVERY_LIMIT: Duration = Duration::from_secs(60);
/// How often an update the agent did not take is sent again while the
/// stream is up.
const RESEND_INTERVAL: Duration = Duration::from_secs(1);

/// What the executor does besides what Mesos tells it.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// How often a metrics MESSAGE goes to the scheduler.
    pub metrics_interval: Duration,
    /// The replication engine's bounds.
    pub limits: Limits,
}

/// `MMM_EXECUTOR_TARGET_PRODUCERS` at most: each producer has its own threads and connections.
const MAX_TARGET_PRODUCERS: u64 = 64;

/// `MMM_EXECUTOR_SOURCE_CONSUMERS` at most: each consumer has its own threads, connections and
/// prefetch queue.
const MAX_SOURCE_CONSUMERS: u64 = 16;

impl Default for ExecutorOptions {
    fn default() -> Self {
        Self {
            metrics_interval: Duration::from_secs(5),
            limits: Limits::default(),
        }
    }
}

impl ExecutorOptions {
    /// The defaults, changed by `MMM_EXECUTOR_METRICS_INTERVAL_MS`,
    /// `MMM_EXECUTOR_MAX_IN_FLIGHT_RECORDS`, `MMM_EXECUTOR_MAX_IN_FLIGHT_BYTES`,
    /// `MMM_EXECUTOR_TARGET_PRODUCERS` and `MMM_EXECUTOR_SOURCE_CONSUMERS` (set through the
    /// ExecutorInfo's environment).
    pub fn from_process_env() -> Result<Self, ExecutorError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// As [`ExecutorOptions::from_process_env`], reading through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ExecutorError> {
        let within = |name: &'static str, max: u64, expected: &'static str| {
            get(name)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|n| (1..=max).contains(n))
                        .ok_or(ExecutorError::Setting {
                            name,
                            value: v,
                            expected,
                        })
                })
                .transpose()
        };
        let number = |name: &'static str| within(name, u64::MAX, "a positive integer");
        let mut options = Self::default();
        if let Some(ms) = number("MMM_EXECUTOR_METRICS_INTERVAL_MS")? {
            options.metrics_interval = Duration::from_millis(ms);
        }
        if let Some(n) = number("MMM_EXECUTOR_MAX_IN_FLIGHT_RECORDS")? {
            options.limits.max_in_flight_records = usize::try_from(n).unwrap_or(usize::MAX);
            options.limits.follow_round_trip = false;
        }
        if let Some(n) = number("MMM_EXECUTOR_MAX_IN_FLIGHT_BYTES")? {
            options.limits.max_in_flight_bytes = usize::try_from(n).unwrap_or(usize::MAX);
            options.limits.follow_round_trip = false;
        }
        if let Some(n) = within(
            "MMM_EXECUTOR_TARGET_PRODUCERS",
            MAX_TARGET_PRODUCERS,
            "an integer from 1 to 64",
        )? {
            options.limits.target_producers = Some(usize::try_from(n).unwrap_or(1));
        }
        if let Some(n) = within(
            "MMM_EXECUTOR_SOURCE_CONSUMERS",
            MAX_SOURCE_CONSUMERS,
            "an integer from 1 to 16",
        )? {
            options.limits.source_consumers = Some(usize::try_from(n).unwrap_or(1));
        }
        Ok(options)
    }
}

/// Why the executor ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The task was killed or the executor shut down as asked.
    Clean,
    /// The task failed; its TASK_FAILED was sent.
    TaskFailed,
}

/// Why the executor could not go on.
#[derive(Debug, Error)]
pub enum ExecutorError {
    /// The agent is gone and the executor does not checkpoint.
    #[error("lost the agent at {url} and checkpointing is off: {reason}")]
    AgentGone {
        /// The executor API URL.
        url: String,
        /// What happened.
        reason: String,
    },
    /// The agent did not come back within the recovery timeout.
    #[error(
        "the agent at {url} did not come back within the recovery timeout of {timeout:?}: {reason}"
    )]
    RecoveryTimeout {
        /// The executor API URL.
        url: String,
        /// `MESOS_RECOVERY_TIMEOUT`.
        timeout: Duration,
        /// The last failure.
        reason: String,
    },
    /// The agent sent ERROR.
    #[error("the agent sent an ERROR event: {0}")]
    AgentError(String),
    /// The agent refused the executor's credentials (401 or 403 on SUBSCRIBE):
    /// retrying cannot help.
    #[error("the agent at {url} refused this executor: {reason}{hint}")]
    Refused {
        /// The executor API URL.
        url: String,
        /// The agent's answer.
        reason: String,
        /// What to check.
        hint: &'static str,
    },
    /// A setting of the executor's own environment does not parse.
    #[error("environment variable {name} has invalid value {value:?}: expected {expected}")]
    Setting {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it may be.
        expected: &'static str,
    },
    /// The HTTP client could not be built.
    #[error("cannot create the HTTP client: {0}")]
    Http(String),
}

/// How one subscription ended.
enum StreamEnd {
    Exit(Exit),
    AgentError(String),
    Disconnected(String),
}

/// A status update the agent has not acknowledged yet.
struct Unacked {
    status: TaskStatus,
    /// The agent took it (202, or it rode in a SUBSCRIBE).
    delivered: bool,
}

/// The task this executor runs.
struct Task {
    id: TaskId,
    server_id: u64,
    engine: Option<Engine>,
    running_sent: bool,
    /// When set, the task must be reported killed by then.
    kill_deadline: Option<Instant>,
}

/// The executor's state across subscriptions.
pub struct Executor {
    env: MesosEnv,
    options: ExecutorOptions,
    agent: AgentHttp,
    framework_id: FrameworkId,
    executor_id: ExecutorId,
    agent_id: Option<AgentId>,
    unacked_updates: Vec<Unacked>,
    /// When the agent last took an update still unacknowledged.
    last_delivery: Option<Instant>,
    next_resend: Instant,
    unacked_task: Option<TaskInfo>,
    task: Option<Task>,
    /// Set once the terminal update is sent: the outcome to exit with.
    finished: Option<(Exit, Instant)>,
    shutting_down: bool,
    engine_done_tx: mpsc::Sender<EngineResult>,
    engine_done_rx: Option<mpsc::Receiver<EngineResult>>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("agent", &self.agent)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Executor {
    /// An executor for the agent described by `env`.
    pub fn new(env: MesosEnv, options: ExecutorOptions) -> Result<Self, ExecutorError> {
        let agent = AgentHttp::new(&env).map_err(|e| ExecutorError::Http(e.to_string()))?;
        let (engine_done_tx, engine_done_rx) = mpsc::channel(1);
        Ok(Self {
            agent,
            framework_id: FrameworkId {
                value: env.framework_id.clone(),
            },
            executor_id: ExecutorId {
                value: env.executor_id.clone(),
            },
            agent_id: env.agent_id.clone().map(|value| AgentId { value }),
            env,
            options,
            unacked_updates: Vec::new(),
            last_delivery: None,
            next_resend: Instant::now(),
            unacked_task: None,
            task: None,
            finished: None,
            shutting_down: false,
            engine_done_tx,
            engine_done_rx: Some(engine_done_rx),
        })
    }

    /// Subscribes and serves the agent until the task is over.
    pub async fn run(mut self) -> Result<Exit, ExecutorError> {
        let mut engine_done = self
            .engine_done_rx
            .take()
            .ok_or_else(|| ExecutorError::Http("the executor already ran".into()))?;
        let mut disconnected_since: Option<Instant> = None;
        let mut retries = 0u32;
        loop {
            let reason = match self.subscribe().await {
                Ok(response) => {
                    tracing::info!(url = %self.agent.url(), "subscribed to the agent");
                    disconnected_since = None;
                    retries = 0;
                    // Every unacknowledged update rode in the SUBSCRIBE.
                    self.mark_all_delivered();
                    match self.serve(response, &mut engine_done).await {
                        StreamEnd::Exit(exit) => return Ok(exit),
                        StreamEnd::AgentError(message) => {
                            return Err(ExecutorError::AgentError(message))
                        }
                        StreamEnd::Disconnected(reason) => reason,
                    }
                }
                Err(e) if is_refusal(&e) => {
                    self.abandon_task();
                    return Err(ExecutorError::Refused {
                        url: self.agent.url().to_owned(),
                        reason: e.to_string(),
                        hint: if e.status() == Some(401) {
                            " (the agent authenticates executors: MESOS_EXECUTOR_AUTHENTICATION_TOKEN is missing or not the one it issued)"
                        } else {
                            ""
                        },
                    });
                }
                Err(e) => format!("SUBSCRIBE failed: {e}"),
            };
            tracing::warn!(%reason, "disconnected from the agent");
            if let Some((exit, _)) = self.finished {
                if self.unacked_updates.is_empty() || !self.env.checkpoint {
                    // Everything was acknowledged, or no agent will come back
                    // for the rest: nobody waits for more.
                    return Ok(exit);
                }
                // The last update must still reach the agent: it comes back
                // within the recovery timeout, and gets it with SUBSCRIBE.
            }
            if !self.env.checkpoint {
                self.abandon_task();
                return Err(ExecutorError::AgentGone {
                    url: self.agent.url().to_owned(),
                    reason,
                });
            }
            let since = *disconnected_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= self.env.recovery_timeout {
                self.abandon_task();
                return Err(ExecutorError::RecoveryTimeout {
                    url: self.agent.url().to_owned(),
                    timeout: self.env.recovery_timeout,
                    reason,
                });
            }
            // Replication goes on while the agent restarts; an engine failure
            // meanwhile is queued and sent on re-subscription. The first retry
            // goes at once, the next ones after a random time up to the
            // maximum, as Mesos's executor library does: the maximum is also
            // the agent's re-registration window, so a fixed wait of that
            // length could miss it.
            let delay = if retries == 0 {
                Duration::ZERO
            } else {
                retry_delay(self.env.subscription_backoff_max, &mut rand::rng())
            };
            retries = retries.saturating_add(1);
            let sleep = tokio::time::sleep(delay);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    Some(result) = engine_done.recv() => self.on_engine_done(result).await,
                }
            }
        }
    }

    fn mark_all_delivered(&mut self) {
        if self.unacked_updates.iter().any(|u| !u.delivered) {
            self.last_delivery = Some(Instant::now());
        }
        for u in &mut self.unacked_updates {
            u.delivered = true;
        }
    }

    fn abandon_task(&mut self) {
        if let Some(engine) = self.task.as_ref().and_then(|t| t.engine.as_ref()) {
            engine.stop(self.env.shutdown_grace_period / 2);
        }
    }

    async fn subscribe(&self) -> Result<reqwest::Response, AgentCallError> {
        let call = executor_subscribe(
            &self.framework_id,
            &self.executor_id,
            self.unacked_task.iter().cloned().collect(),
            self.unacked_updates
                .iter()
                .map(|u| u.status.clone())
                .collect(),
        );
        self.agent.send(&call, None).await
    }

    async fn serve(
        &mut self,
        response: reqwest::Response,
        engine_done: &mut mpsc::Receiver<EngineResult>,
    ) -> StreamEnd {
        let mut body = response.bytes_stream();
        let mut decoder = Decoder::default();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut metrics_tick = tokio::time::interval(self.options.metrics_interval);
        metrics_tick.tick().await;
        let mut reporter = RateReporter::new(Instant::now());
        let mut sigterm = terminate_signal();
        loop {
            tokio::select! {
                chunk = body.next() => match chunk {
                    Some(Ok(bytes)) => {
                        decoder.feed(&bytes);
                        loop {
                            match decoder.next_record() {
                                Ok(Some(record)) => match Event::decode(record) {
                                    Ok(event) => {
                                        if let Some(end) = self.on_event(event).await {
                                            return end;
                                        }
                                    }
                                    Err(e) => tracing::warn!(error = %e, "undecodable event ignored"),
                                },
                                Ok(None) => break,
                                Err(e) => return StreamEnd::Disconnected(format!("event stream: {e}")),
                            }
                        }
                    }
                    Some(Err(e)) => return StreamEnd::Disconnected(format!("event stream: {e}")),
                    None => return StreamEnd::Disconnected("the agent closed the event stream".into()),
                },
                Some(result) = engine_done.recv() => self.on_engine_done(result).await,
                _ = tick.tick() => {
                    self.resend_undelivered().await;
                    if let Some(end) = self.on_tick().await {
                        return end;
                    }
                }
                _ = metrics_tick.tick() => self.send_metrics(&mut reporter).await,
                _ = recv_signal(&mut sigterm) => {
                    tracing::info!("SIGTERM: shutting down");
                    self.shutdown().await;
                }
            }
        }
    }

    async fn on_event(&mut self, event: Event) -> Option<StreamEnd> {
        let kind = event
            .r#type
            .and_then(|t| event::Type::try_from(t).ok())
            .unwrap_or(event::Type::Unknown);
        match kind {
            event::Type::Subscribed => {
                if let Some(s) = event.subscribed {
                    if let Some(id) = s.agent_info.id {
                        self.agent_id = Some(id);
                    }
                }
            }
            event::Type::Launch => match event.launch {
                Some(launch) => self.launch(launch.task).await,
                None => tracing::warn!("LAUNCH without a task ignored"),
            },
            event::Type::LaunchGroup => {
                for task in event
                    .launch_group
                    .map(|g| g.task_group.tasks)
                    .unwrap_or_default()
                {
                    self.update(
                        task.task_id,
                        TaskState::TaskFailed,
                        Some("this executor runs single tasks, not task groups".into()),
                        Some(task_status::Reason::TaskGroupInvalid),
                    )
                    .await;
                }
            }
            event::Type::Kill => {
                if let Some(kill) = event.kill {
                    let grace = kill
                        .kill_policy
                        .and_then(|p| p.grace_period)
                        .and_then(|d| u64::try_from(d.nanoseconds).ok())
                        .map(Duration::from_nanos)
                        .unwrap_or(self.env.shutdown_grace_period);
                    self.kill(&kill.task_id, grace).await;
                }
            }
            event::Type::Acknowledged => {
                if let Some(ack) = event.acknowledged {
                    self.unacked_updates
                        .retain(|u| u.status.uuid.as_ref() != Some(&ack.uuid));
                    if self
                        .unacked_task
                        .as_ref()
                        .is_some_and(|t| t.task_id == ack.task_id)
                    {
                        self.unacked_task = None;
                    }
                }
            }
            event::Type::Message => {
                let data = event.message.map(|m| m.data).unwrap_or_default();
                tracing::info!(message = %String::from_utf8_lossy(&data), "message from the scheduler");
            }
            event::Type::Shutdown => {
                tracing::info!("SHUTDOWN from the agent");
                self.shutdown().await;
                return self.exit_if_done();
            }
            event::Type::Error => {
                let message = event.error.map(|e| e.message).unwrap_or_default();
                tracing::error!(%message, "ERROR from the agent");
                self.abandon_task();
                return Some(StreamEnd::AgentError(message));
            }
            event::Type::Heartbeat | event::Type::Unknown => {}
        }
        None
    }

    async fn launch(&mut self, info: TaskInfo) {
        let task_id = info.task_id.clone();
        if self.task.is_some() || self.finished.is_some() {
            self.update(
                task_id,
                TaskState::TaskFailed,
                Some(
                    "this executor already runs a task; launch each task with its own executor"
                        .into(),
                ),
                Some(task_status::Reason::TaskInvalid),
            )
            .await;
            return;
        }
        self.unacked_task = Some(info.clone());
        tracing::info!(task = %task_id.value, "LAUNCH");
        let data = info.data.clone().unwrap_or_default();
        let parsed = TaskData::from_json(&data);
        let task_data = match parsed {
            Ok(d) => d,
            Err(e) => {
                self.fail_task(
                    task_id,
                    format!("invalid task data: {e}"),
                    task_status::Reason::TaskInvalid,
                )
                .await;
                return;
            }
        };
        let server_id = task_data.server_id;
        match Engine::start(task_data, self.options.limits.clone()) {
            Ok(mut engine) => {
                if let Some(rx) = engine.take_result() {
                    let tx = self.engine_done_tx.clone();
                    tokio::spawn(async move {
                        let result = rx
                            .await
                            .unwrap_or_else(|_| Err(EngineError::Crashed("no result".into())));
                        let _ = tx.send(result).await;
                    });
                }
                self.task = Some(Task {
                    id: task_id,
                    server_id,
                    engine: Some(engine),
                    running_sent: false,
                    kill_deadline: None,
                });
            }
            Err(e) => {
                let reason = if e.is_configuration() {
                    task_status::Reason::TaskInvalid
                } else {
                    task_status::Reason::ExecutorTerminated
                };
                self.fail_task(task_id, e.to_string(), reason).await;
            }
        }
    }

    async fn fail_task(&mut self, task_id: TaskId, message: String, reason: task_status::Reason) {
        tracing::error!(task = %task_id.value, %message, "task failed");
        self.update(task_id, TaskState::TaskFailed, Some(message), Some(reason))
            .await;
        self.finished = Some((Exit::TaskFailed, Instant::now()));
    }

    async fn kill(&mut self, task_id: &TaskId, grace: Duration) {
        let Some(task) = self.task.as_mut().filter(|t| &t.id == task_id) else {
            tracing::warn!(task = %task_id.value, "KILL of a task this executor does not run");
            return;
        };
        if task.kill_deadline.is_some() {
            return;
        }
        tracing::info!(task = %task_id.value, ?grace, "KILL: draining");
        // Keep a quarter of the grace period for the update and the exit.
        let drain = grace.mul_f64(0.75);
        task.kill_deadline = Some(Instant::now() + drain + grace.mul_f64(0.15));
        if let Some(engine) = &task.engine {
            engine.stop(drain);
        }
    }

    async fn shutdown(&mut self) {
        self.shutting_down = true;
        match self.task.as_ref().map(|t| t.id.clone()) {
            Some(id) => self.kill(&id, self.env.shutdown_grace_period).await,
            None => {
                if self.finished.is_none() {
                    self.finished = Some((Exit::Clean, Instant::now()));
                }
            }
        }
    }

    async fn on_engine_done(&mut self, result: EngineResult) {
        let Some(task) = self.task.as_mut() else {
            return;
        };
        if self.finished.is_some() {
            return;
        }
        let id = task.id.clone();
        let killed = task.kill_deadline.is_some();
        // The thread has ended: dropping the engine only joins it.
        task.engine = None;
        match (result, killed) {
            (Ok(summary), true) => {
                let committed: Vec<String> = summary
                    .committed
                    .iter()
                    .map(|((t, p), o)| format!("{t}-{p}@{o}"))
                    .collect();
                self.update(
                    id,
                    TaskState::TaskKilled,
                    Some(format!(
                        "drained and committed ({} records still in flight); committed offsets: {}",
                        summary.undelivered,
                        committed.join(", ")
                    )),
                    None,
                )
                .await;
                self.finished = Some((Exit::Clean, Instant::now()));
            }
            (Err(e), true) => {
                self.update(
                    id,
                    TaskState::TaskKilled,
                    Some(format!("killed; replication had failed: {e}")),
                    None,
                )
                .await;
                self.finished = Some((Exit::Clean, Instant::now()));
            }
            (Ok(_), false) => {
                self.fail_task(
                    id,
                    "replication stopped without being asked to".into(),
                    task_status::Reason::ExecutorTerminated,
                )
                .await;
            }
            (Err(e), false) => {
                let reason = if e.is_configuration() {
                    task_status::Reason::TaskInvalid
                } else {
                    task_status::Reason::ExecutorTerminated
                };
                self.fail_task(id, e.to_string(), reason).await;
            }
        }
    }

    async fn on_tick(&mut self) -> Option<StreamEnd> {
        let mut running = None;
        let mut overdue = None;
        if let Some(task) = self.task.as_mut() {
            if !task.running_sent
                && task.kill_deadline.is_none()
                && task
                    .engine
                    .as_ref()
                    .is_some_and(|e| e.metrics().is_consuming())
            {
                task.running_sent = true;
                running = Some(task.id.clone());
            }
            if task.kill_deadline.is_some_and(|d| Instant::now() >= d) && self.finished.is_none() {
                overdue = Some(task.id.clone());
            }
        }
        if let Some(id) = running {
            tracing::info!(task = %id.value, "consuming: TASK_RUNNING");
            self.update(id, TaskState::TaskRunning, Some("consuming".into()), None)
                .await;
        }
        if let Some(id) = overdue {
            // The process exits soon; the replication thread must not hold it.
            if let Some(engine) = self.task.as_mut().and_then(|t| t.engine.take()) {
                engine.detach();
            }
            self.update(
                id,
                TaskState::TaskKilled,
                Some("killed before replication finished draining; uncommitted records will be copied again".into()),
                None,
            )
            .await;
            self.finished = Some((Exit::Clean, Instant::now()));
        }
        self.exit_if_done()
    }

    fn exit_if_done(&self) -> Option<StreamEnd> {
        let (exit, at) = self.finished?;
        let task_done = self.task.as_ref().is_none_or(|t| {
            t.engine.is_none() || t.kill_deadline.is_some_and(|d| Instant::now() >= d)
        });
        if !task_done {
            return None;
        }
        let acked = self.unacked_updates.is_empty();
        let delivered = self.unacked_updates.iter().all(|u| u.delivered);
        let ack_wait_over = self
            .last_delivery
            .is_none_or(|t| t.elapsed() >= FINAL_ACK_WAIT);
        if acked || (delivered && ack_wait_over) {
            return Some(StreamEnd::Exit(exit));
        }
        if at.elapsed() >= FINAL_DELIVERY_LIMIT {
            tracing::warn!(
                undelivered = self.unacked_updates.iter().filter(|u| !u.delivered).count(),
                "the agent did not take the last updates within {FINAL_DELIVERY_LIMIT:?}; exiting"
            );
            return Some(StreamEnd::Exit(exit));
        }
        None
    }

    /// Sends again, while the stream is up, the updates whose POST failed:
    /// the agent forwards only what it took, and the next SUBSCRIBE may be
    /// far away.
    async fn resend_undelivered(&mut self) {
        let now = Instant::now();
        if now < self.next_resend || self.unacked_updates.iter().all(|u| u.delivered) {
            return;
        }
        self.next_resend = now + RESEND_INTERVAL;
        let pending: Vec<TaskStatus> = self
            .unacked_updates
            .iter()
            .filter(|u| !u.delivered)
            .map(|u| u.status.clone())
            .collect();
        for status in pending {
            let uuid = status.uuid.clone();
            tracing::info!(task = %status.task_id.value, state = ?status.state(), "UPDATE sent again");
            let call = executor_update(&self.framework_id, &self.executor_id, status);
            let outcome = self.agent.send(&call, Some(CALL_TIMEOUT)).await;
            self.on_update_sent(uuid.as_ref(), outcome.map(|_| ()));
        }
    }

    /// Records what the agent made of an UPDATE.
    fn on_update_sent(&mut self, uuid: Option<&Bytes>, outcome: Result<(), AgentCallError>) {
        let Some(pos) = self
            .unacked_updates
            .iter()
            .position(|u| u.status.uuid.as_ref() == uuid)
        else {
            return;
        };
        match outcome {
            Ok(()) => {
                self.unacked_updates[pos].delivered = true;
                self.last_delivery = Some(Instant::now());
            }
            // The agent validated and refused it: sending it again cannot help.
            Err(e) if e.status() == Some(400) => {
                tracing::error!(error = %e, "UPDATE refused by the agent; dropped");
                self.unacked_updates.remove(pos);
            }
            Err(e) => {
                tracing::warn!(error = %e, "UPDATE not delivered yet; it will be sent again");
            }
        }
    }

    async fn send_metrics(&mut self, reporter: &mut RateReporter) {
        let Some(task) = &self.task else {
            return;
        };
        let Some(engine) = &task.engine else {
            return;
        };
        let report = reporter.report(
            &engine.metrics(),
            &task.id.value,
            task.server_id,
            Instant::now(),
        );
        let Ok(data) = serde_json::to_vec(&report) else {
            return;
        };
        let call = executor_message(&self.framework_id, &self.executor_id, Bytes::from(data));
        if let Err(e) = self.post(&call).await {
            tracing::debug!(error = %e, "metrics message not sent");
        }
    }

    async fn update(
        &mut self,
        task_id: TaskId,
        state: TaskState,
        message: Option<String>,
        reason: Option<task_status::Reason>,
    ) {
        let status = TaskStatus {
            task_id,
            state: state as i32,
            message,
            source: Some(task_status::Source::Executor as i32),
            reason: reason.map(|r| r as i32),
            agent_id: self.agent_id.clone(),
            executor_id: Some(self.executor_id.clone()),
            timestamp: Some(now_secs()),
            uuid: Some(Bytes::copy_from_slice(uuid::Uuid::new_v4().as_bytes())),
            ..TaskStatus::default()
        };
        tracing::info!(task = %status.task_id.value, state = ?state, message = ?status.message, "UPDATE");
        let uuid = status.uuid.clone();
        self.unacked_updates.push(Unacked {
            status: status.clone(),
            delivered: false,
        });
        let call = executor_update(&self.framework_id, &self.executor_id, status);
        let outcome = self.post(&call).await;
        self.on_update_sent(uuid.as_ref(), outcome);
    }

    async fn post(&self, call: &Call) -> Result<(), AgentCallError> {
        self.agent.send(call, Some(CALL_TIMEOUT)).await.map(|_| ())
    }
}

/// How long one call other than SUBSCRIBE may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a failed SUBSCRIBE means the agent will never take this
/// executor: it does not accept its credentials.
fn is_refusal(e: &AgentCallError) -> bool {
    matches!(e.status(), Some(401 | 403))
}

/// A random wait in `[0, max]` (at least a few milliseconds, so a zero
/// maximum does not spin).
fn retry_delay(max: Duration, rng: &mut impl rand::Rng) -> Duration {
    max.mul_f64(rng.random_range(0.0..=1.0))
        .max(Duration::from_millis(5))
}

type TermSignal = Option<tokio::signal::unix::Signal>;

fn terminate_signal() -> TermSignal {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok()
}

async fn recv_signal(signal: &mut TermSignal) {
    match signal {
        Some(s) => {
            if s.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn retries_wait_a_random_time_up_to_the_maximum() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(13);
        let max = Duration::from_secs(2);
        let delays: Vec<Duration> = (0..200).map(|_| retry_delay(max, &mut rng)).collect();
        assert!(delays.iter().all(|d| *d <= max), "{delays:?}");
        // Spread over the range, not parked at the maximum (which is also the
        // agent's re-registration window).
        assert!(delays.iter().any(|d| *d < max / 4), "{delays:?}");
        assert!(delays.iter().any(|d| *d > max * 3 / 4), "{delays:?}");
        assert!(retry_delay(Duration::ZERO, &mut rng) > Duration::ZERO);
    }

    #[test]
    fn only_credential_answers_are_permanent_refusals() {
        let status = |status| AgentCallError::Status {
            status,
            body: String::new(),
        };
        assert!(is_refusal(&status(401)));
        assert!(is_refusal(&status(403)));
        for transient in [503, 404, 500] {
            assert!(!is_refusal(&status(transient)), "{transient}");
        }
        assert!(!is_refusal(&AgentCallError::Transport(
            "connection refused".into()
        )));
    }

    #[test]
    fn options_come_from_the_environment_and_bad_values_are_named() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(name, _)| *name == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let o = ExecutorOptions::from_lookup(env(&[])).expect("defaults");
        assert_eq!(o.limits.target_producers, None, "follows the round trip");
        assert!(o.limits.follow_round_trip);
        let o = ExecutorOptions::from_lookup(env(&[("MMM_EXECUTOR_TARGET_PRODUCERS", "4")]))
            .expect("valid");
        assert_eq!(o.limits.target_producers, Some(4));
        for bad in ["0", "65", "many"] {
            let pairs: &'static [(&'static str, &'static str)] = match bad {
                "0" => &[("MMM_EXECUTOR_TARGET_PRODUCERS", "0")],
                "65" => &[("MMM_EXECUTOR_TARGET_PRODUCERS", "65")],
                _ => &[("MMM_EXECUTOR_TARGET_PRODUCERS", "many")],
            };
            let err = ExecutorOptions::from_lookup(env(pairs)).expect_err(bad);
            let text = err.to_string();
            assert!(
                text.contains("MMM_EXECUTOR_TARGET_PRODUCERS")
                    && text.contains(bad)
                    && text.contains("from 1 to 64"),
                "{text}"
            );
        }
        assert_eq!(o.limits.source_consumers, None, "follows the round trip");
        let o = ExecutorOptions::from_lookup(env(&[("MMM_EXECUTOR_SOURCE_CONSUMERS", "3")]))
            .expect("valid");
        assert_eq!(o.limits.source_consumers, Some(3));
        let err = ExecutorOptions::from_lookup(env(&[("MMM_EXECUTOR_SOURCE_CONSUMERS", "17")]))
            .expect_err("too many");
        assert!(
            err.to_string().contains("MMM_EXECUTOR_SOURCE_CONSUMERS")
                && err.to_string().contains("from 1 to 16"),
            "{err}"
        );
        let err =
            ExecutorOptions::from_lookup(env(&[("MMM_EXECUTOR_MAX_IN_FLIGHT_RECORDS", "-1")]))
                .expect_err("negative");
        assert!(err.to_string().contains("a positive integer"), "{err}");
    }
}
