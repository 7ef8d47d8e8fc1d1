//! The agents' side: executors, their tasks, and their status updates.

use std::time::{Duration, Instant};

use bytes::Bytes;
use mesos_proto::v1::{
    self, executor as exec,
    task_status::{Reason, Source},
    KillPolicy, TaskInfo, TaskState, TaskStatus,
};
use tokio::sync::mpsc::UnboundedSender;

use crate::containerizer;
use crate::resources::ResourceSet;
use crate::state::{
    events, is_terminal, new_uuid_bytes, now_secs, Executor, ExecutorPhase, SandboxView, SharedRef,
    State, TaskRecord,
};
use crate::updates;

type ExecKey = (String, String);

/// Hands a validated task to its agent: queued for the executor, which is
/// started if it does not run yet.
pub(crate) fn launch_task(
    shared: &SharedRef,
    st: &mut State,
    agent_idx: usize,
    framework_id: &str,
    task: TaskInfo,
) {
    let Some(exec_info) = task.executor.clone() else {
        // Command tasks need Mesos's command executor, which the simulator
        // does not have.
        let record = new_task_record(st, agent_idx, framework_id, &task, None);
        st.tasks.insert(
            (framework_id.to_owned(), task.task_id.value.clone()),
            record,
        );
        let status = agent_status(
            &st.agents[agent_idx].id,
            &task.task_id.value,
            None,
            TaskState::TaskFailed,
            Reason::ContainerLaunchFailed,
            "mesos-sim does not run command tasks (TaskInfo.command); use a custom executor",
        );
        let key = (framework_id.to_owned(), task.task_id.value.clone());
        updates::enqueue(st, &key, status, false, shared.config.update_retry_interval);
        return;
    };
    let exec_id = exec_info.executor_id.value.clone();
    let record = new_task_record(st, agent_idx, framework_id, &task, Some(exec_id.clone()));
    let key = (framework_id.to_owned(), task.task_id.value.clone());
    if let Some(old) = st.tasks.insert(key, record) {
        st.finished_tasks.push(old);
    }

    let exec_key = (framework_id.to_owned(), exec_id.clone());
    let agent = &mut st.agents[agent_idx];
    if let Some(executor) = agent.executors.get_mut(&exec_key) {
        if executor.stream.is_some() {
            let event = launch_event(&task);
            executor.send(&event);
            if let Some(t) = st
                .tasks
                .get_mut(&(framework_id.to_owned(), task.task_id.value.clone()))
            {
                t.delivered = true;
            }
        } else {
            executor.queued.push(task);
        }
        return;
    }
    let container_id = uuid::Uuid::new_v4().to_string();
    let sandbox = shared
        .work_dir
        .join("slaves")
        .join(&agent.id)
        .join("frameworks")
        .join(framework_id)
        .join("executors")
        .join(&exec_id)
        .join("runs")
        .join(&container_id);
    let resources =
        ResourceSet::parse_allocated(&exec_info.resources, framework_role(st, framework_id));
    let agent = &mut st.agents[agent_idx];
    agent.executors.insert(
        exec_key.clone(),
        Executor {
            info: exec_info,
            container_id: container_id.clone(),
            sandbox: sandbox.clone(),
            pid: None,
            phase: ExecutorPhase::Launching,
            stream: None,
            subscribed: false,
            queued: vec![task],
            resources,
            shutting_down: false,
        },
    );
    st.sandboxes.push(SandboxView {
        framework_id: framework_id.to_owned(),
        executor_id: exec_id,
        agent_id: st.agents[agent_idx].id.clone(),
        container_id: container_id.clone(),
        path: sandbox,
        pid: None,
        running: true,
        exit_status: None,
        subscriptions: 0,
    });
    containerizer::spawn_executor(shared.clone(), agent_idx, exec_key, container_id);
}

fn new_task_record(
    st: &State,
    agent_idx: usize,
    framework_id: &str,
    task: &TaskInfo,
    executor_id: Option<String>,
) -> TaskRecord {
    let role = framework_role(st, framework_id);
    let mut record = TaskRecord {
        framework_id: framework_id.to_owned(),
        task_id: task.task_id.value.clone(),
        agent_id: st.agents[agent_idx].id.clone(),
        executor_id,
        resources: ResourceSet::parse_allocated(&task.resources, role),
        state: TaskState::TaskStaging,
        latest: None,
        history: Vec::new(),
        pending: Default::default(),
        received_uuids: Vec::new(),
        acked_uuids: Vec::new(),
        delivered: false,
        live: true,
    };
    record.history.push(crate::state::StateChange {
        state: "TASK_STAGING".into(),
        source: "SOURCE_MASTER".into(),
        reason: None,
        message: None,
    });
    record
}

fn launch_event(task: &TaskInfo) -> exec::Event {
    exec::Event {
        r#type: Some(exec::event::Type::Launch as i32),
        launch: Some(exec::event::Launch { task: task.clone() }),
        ..exec::Event::default()
    }
}

/// A status update the agent makes itself (with a uuid, so acknowledged).
pub(crate) fn agent_status(
    agent_id: &str,
    task_id: &str,
    executor_id: Option<&str>,
    state: TaskState,
    reason: Reason,
    message: &str,
) -> TaskStatus {
    TaskStatus {
        task_id: mesos_proto::ids::task_id(task_id),
        state: state as i32,
        message: Some(message.into()),
        source: Some(Source::Agent as i32),
        reason: Some(reason as i32),
        agent_id: Some(mesos_proto::ids::agent_id(agent_id)),
        executor_id: executor_id.map(mesos_proto::ids::executor_id),
        timestamp: Some(now_secs()),
        uuid: Some(new_uuid_bytes()),
        ..TaskStatus::default()
    }
}

/// KILL reaching the agent.
pub(crate) fn kill_task(
    shared: &SharedRef,
    st: &mut State,
    agent_idx: usize,
    framework_id: &str,
    task_id: &str,
    kill_policy: Option<KillPolicy>,
) {
    let key = (framework_id.to_owned(), task_id.to_owned());
    let Some(exec_id) = st.tasks.get(&key).and_then(|t| t.executor_id.clone()) else {
        return;
    };
    let agent_id = st.agents[agent_idx].id.clone();
    let exec_key = (framework_id.to_owned(), exec_id.clone());
    let Some(executor) = st.agents[agent_idx].executors.get_mut(&exec_key) else {
        return;
    };
    if let Some(pos) = executor
        .queued
        .iter()
        .position(|t| t.task_id.value == task_id)
    {
        executor.queued.remove(pos);
        let idle = executor.queued.is_empty();
        let status = agent_status(
            &agent_id,
            task_id,
            Some(&exec_id),
            TaskState::TaskKilled,
            Reason::TaskKilledDuringLaunch,
            "Killed before delivery to the executor",
        );
        updates::enqueue(st, &key, status, false, shared.config.update_retry_interval);
        let has_live = st.tasks.values().any(|t| {
            t.framework_id == framework_id
                && t.executor_id.as_deref() == Some(exec_id.as_str())
                && t.live
                && !is_terminal(t.state)
        });
        if idle && !has_live {
            shutdown_executor(shared, st, agent_idx, &exec_key);
        }
        return;
    }
    let event = exec::Event {
        r#type: Some(exec::event::Type::Kill as i32),
        kill: Some(exec::event::Kill {
            task_id: mesos_proto::ids::task_id(task_id),
            kill_policy,
        }),
        ..exec::Event::default()
    };
    if !executor.send(&event) {
        tracing::warn!(
            framework_id,
            task_id,
            "KILL for a task whose executor is not subscribed dropped"
        );
    }
}

/// SHUTDOWN of an executor: the event, then SIGKILL after the grace period.
pub(crate) fn shutdown_executor(
    shared: &SharedRef,
    st: &mut State,
    agent_idx: usize,
    key: &ExecKey,
) {
    let default_grace = shared.config.executor_shutdown_grace_period;
    let Some(executor) = st.agents[agent_idx].executors.get_mut(key) else {
        return;
    };
    if executor.shutting_down {
        return;
    }
    executor.shutting_down = true;
    let grace = grace_period(&executor.info, default_grace);
    executor.send(&exec::Event {
        r#type: Some(exec::event::Type::Shutdown as i32),
        ..exec::Event::default()
    });
    let container_id = executor.container_id.clone();
    let shared = shared.clone();
    let key = key.clone();
    tokio::spawn(async move {
        tokio::time::sleep(grace).await;
        let st = shared.lock();
        if let Some(e) = st.agents[agent_idx].executors.get(&key) {
            if e.container_id == container_id {
                if let Some(pid) = e.pid {
                    crate::process_group::kill(pid);
                }
            }
        }
    });
}

pub(crate) fn grace_period(info: &v1::ExecutorInfo, default: Duration) -> Duration {
    info.shutdown_grace_period
        .as_ref()
        .and_then(|d| u64::try_from(d.nanoseconds).ok())
        .map(Duration::from_nanos)
        .unwrap_or(default)
}

/// The executor's process is gone (or never started): its unfinished tasks
/// fail, and the scheduler gets FAILURE.
pub(crate) fn executor_terminated(
    shared: &SharedRef,
    st: &mut State,
    agent_idx: usize,
    key: &ExecKey,
    container_id: &str,
    wait_status: i32,
    launch_error: Option<String>,
) {
    let agent = &mut st.agents[agent_idx];
    if !agent.alive {
        return;
    }
    match agent.executors.get(key) {
        Some(e) if e.container_id == container_id => {}
        _ => return,
    }
    let Some(executor) = agent.executors.remove(key) else {
        return;
    };
    let agent_id = agent.id.clone();
    if let Some(view) = st
        .sandboxes
        .iter_mut()
        .find(|s| s.container_id == container_id)
    {
        view.running = false;
        view.exit_status = Some(wait_status);
    }
    let (framework_id, exec_id) = key;
    let (reason, message) = match &launch_error {
        Some(err) => (
            Reason::ContainerLaunchFailed,
            format!("Failed to launch container: {err}"),
        ),
        None => (Reason::ExecutorTerminated, "Executor terminated".to_owned()),
    };
    let unfinished: Vec<String> = st
        .tasks
        .values()
        .filter(|t| {
            t.framework_id == *framework_id
                && t.agent_id == agent_id
                && t.executor_id.as_deref() == Some(exec_id.as_str())
                && t.live
                && !is_terminal(t.state)
        })
        .map(|t| t.task_id.clone())
        .collect();
    let _ = executor;
    for task_id in unfinished {
        let status = agent_status(
            &agent_id,
            &task_id,
            Some(exec_id),
            TaskState::TaskFailed,
            reason,
            &message,
        );
        let task_key = (framework_id.clone(), task_id);
        updates::enqueue(
            st,
            &task_key,
            status,
            false,
            shared.config.update_retry_interval,
        );
    }
    if let Some(fw) = st.frameworks.get_mut(framework_id) {
        fw.send(&events::failure(
            &agent_id,
            Some(exec_id),
            Some(wait_status),
        ));
    }
}

/// Why an executor call is refused, as (HTTP status, body).
pub(crate) type CallRefusal = (u16, String);

/// The executor's SUBSCRIBE: sends SUBSCRIBED and the queued LAUNCHes.
pub(crate) fn executor_subscribe(
    st: &mut State,
    agent_idx: usize,
    key: &ExecKey,
    tx: UnboundedSender<Bytes>,
) -> Result<(), CallRefusal> {
    let framework_info = st
        .frameworks
        .get(&key.0)
        .map(|f| f.info.clone())
        .ok_or_else(|| (400, "Framework cannot be found".to_owned()))?;
    let agent_info = st.agents[agent_idx].info();
    let agent = &mut st.agents[agent_idx];
    agent.awaiting_resubscription.remove(key);
    let executor = agent
        .executors
        .get_mut(key)
        .ok_or_else(|| (400, "Executor cannot be found".to_owned()))?;
    executor.stream = Some(tx);
    executor.subscribed = true;
    let container_id = executor.container_id.clone();
    if let Some(view) = st
        .sandboxes
        .iter_mut()
        .find(|v| v.container_id == container_id)
    {
        view.subscriptions += 1;
    }
    let executor = st.agents[agent_idx]
        .executors
        .get_mut(key)
        .ok_or_else(|| (400, "Executor cannot be found".to_owned()))?;
    let subscribed = exec::Event {
        r#type: Some(exec::event::Type::Subscribed as i32),
        subscribed: Some(exec::event::Subscribed {
            executor_info: executor.info.clone(),
            framework_info,
            agent_info,
            container_id: Some(v1::ContainerId {
                value: executor.container_id.clone(),
                parent: None,
            }),
        }),
        ..exec::Event::default()
    };
    executor.send(&subscribed);
    if executor.shutting_down {
        // Shut down while it was starting: it only learns that now.
        executor.send(&exec::Event {
            r#type: Some(exec::event::Type::Shutdown as i32),
            ..exec::Event::default()
        });
        return Ok(());
    }
    let queued = std::mem::take(&mut executor.queued);
    let mut delivered = Vec::new();
    for task in queued {
        executor.send(&launch_event(&task));
        delivered.push(task.task_id.value);
    }
    for task_id in delivered {
        if let Some(t) = st.tasks.get_mut(&(key.0.clone(), task_id)) {
            t.delivered = true;
        }
    }
    Ok(())
}

/// The agent's `verifyExecutorClaims`, after the framework and executor
/// lookups it follows: the token must name this executor's container.
pub(crate) fn check_claims(
    st: &State,
    agent_idx: usize,
    key: &ExecKey,
    claims: &crate::executor_auth::Claims,
) -> Result<(), CallRefusal> {
    if !st.frameworks.contains_key(&key.0) {
        return Err((400, "Framework cannot be found".into()));
    }
    let executor = st.agents[agent_idx]
        .executors
        .get(key)
        .ok_or_else(|| (400, "Executor cannot be found".to_owned()))?;
    crate::executor_auth::verify_claims(claims, &key.0, &key.1, &executor.container_id)
        .map_err(|message| (403, message))
}

/// Checks that the executor exists and has subscribed.
pub(crate) fn check_subscribed(
    st: &State,
    agent_idx: usize,
    key: &ExecKey,
) -> Result<(), CallRefusal> {
    if !st.frameworks.contains_key(&key.0) {
        return Err((400, "Framework cannot be found".into()));
    }
    match st.agents[agent_idx].executors.get(key) {
        None => Err((400, "Executor cannot be found".into())),
        Some(e) if !e.subscribed => Err((403, "Executor is not subscribed".into())),
        Some(_) => Ok(()),
    }
}

/// The executor's UPDATE, on its way to the scheduler.
pub(crate) fn executor_update(
    shared: &SharedRef,
    st: &mut State,
    agent_idx: usize,
    key: &ExecKey,
    mut status: TaskStatus,
) {
    let agent_id = st.agents[agent_idx].id.clone();
    let task_key = (key.0.clone(), status.task_id.value.clone());
    let uuid = status.uuid.clone().unwrap_or_default();
    let already_acked = st.tasks.get(&task_key).is_some_and(|t| {
        t.agent_id == agent_id
            && t.executor_id.as_deref() == Some(key.1.as_str())
            && t.acked_uuids.contains(&uuid)
    });
    if already_acked {
        // The status update manager answers a duplicate it has already
        // handled with an acknowledgement again.
        let why = format!(
            "Ignoring status update {} for task {} of framework {} that has already been acknowledged by the framework",
            crate::updates::uuid_text(&uuid),
            task_key.1,
            task_key.0
        );
        tracing::warn!("{why}");
        st.dropped_executor_calls.push(why);
        if let Some(executor) = st.agents[agent_idx].executors.get_mut(key) {
            executor.send(&exec::Event {
                r#type: Some(exec::event::Type::Acknowledged as i32),
                acknowledged: Some(exec::event::Acknowledged {
                    task_id: status.task_id.clone(),
                    uuid,
                }),
                ..exec::Event::default()
            });
        }
        return;
    }
    let known = st.tasks.get(&task_key).is_some_and(|t| {
        t.live && t.agent_id == agent_id && t.executor_id.as_deref() == Some(key.1.as_str())
    });
    if !known {
        let why = format!(
            "UPDATE from executor {} of framework {} for task {} which it does not run: dropped",
            key.1, key.0, status.task_id.value
        );
        tracing::warn!("{why}");
        st.dropped_executor_calls.push(why);
        return;
    }
    if let Some(task) = st.tasks.get_mut(&task_key) {
        let why = if task.received_uuids.contains(&uuid) {
            Some("that was already received (duplicate)")
        } else {
            task.received_uuids.push(uuid.clone());
            None
        };
        if let Some(why) = why {
            let why = format!(
                "Ignoring status update {} for task {} of framework {} {why}",
                crate::updates::uuid_text(&uuid),
                task.task_id,
                task.framework_id
            );
            tracing::warn!("{why}");
            st.dropped_executor_calls.push(why);
            return;
        }
    }
    let Some(executor) = st.agents[agent_idx].executors.get(key) else {
        return;
    };
    status.agent_id = Some(mesos_proto::ids::agent_id(&agent_id));
    status.container_status = Some(v1::ContainerStatus {
        container_id: Some(v1::ContainerId {
            value: executor.container_id.clone(),
            parent: None,
        }),
        network_infos: vec![v1::NetworkInfo {
            ip_addresses: vec![v1::network_info::IpAddress {
                protocol: None,
                ip_address: Some("127.0.0.1".into()),
            }],
            ..v1::NetworkInfo::default()
        }],
        executor_pid: executor.pid,
    });
    updates::enqueue(
        st,
        &task_key,
        status,
        true,
        shared.config.update_retry_interval,
    );
}

/// The executor's MESSAGE, relayed to the scheduler.
pub(crate) fn executor_message(st: &mut State, agent_idx: usize, key: &ExecKey, data: Bytes) {
    let agent_id = st.agents[agent_idx].id.clone();
    let mut event = events::of_type(v1::scheduler::event::Type::Message);
    event.message = Some(v1::scheduler::event::Message {
        agent_id: mesos_proto::ids::agent_id(&agent_id),
        executor_id: mesos_proto::ids::executor_id(&key.1),
        data,
    });
    if let Some(fw) = st.frameworks.get_mut(&key.0) {
        fw.send(&event);
    }
}

/// Restarts agent `agent_idx` (see `MesosSim::restart_agent`).
pub(crate) fn restart(shared: &SharedRef, agent_idx: usize, downtime: Duration) {
    {
        let mut st = shared.lock();
        let agent = &mut st.agents[agent_idx];
        if !agent.alive || agent.down {
            return;
        }
        tracing::info!(agent = %agent.id, ?downtime, "agent restarting");
        agent.down = true;
        agent.recovering_until = None;
        agent.fail_executor_updates = 0;
        if let Some(server) = agent.server.take() {
            server.abort();
        }
        for (key, executor) in agent.executors.iter_mut() {
            executor.stream = None;
            executor.subscribed = false;
            agent.awaiting_resubscription.insert(key.clone());
        }
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        tokio::time::sleep(downtime).await;
        let port = shared.lock().agents[agent_idx].port;
        let listener = loop {
            match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                Ok(listener) => break listener,
                Err(e) => {
                    if shared.lock().stopping {
                        return;
                    }
                    tracing::warn!(port, error = %e, "agent cannot listen again yet");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        let router = crate::http_executor::router(shared.clone(), agent_idx);
        let server = tokio::spawn(crate::tls::serve(
            listener,
            router,
            shared.tls.clone(),
            "agent",
        ));
        let mut st = shared.lock();
        if st.stopping || !st.agents[agent_idx].alive {
            server.abort();
            return;
        }
        let agent = &mut st.agents[agent_idx];
        agent.server = Some(server.abort_handle());
        agent.down = false;
        agent.recovering_until =
            Some(Instant::now() + shared.config.executor_reregistration_timeout);
        tracing::info!(agent = %agent.id, "agent back; recovering");
    });
}

/// The agents' timers: the end of a recovery kills the executors that did
/// not subscribe again, as `Slave::reregisterExecutorTimeout` does.
pub(crate) fn tick(shared: &SharedRef, st: &mut State) {
    let now = Instant::now();
    for idx in 0..st.agents.len() {
        match st.agents[idx].recovering_until {
            Some(until) if until <= now => {}
            _ => continue,
        }
        st.agents[idx].recovering_until = None;
        let stale = std::mem::take(&mut st.agents[idx].awaiting_resubscription);
        for key in stale {
            reregistration_timeout(shared, st, idx, &key);
        }
    }
}

fn reregistration_timeout(shared: &SharedRef, st: &mut State, agent_idx: usize, key: &ExecKey) {
    let Some(executor) = st.agents[agent_idx].executors.remove(key) else {
        return;
    };
    let agent_id = st.agents[agent_idx].id.clone();
    tracing::info!(agent = %agent_id, executor = %key.1, "Killing un-reregistered executor");
    if let Some(pid) = executor.pid {
        crate::process_group::kill(pid);
    }
    if let Some(view) = st
        .sandboxes
        .iter_mut()
        .find(|v| v.container_id == executor.container_id)
    {
        view.running = false;
    }
    let partition_aware = st
        .frameworks
        .get(&key.0)
        .is_some_and(|f| f.has(v1::framework_info::capability::Type::PartitionAware));
    let state = if partition_aware {
        TaskState::TaskGone
    } else {
        TaskState::TaskLost
    };
    let message = format!(
        "Executor did not reregister within {}",
        crate::state::stout_duration(shared.config.executor_reregistration_timeout)
    );
    let unfinished: Vec<String> = st
        .tasks
        .values()
        .filter(|t| {
            t.framework_id == key.0
                && t.agent_id == agent_id
                && t.executor_id.as_deref() == Some(key.1.as_str())
                && t.live
                && !is_terminal(t.state)
        })
        .map(|t| t.task_id.clone())
        .collect();
    for task_id in unfinished {
        let status = agent_status(
            &agent_id,
            &task_id,
            Some(&key.1),
            state,
            Reason::ExecutorReregistrationTimeout,
            &message,
        );
        updates::enqueue(
            st,
            &(key.0.clone(), task_id),
            status,
            false,
            shared.config.update_retry_interval,
        );
    }
    if let Some(fw) = st.frameworks.get_mut(&key.0) {
        fw.send(&events::failure(&agent_id, Some(&key.1), None));
    }
}

/// Closes the executor API stream of every executor on the agent, as a
/// network partition between executor and agent would; the processes keep
/// running and may subscribe again. Returns how many streams were open.
pub(crate) fn drop_executor_streams(st: &mut State, agent_idx: usize) -> usize {
    st.agents[agent_idx]
        .executors
        .values_mut()
        .filter_map(|e| e.stream.take())
        .count()
}

/// Kills an agent: its executors die, its tasks are lost (unreachable for
/// partition-aware frameworks), its offers are rescinded.
pub(crate) fn kill_agent(st: &mut State, agent_idx: usize) {
    let agent = &mut st.agents[agent_idx];
    if !agent.alive {
        return;
    }
    agent.alive = false;
    if let Some(server) = agent.server.take() {
        server.abort();
    }
    let agent_id = agent.id.clone();
    for executor in agent.executors.values() {
        if let Some(pid) = executor.pid {
            crate::process_group::kill(pid);
        }
    }
    let containers: Vec<String> = agent
        .executors
        .values()
        .map(|e| e.container_id.clone())
        .collect();
    agent.executors.clear();
    for view in st.sandboxes.iter_mut() {
        if containers.contains(&view.container_id) {
            view.running = false;
        }
    }
    let offers: Vec<(String, String)> = st
        .offers
        .iter()
        .filter(|(_, o)| o.agent_id == agent_id)
        .map(|(id, o)| (id.clone(), o.framework_id.clone()))
        .collect();
    for (offer_id, framework_id) in offers {
        st.offers.remove(&offer_id);
        if let Some(fw) = st.frameworks.get_mut(&framework_id) {
            fw.send(&events::rescind(&offer_id));
        }
    }
    let mut lost: Vec<(String, TaskStatus)> = Vec::new();
    for task in st.tasks.values_mut() {
        if task.agent_id != agent_id || !task.live {
            continue;
        }
        updates::drop_pending(task);
        if is_terminal(task.state) {
            task.live = false;
            continue;
        }
        let partition_aware = st
            .frameworks
            .get(&task.framework_id)
            .is_some_and(|f| f.has(v1::framework_info::capability::Type::PartitionAware));
        let state = if partition_aware {
            TaskState::TaskUnreachable
        } else {
            TaskState::TaskLost
        };
        let mut status = crate::master::master_status(
            task,
            state,
            Reason::AgentRemoved,
            "Agent 127.0.0.1 is unreachable",
        );
        if partition_aware {
            status.unreachable_time = Some(v1::TimeInfo {
                nanoseconds: (now_secs() * 1e9) as i64,
            });
        } else {
            task.live = false;
        }
        task.record(&status);
        lost.push((task.framework_id.clone(), status));
    }
    for (framework_id, status) in lost {
        updates::send_master_update(st, &framework_id, status);
    }
    let failure = events::failure(&agent_id, None, None);
    for fw in st.frameworks.values_mut() {
        fw.send(&failure);
    }
}

/// The framework's role, for resources the master gave no allocation.
fn framework_role(st: &State, framework_id: &str) -> String {
    st.frameworks
        .get(framework_id)
        .map(|f| f.role())
        .unwrap_or_else(|| "*".into())
}
