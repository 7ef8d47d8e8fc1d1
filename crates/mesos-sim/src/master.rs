//! The master's side of each scheduler call, and its allocator.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mesos_proto::v1::{
    self,
    framework_info::capability::Type as Capability,
    offer::operation,
    scheduler::{self as sched, call, event},
    task_status::{Reason, Source},
    FrameworkInfo, TaskInfo, TaskState, TaskStatus,
};
use tokio::sync::mpsc::UnboundedSender;

use crate::agent;
use crate::resources::ResourceSet;
use crate::state::{
    events, has_capability, now_secs, Connection, Framework, OfferRecord, SharedRef, State,
    TaskRecord,
};
use crate::updates;

/// Mesos's default and maximum refuse filter.
const DEFAULT_REFUSE_SECONDS: f64 = 5.0;
const MAX_REFUSE_SECONDS: f64 = 365.0 * 86_400.0;

/// Why a SUBSCRIBE is answered with an ERROR event (and a closed stream)
/// instead of SUBSCRIBED, in the master's words.
pub(crate) struct SubscribeRefusal(pub String);

/// `validation::framework::validate` and the checks of `Master::subscribe`.
fn validate_framework(
    st: &State,
    info: &FrameworkInfo,
    roles_whitelist: Option<&[String]>,
) -> Result<(), String> {
    let multi_role = has_capability(info, Capability::MultiRole);
    #[allow(deprecated)]
    let legacy_role = info.role.clone();
    if multi_role {
        if legacy_role.is_some() {
            return Err(
                "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable"
                    .into(),
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        let duplicates: Vec<&str> = info
            .roles
            .iter()
            .filter(|r| !seen.insert(r.as_str()))
            .map(String::as_str)
            .collect();
        if !duplicates.is_empty() {
            return Err(format!(
                "'FrameworkInfo.roles' contains duplicate items: {{ {} }}",
                duplicates.join(", ")
            ));
        }
        for role in &info.roles {
            validate_role(role)
                .map_err(|e| format!("'FrameworkInfo.roles' contains invalid role: {e}"))?;
        }
    } else {
        if !info.roles.is_empty() {
            return Err(
                "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"
                    .into(),
            );
        }
        validate_role(legacy_role.as_deref().unwrap_or("*"))
            .map_err(|e| format!("'FrameworkInfo.role' is not a valid role: {e}"))?;
    }
    if let Some(whitelist) = roles_whitelist {
        let roles: Vec<String> = if multi_role {
            info.roles.clone()
        } else {
            vec![legacy_role.clone().unwrap_or_else(|| "*".into())]
        };
        let invalid: std::collections::BTreeSet<&str> = roles
            .iter()
            .map(String::as_str)
            .filter(|r| *r != "*" && !whitelist.iter().any(|w| w == r))
            .collect();
        if !invalid.is_empty() {
            let list: Vec<&str> = invalid.into_iter().collect();
            return Err(format!(
                "Roles {{ {} }} are not present in the master's --roles",
                list.join(", ")
            ));
        }
    }
    if let Some(id) = &info.id {
        if st.removed_frameworks.contains(&id.value) {
            return Err("Framework has been removed".into());
        }
    }
    if let Some(timeout) = info.failover_timeout {
        // Mesos keeps durations in int64 nanoseconds.
        if !timeout.is_finite() || (timeout * 1e9).abs() >= i64::MAX as f64 {
            return Err(format!(
                "The framework failover_timeout ({timeout}) is invalid"
            ));
        }
    }
    Ok(())
}

/// The rules of `roles::validate`.
pub(crate) fn validate_role(role: &str) -> Result<(), String> {
    if role == "*" {
        return Ok(());
    }
    if role.is_empty() {
        return Err("Empty role name is invalid".into());
    }
    if role == "." || role == ".." {
        return Err(format!("Role name '{role}' is disallowed"));
    }
    if role.starts_with('-') {
        return Err(format!(
            "Role name '{role}' is invalid because it starts with a dash"
        ));
    }
    if role.starts_with('/') || role.ends_with('/') {
        return Err(format!(
            "Role name '{role}' is invalid because it starts or ends with a slash"
        ));
    }
    if role
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err(format!("Role name '{role}' contains invalid characters"));
    }
    Ok(())
}

/// SUBSCRIBE: registers or fails over the framework, sends SUBSCRIBED on
/// `tx`, and returns its framework id.
pub(crate) fn subscribe(
    shared: &SharedRef,
    st: &mut State,
    mut info: FrameworkInfo,
    stream_id: String,
    tx: UnboundedSender<Bytes>,
) -> Result<String, SubscribeRefusal> {
    let heartbeat = shared.config.heartbeat_interval;
    validate_framework(st, &info, shared.config.roles_whitelist.as_deref())
        .map_err(SubscribeRefusal)?;
    let framework_id = match info.id.as_ref().map(|id| id.value.clone()) {
        Some(id) if !id.is_empty() => id,
        _ => {
            let id = format!("{}-{:04}", st.master_id, st.next_framework);
            st.next_framework += 1;
            id
        }
    };
    info.id = Some(mesos_proto::ids::framework_id(&framework_id));

    // A framework failing over: the old stream is told and closed, and
    // its outstanding offers are taken back.
    let mut rescinded = Vec::new();
    if let Some(fw) = st.frameworks.get_mut(&framework_id) {
        if fw.conn.is_some() {
            fw.send(&events::error("Framework failed over"));
            fw.conn = None;
        }
        fw.info = info.clone();
        fw.disconnected_since = None;
        fw.suppressed = false;
        rescinded = take_offers_of(st, &framework_id);
    } else {
        st.frameworks.insert(
            framework_id.clone(),
            Framework {
                id: framework_id.clone(),
                info: info.clone(),
                conn: None,
                suppressed: false,
                filters: BTreeMap::new(),
                disconnected_since: None,
            },
        );
    }
    let master_info = st.master_info();
    let Some(fw) = st.frameworks.get_mut(&framework_id) else {
        return Ok(framework_id);
    };
    fw.conn = Some(Connection {
        stream_id,
        tx,
        next_heartbeat: Instant::now() + heartbeat,
    });
    let mut subscribed = events::of_type(event::Type::Subscribed);
    subscribed.subscribed = Some(event::Subscribed {
        framework_id: mesos_proto::ids::framework_id(&framework_id),
        heartbeat_interval_seconds: Some(heartbeat.as_secs_f64()),
        master_info: Some(master_info),
    });
    fw.send(&subscribed);
    // Mesos's heartbeater starts with one right away.
    fw.send(&events::of_type(event::Type::Heartbeat));
    for offer_id in rescinded {
        fw.send(&events::rescind(&offer_id));
    }
    // Executors learn the new FrameworkInfo on their next subscription;
    // nothing else changes for them.
    Ok(framework_id)
}

/// Removes and returns the ids of a framework's outstanding offers.
fn take_offers_of(st: &mut State, framework_id: &str) -> Vec<String> {
    let ids: Vec<String> = st
        .offers
        .iter()
        .filter(|(_, o)| o.framework_id == framework_id)
        .map(|(id, _)| id.clone())
        .collect();
    for id in &ids {
        st.offers.remove(id);
    }
    ids
}

/// The stream of a framework closed: it gets no offers until it comes back,
/// within its failover timeout.
pub(crate) fn disconnect(st: &mut State, framework_id: &str) {
    if let Some(fw) = st.frameworks.get_mut(framework_id) {
        fw.conn = None;
        fw.disconnected_since = Some(Instant::now());
    }
    take_offers_of(st, framework_id);
}

/// TEARDOWN, or a failover timeout: kills everything of the framework and
/// forgets it.
pub(crate) fn remove_framework(shared: &SharedRef, st: &mut State, framework_id: &str) {
    let Some(mut fw) = st.frameworks.remove(framework_id) else {
        return;
    };
    fw.conn = None;
    st.removed_frameworks.insert(framework_id.to_owned());
    take_offers_of(st, framework_id);
    for task in st.tasks.values_mut() {
        if task.framework_id == framework_id && task.live {
            if !crate::state::is_terminal(task.state) {
                let status = master_status(
                    task,
                    TaskState::TaskKilled,
                    Reason::FrameworkRemoved,
                    "Framework removed",
                );
                task.record(&status);
            }
            task.pending.clear();
            task.live = false;
        }
    }
    let execs: Vec<(usize, (String, String))> = st
        .agents
        .iter()
        .enumerate()
        .flat_map(|(i, a)| {
            a.executors
                .keys()
                .filter(|(f, _)| f == framework_id)
                .map(move |k| (i, k.clone()))
        })
        .collect();
    for (idx, key) in execs {
        agent::shutdown_executor(shared, st, idx, &key);
    }
}

/// A status made by the master about a task.
pub(crate) fn master_status(
    task: &TaskRecord,
    state: TaskState,
    reason: Reason,
    message: &str,
) -> TaskStatus {
    TaskStatus {
        task_id: mesos_proto::ids::task_id(&task.task_id),
        state: state as i32,
        message: Some(message.into()),
        source: Some(Source::Master as i32),
        reason: Some(reason as i32),
        agent_id: Some(mesos_proto::ids::agent_id(&task.agent_id)),
        executor_id: task.executor_id.as_ref().map(mesos_proto::ids::executor_id),
        timestamp: Some(now_secs()),
        ..TaskStatus::default()
    }
}

fn bare_master_status(
    task_id: &v1::TaskId,
    agent_id: Option<&v1::AgentId>,
    state: TaskState,
    reason: Reason,
    message: String,
) -> TaskStatus {
    TaskStatus {
        task_id: task_id.clone(),
        state: state as i32,
        message: Some(message),
        source: Some(Source::Master as i32),
        reason: Some(reason as i32),
        agent_id: agent_id.cloned(),
        timestamp: Some(now_secs()),
        ..TaskStatus::default()
    }
}

/// Makes offers of unused resources to frameworks that want them.
pub(crate) fn allocate(st: &mut State) {
    let now = Instant::now();
    let mut batches: BTreeMap<String, Vec<v1::Offer>> = BTreeMap::new();
    for idx in 0..st.agents.len() {
        if !st.agents[idx].alive {
            continue;
        }
        let free = st.available(idx);
        if !free.allocatable() {
            continue;
        }
        let agent_id = st.agents[idx].id.clone();
        let candidates: Vec<String> = st
            .frameworks
            .values()
            .filter(|f| f.conn.is_some() && !f.suppressed)
            .filter(|f| f.filters.get(&agent_id).is_none_or(|until| *until <= now))
            .map(|f| f.id.clone())
            .collect();
        if candidates.is_empty() {
            continue;
        }
        let chosen = candidates[st.round_robin % candidates.len()].clone();
        st.round_robin = st.round_robin.wrapping_add(1);
        let Some(fw) = st.frameworks.get_mut(&chosen) else {
            continue;
        };
        fw.filters.remove(&agent_id);
        // One offer carries one role's allocation: a role with resources
        // reserved on this agent first, as the allocator favours reservations.
        let roles = fw.roles();
        let role = roles
            .iter()
            .find(|r| free.has_reserved_for(r))
            .or(roles.first())
            .cloned()
            .unwrap_or_else(|| "*".into());
        let free = free.offerable_to(&role);
        if !free.allocatable() {
            continue;
        }
        let format = fw.format();
        let multi_role = fw.has(Capability::MultiRole);
        let offer_id = format!("{}-O{}", st.master_id, st.next_offer);
        st.next_offer += 1;
        let agent = &st.agents[idx];
        let executor_ids = agent
            .executors
            .keys()
            .filter(|(f, _)| *f == chosen)
            .map(|(_, e)| mesos_proto::ids::executor_id(e))
            .collect();
        let offer = v1::Offer {
            id: mesos_proto::ids::offer_id(&offer_id),
            framework_id: mesos_proto::ids::framework_id(&chosen),
            agent_id: mesos_proto::ids::agent_id(&agent.id),
            hostname: "127.0.0.1".into(),
            url: Some(v1::Url {
                scheme: "http".into(),
                address: v1::Address {
                    hostname: Some("127.0.0.1".into()),
                    ip: Some("127.0.0.1".into()),
                    port: i32::from(agent.port),
                },
                path: Some("/slave(1)".into()),
                ..v1::Url::default()
            }),
            resources: free.to_offer(format, &role),
            attributes: agent.attributes(),
            executor_ids,
            unavailability: None,
            allocation_info: multi_role.then(|| v1::resource::AllocationInfo {
                role: Some(role.clone()),
            }),
        };
        st.offers.insert(
            offer_id,
            OfferRecord {
                framework_id: chosen.clone(),
                agent_id: agent_id.clone(),
                resources: free,
                role,
            },
        );
        batches.entry(chosen).or_default().push(offer);
    }
    for (framework_id, offers) in batches {
        let mut e = events::of_type(event::Type::Offers);
        e.offers = Some(event::Offers { offers });
        if let Some(fw) = st.frameworks.get_mut(&framework_id) {
            fw.send(&e);
        }
    }
}

fn refuse_duration(filters: Option<&v1::Filters>) -> Duration {
    let secs = filters
        .and_then(|f| f.refuse_seconds)
        .unwrap_or(DEFAULT_REFUSE_SECONDS);
    // Mesos replaces an invalid value by the default.
    let secs = if secs.is_finite() && secs >= 0.0 {
        secs.min(MAX_REFUSE_SECONDS)
    } else {
        DEFAULT_REFUSE_SECONDS
    };
    Duration::from_secs_f64(secs)
}

fn set_filter(st: &mut State, framework_id: &str, agent_id: &str, refuse: Duration) {
    if refuse.is_zero() {
        return;
    }
    if let Some(fw) = st.frameworks.get_mut(framework_id) {
        fw.filters
            .insert(agent_id.to_owned(), Instant::now() + refuse);
    }
}

/// Checks the offers of an ACCEPT the way the master does, returning the
/// agent they are on.
fn validate_offers(
    st: &State,
    framework_id: &str,
    offer_ids: &[v1::OfferId],
) -> Result<String, String> {
    let mut seen = std::collections::BTreeSet::new();
    for id in offer_ids {
        if !seen.insert(id.value.clone()) {
            return Err(format!("Duplicate offer {} in offer list", id.value));
        }
    }
    for id in offer_ids {
        if !st.offers.contains_key(&id.value) {
            return Err(format!("Offer {} is no longer valid", id.value));
        }
    }
    let mut agent: Option<String> = None;
    for id in offer_ids {
        let Some(offer) = st.offers.get(&id.value) else {
            return Err(format!("Offer {} is no longer valid", id.value));
        };
        if offer.framework_id != framework_id {
            return Err(format!(
                "Offer {} has invalid framework {} while framework {framework_id} is expected",
                id.value, offer.framework_id
            ));
        }
        match &agent {
            None => agent = Some(offer.agent_id.clone()),
            Some(a) if *a != offer.agent_id => {
                return Err(format!(
                    "Aggregated offers must belong to one single agent. Offer {} uses agent {} and agent {a}",
                    id.value, offer.agent_id
                ))
            }
            Some(_) => {}
        }
    }
    agent.ok_or_else(|| "No offers given".to_owned())
}

/// ACCEPT: launches what is valid, fails what is not, and declines the rest.
pub(crate) fn accept(shared: &SharedRef, st: &mut State, framework_id: &str, accept: call::Accept) {
    let partition_aware = st
        .frameworks
        .get(framework_id)
        .is_some_and(|f| f.has(Capability::PartitionAware));
    let launches: Vec<TaskInfo> = accept
        .operations
        .iter()
        .filter(|op| op.r#type == Some(operation::Type::Launch as i32))
        .flat_map(|op| op.launch.iter().flat_map(|l| l.task_infos.clone()))
        .collect();

    let agent_id = match validate_offers(st, framework_id, &accept.offer_ids) {
        Ok(agent_id) => agent_id,
        Err(error) => {
            tracing::warn!(framework_id, %error, "ACCEPT with invalid offers");
            // The framework's own offers among them go back unfiltered.
            for id in &accept.offer_ids {
                if st
                    .offers
                    .get(&id.value)
                    .is_some_and(|o| o.framework_id == framework_id)
                {
                    st.offers.remove(&id.value);
                }
            }
            let state = if partition_aware {
                TaskState::TaskDropped
            } else {
                TaskState::TaskLost
            };
            for task in &launches {
                let status = bare_master_status(
                    &task.task_id,
                    Some(&task.agent_id),
                    state,
                    Reason::InvalidOffers,
                    format!("Task launched with invalid offers: {error}"),
                );
                updates::send_master_update(st, framework_id, status);
            }
            return;
        }
    };
    let mut remaining = ResourceSet::default();
    let mut role = "*".to_owned();
    for id in &accept.offer_ids {
        if let Some(offer) = st.offers.remove(&id.value) {
            remaining.add(&offer.resources);
            role = offer.role;
        }
    }
    let Some(agent_idx) = st.agent_index(&agent_id) else {
        return;
    };

    for op in &accept.operations {
        let kind = op.r#type.and_then(|t| operation::Type::try_from(t).ok());
        match kind {
            Some(operation::Type::Launch) => {
                let tasks = op
                    .launch
                    .as_ref()
                    .map(|l| l.task_infos.clone())
                    .unwrap_or_default();
                for task in tasks {
                    launch_one(
                        shared,
                        st,
                        framework_id,
                        agent_idx,
                        &role,
                        &mut remaining,
                        task,
                    );
                }
            }
            Some(operation::Type::LaunchGroup) => {
                let tasks = op
                    .launch_group
                    .as_ref()
                    .map(|g| g.task_group.tasks.clone())
                    .unwrap_or_default();
                for task in tasks {
                    let status = bare_master_status(
                        &task.task_id,
                        Some(&task.agent_id),
                        TaskState::TaskError,
                        Reason::TaskGroupInvalid,
                        "mesos-sim does not support LAUNCH_GROUP (task groups and the default executor)".into(),
                    );
                    updates::send_master_update(st, framework_id, status);
                }
            }
            other => {
                tracing::warn!(
                    framework_id,
                    operation = ?other,
                    "mesos-sim ignores offer operations other than LAUNCH"
                );
            }
        }
    }
    if !remaining.is_empty() {
        set_filter(
            st,
            framework_id,
            &agent_id,
            refuse_duration(accept.filters.as_ref()),
        );
    }
}

/// Validates one task of a LAUNCH in the order the master does, and
/// launches it or answers TASK_ERROR.
fn launch_one(
    shared: &SharedRef,
    st: &mut State,
    framework_id: &str,
    agent_idx: usize,
    role: &str,
    remaining: &mut ResourceSet,
    mut task: TaskInfo,
) {
    if let Some(exec) = task.executor.as_mut() {
        if exec.framework_id.is_none() {
            exec.framework_id = Some(mesos_proto::ids::framework_id(framework_id));
        }
    }
    // As the master does for every framework (MULTI_ROLE or not): resources
    // without allocation_info get the offer's, so the agent and the
    // executor always see it.
    inject_allocation(&mut task.resources, role);
    if let Some(exec) = task.executor.as_mut() {
        inject_allocation(&mut exec.resources, role);
    }
    match validate_task(st, framework_id, agent_idx, role, remaining, &task) {
        Ok(needed) => {
            remaining.subtract(&needed);
            agent::launch_task(shared, st, agent_idx, framework_id, task);
        }
        Err(error) => {
            tracing::warn!(framework_id, task_id = %task.task_id.value, %error, "invalid task");
            let status = bare_master_status(
                &task.task_id,
                Some(&task.agent_id),
                TaskState::TaskError,
                Reason::TaskInvalid,
                error,
            );
            updates::send_master_update(st, framework_id, status);
        }
    }
}

fn inject_allocation(resources: &mut [v1::Resource], role: &str) {
    for r in resources {
        if r.allocation_info.is_none() {
            r.allocation_info = Some(v1::resource::AllocationInfo {
                role: Some(role.to_owned()),
            });
        }
    }
}

fn validate_id(kind: &str, id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err(format!("{kind} ID must not be empty"));
    }
    if id.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
        return Err(format!(
            "{kind} ID '{id}' contains invalid characters ('/', '\\' or control characters)"
        ));
    }
    if id == "." || id == ".." {
        return Err(format!("{kind} ID '{id}' is disallowed"));
    }
    Ok(())
}

/// Returns the resources the task (and its new executor) take from the offer.
fn validate_task(
    st: &State,
    framework_id: &str,
    agent_idx: usize,
    role: &str,
    remaining: &ResourceSet,
    task: &TaskInfo,
) -> Result<ResourceSet, String> {
    let agent = &st.agents[agent_idx];
    let task_id = &task.task_id.value;
    validate_id("Task", task_id)?;
    if let Some(existing) = st.live_task(framework_id, task_id) {
        if existing.state == TaskState::TaskUnreachable {
            return Err(format!(
                "Task reuses the ID of an unreachable task: {task_id}"
            ));
        }
        return Err(format!("Task has duplicate ID: {task_id}"));
    }
    if task.agent_id.value != agent.id {
        return Err(format!(
            "Task uses invalid agent {} while agent {} is expected",
            task.agent_id.value, agent.id
        ));
    }
    if let Some(grace) = task
        .kill_policy
        .as_ref()
        .and_then(|k| k.grace_period.as_ref())
    {
        if grace.nanoseconds < 0 {
            return Err("Task's 'kill_policy.grace_period' must be non-negative".into());
        }
    }
    if task.resources.is_empty() {
        return Err("Task uses no resources".into());
    }
    let task_resources = ResourceSet::parse(&task.resources, role)
        .map_err(|e| format!("Task uses invalid resources: {e}"))?;

    if task.executor.is_some() == task.command.is_some() {
        return Err(
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
                .into(),
        );
    }
    let mut total = task_resources.clone();
    if let Some(exec) = &task.executor {
        validate_id("Executor", &exec.executor_id.value)?;
        if let Some(grace) = &exec.shutdown_grace_period {
            if grace.nanoseconds < 0 {
                return Err("ExecutorInfo's 'shutdown_grace_period' must be non-negative".into());
            }
        }
        let actual = exec
            .framework_id
            .as_ref()
            .map(|f| f.value.as_str())
            .unwrap_or("");
        if actual != framework_id {
            return Err(format!(
                "ExecutorInfo has an invalid FrameworkID (Actual: {actual} vs Expected: {framework_id})"
            ));
        }
        let exec_resources = ResourceSet::parse(&exec.resources, role)
            .map_err(|e| format!("Executor uses invalid resources: {e}"))?;
        let key = (framework_id.to_owned(), exec.executor_id.value.clone());
        if let Some(running) = agent.executors.get(&key) {
            if running.info != *exec {
                return Err(format!(
                    "ExecutorInfo is not compatible with existing ExecutorInfo with same ExecutorID ({})",
                    exec.executor_id.value
                ));
            }
        }
        if let Some(t) = exec.r#type {
            if t != v1::executor_info::Type::Custom as i32 {
                return Err("'ExecutorInfo.type' must be 'CUSTOM'".into());
            }
        }
        if exec.command.is_none() {
            return Err("'ExecutorInfo.command' must be set".into());
        }
        if !agent.executors.contains_key(&key) {
            total.add(&exec_resources);
        }
    }
    if !remaining.contains(&total) {
        return Err(format!(
            "Total resources {} required by task and its executor is more than available {}",
            total.describe(Some(role)),
            remaining.describe(Some(role))
        ));
    }
    Ok(total)
}

/// DECLINE: the offers go back, filtered for `refuse_seconds`.
pub(crate) fn decline(st: &mut State, framework_id: &str, decline: &call::Decline) {
    let refuse = refuse_duration(decline.filters.as_ref());
    for id in &decline.offer_ids {
        match st.offers.get(&id.value) {
            Some(offer) if offer.framework_id == framework_id => {
                let agent_id = offer.agent_id.clone();
                st.offers.remove(&id.value);
                set_filter(st, framework_id, &agent_id, refuse);
            }
            _ => {
                tracing::warn!(framework_id, offer_id = %id.value, "DECLINE of an offer that is no longer valid")
            }
        }
    }
}

/// REVIVE: clears the filters and un-suppresses.
pub(crate) fn revive(st: &mut State, framework_id: &str) {
    if let Some(fw) = st.frameworks.get_mut(framework_id) {
        fw.filters.clear();
        fw.suppressed = false;
    }
    st.next_allocation = Instant::now();
}

/// SUPPRESS: no more offers until REVIVE.
pub(crate) fn suppress(st: &mut State, framework_id: &str) {
    if let Some(fw) = st.frameworks.get_mut(framework_id) {
        fw.suppressed = true;
    }
}

/// KILL: to the executor, or answered directly when the task never reached it.
pub(crate) fn kill(shared: &SharedRef, st: &mut State, framework_id: &str, kill: &call::Kill) {
    let task_id = kill.task_id.value.clone();
    let Some(task) = st.live_task(framework_id, &task_id) else {
        tracing::warn!(
            framework_id,
            task_id,
            "KILL of an unknown task; performing reconciliation"
        );
        reconcile_one(st, framework_id, &kill.task_id, kill.agent_id.as_ref());
        return;
    };
    if crate::state::is_terminal(task.state) {
        return;
    }
    let agent_id = task.agent_id.clone();
    let Some(idx) = st.agent_index(&agent_id) else {
        return;
    };
    agent::kill_task(shared, st, idx, framework_id, &task_id, kill.kill_policy);
}

/// SHUTDOWN of one executor.
pub(crate) fn shutdown(
    shared: &SharedRef,
    st: &mut State,
    framework_id: &str,
    sd: &call::Shutdown,
) {
    let Some(idx) = st.agent_index(&sd.agent_id.value) else {
        tracing::warn!(framework_id, agent_id = %sd.agent_id.value, "SHUTDOWN for an unknown agent");
        return;
    };
    let key = (framework_id.to_owned(), sd.executor_id.value.clone());
    agent::shutdown_executor(shared, st, idx, &key);
}

/// The latest state of a task, as reconciliation reports it.
fn latest_for_reconciliation(task: &TaskRecord) -> TaskStatus {
    let mut status = task.latest.clone().unwrap_or_else(|| TaskStatus {
        task_id: mesos_proto::ids::task_id(&task.task_id),
        state: TaskState::TaskStaging as i32,
        ..TaskStatus::default()
    });
    status.state = task.state as i32;
    status.message = Some("Reconciliation: Latest task state".into());
    status.source = Some(Source::Master as i32);
    status.reason = Some(Reason::Reconciliation as i32);
    status.uuid = None;
    status.data = None;
    status.agent_id = Some(mesos_proto::ids::agent_id(&task.agent_id));
    status.executor_id = task.executor_id.as_ref().map(mesos_proto::ids::executor_id);
    status.timestamp = Some(now_secs());
    status
}

fn reconcile_one(
    st: &mut State,
    framework_id: &str,
    task_id: &v1::TaskId,
    agent_id: Option<&v1::AgentId>,
) {
    let partition_aware = st
        .frameworks
        .get(framework_id)
        .is_some_and(|f| has_capability(&f.info, Capability::PartitionAware));
    let status = match st.live_task(framework_id, &task_id.value) {
        Some(task) => latest_for_reconciliation(task),
        None => {
            let agent = agent_id.and_then(|a| st.agents.iter().find(|x| x.id == a.value));
            let (state, message) = match agent {
                Some(a) if a.alive => (
                    if partition_aware {
                        TaskState::TaskGone
                    } else {
                        TaskState::TaskLost
                    },
                    "Reconciliation: Task is unknown to the agent",
                ),
                Some(_) => (
                    if partition_aware {
                        TaskState::TaskUnreachable
                    } else {
                        TaskState::TaskLost
                    },
                    "Reconciliation: Task is unknown; the agent is unreachable",
                ),
                None => (
                    if partition_aware {
                        TaskState::TaskUnknown
                    } else {
                        TaskState::TaskLost
                    },
                    "Reconciliation: Task is unknown",
                ),
            };
            bare_master_status(
                task_id,
                agent_id,
                state,
                Reason::Reconciliation,
                message.into(),
            )
        }
    };
    updates::send_master_update(st, framework_id, status);
}

/// RECONCILE: explicit for the tasks listed, implicit (every live task of
/// the framework) for an empty list.
pub(crate) fn reconcile(st: &mut State, framework_id: &str, rec: &call::Reconcile) {
    if rec.tasks.is_empty() {
        let statuses: Vec<TaskStatus> = st
            .tasks
            .values()
            .filter(|t| t.framework_id == framework_id && t.live)
            .map(latest_for_reconciliation)
            .collect();
        for status in statuses {
            updates::send_master_update(st, framework_id, status);
        }
        return;
    }
    for t in &rec.tasks {
        reconcile_one(st, framework_id, &t.task_id, t.agent_id.as_ref());
    }
}

/// MESSAGE from the scheduler to an executor.
pub(crate) fn message(st: &mut State, framework_id: &str, msg: &call::Message) {
    let Some(idx) = st.agent_index(&msg.agent_id.value) else {
        tracing::warn!(framework_id, agent_id = %msg.agent_id.value, "MESSAGE for an unknown agent dropped");
        return;
    };
    let key = (framework_id.to_owned(), msg.executor_id.value.clone());
    let Some(exec) = st.agents[idx].executors.get_mut(&key) else {
        tracing::warn!(framework_id, executor_id = %msg.executor_id.value, "MESSAGE for an unknown executor dropped");
        return;
    };
    let event = v1::executor::Event {
        r#type: Some(v1::executor::event::Type::Message as i32),
        message: Some(v1::executor::event::Message {
            data: msg.data.clone(),
        }),
        ..v1::executor::Event::default()
    };
    if !exec.send(&event) {
        tracing::warn!(framework_id, executor_id = %msg.executor_id.value, "MESSAGE for an executor that is not subscribed dropped");
    }
}

/// ACKNOWLEDGE of an update with a uuid.
pub(crate) fn acknowledge(
    shared: &SharedRef,
    st: &mut State,
    framework_id: &str,
    ack: &call::Acknowledge,
) {
    let outcome = updates::acknowledge(
        st,
        framework_id,
        &ack.agent_id.value,
        &ack.task_id.value,
        &ack.uuid,
        shared.config.update_retry_interval,
    );
    if let updates::AckOutcome::Ignored(why) = outcome {
        tracing::warn!(framework_id, "{why}");
        st.invalid_acknowledgements.push(why);
    }
}

/// Everything that happens on the clock: heartbeats, closed streams,
/// failover timeouts, update retries and offers.
pub(crate) fn tick(shared: &SharedRef, st: &mut State) {
    let now = Instant::now();
    let heartbeat = shared.config.heartbeat_interval;
    let paused = st
        .faults
        .heartbeats_paused_until
        .is_some_and(|until| until > now);
    let mut closed = Vec::new();
    let mut expired = Vec::new();
    for fw in st.frameworks.values_mut() {
        if let Some(conn) = &mut fw.conn {
            if conn.tx.is_closed() {
                closed.push(fw.id.clone());
                continue;
            }
            if conn.next_heartbeat <= now && !paused {
                conn.next_heartbeat = now + heartbeat;
                fw.send(&events::of_type(event::Type::Heartbeat));
            }
        } else if let Some(since) = fw.disconnected_since {
            let timeout = fw.info.failover_timeout.unwrap_or(0.0);
            let timeout = if timeout.is_finite() && timeout > 0.0 {
                Duration::from_secs_f64(timeout.min(MAX_REFUSE_SECONDS * 100.0))
            } else {
                Duration::ZERO
            };
            if now.duration_since(since) >= timeout {
                expired.push(fw.id.clone());
            }
        }
    }
    for id in closed {
        tracing::info!(framework_id = %id, "scheduler stream closed; framework disconnected");
        disconnect(st, &id);
    }
    for id in expired {
        tracing::info!(framework_id = %id, "failover timeout passed; removing framework");
        remove_framework(shared, st, &id);
    }
    updates::retry_due(st, now, shared.config.update_retry_interval);
    if st.next_allocation <= now {
        st.next_allocation = now + shared.config.offer_interval;
        allocate(st);
    }
}

/// The `Call.Type` name Mesos uses in messages.
pub(crate) fn call_field(kind: call::Type) -> Option<&'static str> {
    use call::Type as T;
    Some(match kind {
        T::Accept => "accept",
        T::Decline => "decline",
        T::AcceptInverseOffers => "accept_inverse_offers",
        T::DeclineInverseOffers => "decline_inverse_offers",
        T::Kill => "kill",
        T::Shutdown => "shutdown",
        T::Acknowledge => "acknowledge",
        T::AcknowledgeOperationStatus => "acknowledge_operation_status",
        T::Reconcile => "reconcile",
        T::ReconcileOperations => "reconcile_operations",
        T::Message => "message",
        T::Request => "request",
        T::UpdateFramework => "update_framework",
        T::Subscribe => "subscribe",
        T::Teardown | T::Revive | T::Suppress | T::Unknown => return None,
    })
}

/// Whether the field matching the call's type is present.
pub(crate) fn has_call_field(c: &sched::Call, kind: call::Type) -> bool {
    use call::Type as T;
    match kind {
        T::Accept => c.accept.is_some(),
        T::Decline => c.decline.is_some(),
        T::AcceptInverseOffers => c.accept_inverse_offers.is_some(),
        T::DeclineInverseOffers => c.decline_inverse_offers.is_some(),
        T::Kill => c.kill.is_some(),
        T::Shutdown => c.shutdown.is_some(),
        T::Acknowledge => c.acknowledge.is_some(),
        T::AcknowledgeOperationStatus => c.acknowledge_operation_status.is_some(),
        T::Reconcile => c.reconcile.is_some(),
        T::ReconcileOperations => c.reconcile_operations.is_some(),
        T::Message => c.message.is_some(),
        T::Request => c.request.is_some(),
        T::UpdateFramework => c.update_framework.is_some(),
        T::Subscribe => c.subscribe.is_some(),
        T::Teardown | T::Revive | T::Suppress | T::Unknown => true,
    }
}
