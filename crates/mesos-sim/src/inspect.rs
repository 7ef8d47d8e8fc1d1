//! Read-only views of the simulator's state, for tests and `GET /sim/state`.

use serde::Serialize;

use crate::state::{SandboxView, State, StateChange, TaskRecord};

/// One framework.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameworkView {
    /// Its id.
    pub id: String,
    /// FrameworkInfo.name.
    pub name: String,
    /// Whether its event stream is open.
    pub connected: bool,
    /// Whether it suppressed offers.
    pub suppressed: bool,
    /// Capability names it declared.
    pub capabilities: Vec<String>,
    /// Its roles (`*` when it gave none).
    pub roles: Vec<String>,
}

/// One agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentView {
    /// Its id.
    pub id: String,
    /// `127.0.0.1:port`, the MESOS_AGENT_ENDPOINT of its executors.
    pub endpoint: String,
    /// False once killed.
    pub alive: bool,
    /// Its total resources, in Mesos notation.
    pub total: String,
    /// What is neither used nor offered.
    pub available: String,
    /// Executors on it, as (framework id, executor id).
    pub executors: Vec<(String, String)>,
}

/// One outstanding offer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OfferView {
    /// Its id.
    pub id: String,
    /// The framework it was made to.
    pub framework_id: String,
    /// The agent whose resources it holds.
    pub agent_id: String,
    /// The resources, in Mesos notation.
    pub resources: String,
}

/// One task, with every state it went through.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskView {
    /// Its framework.
    pub framework_id: String,
    /// Its id.
    pub task_id: String,
    /// Its agent.
    pub agent_id: String,
    /// Its executor.
    pub executor_id: Option<String>,
    /// The latest state, e.g. `TASK_RUNNING`.
    pub state: String,
    /// Whether the master still knows the task (its terminal update is not
    /// acknowledged yet, or it is unreachable).
    pub live: bool,
    /// Every state, oldest first, starting with TASK_STAGING.
    pub history: Vec<StateChange>,
    /// Updates sent but not yet acknowledged.
    pub pending_updates: usize,
    /// The task's resources in Mesos's notation, with their reservations,
    /// e.g. `cpus(reservations: [(STATIC,mirror)]):0.5; cpus:0.1`.
    pub resources: String,
}

impl TaskView {
    /// The state names of the history, e.g. `["TASK_STAGING", "TASK_RUNNING"]`.
    pub fn states(&self) -> Vec<&str> {
        self.history.iter().map(|h| h.state.as_str()).collect()
    }
}

/// Faults armed and not yet used up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmedFaults {
    /// Fetches that will still fail.
    pub fail_next_fetch: u32,
    /// Updates that will still be sent twice.
    pub duplicate_updates: u32,
    /// Updates that will still be held back behind the next one.
    pub reorder_updates: u32,
    /// ACCEPT calls that will still be lost.
    pub lose_accepts: u32,
    /// Whether heartbeats are paused now.
    pub heartbeats_paused: bool,
}

/// Everything at once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimSnapshot {
    /// The current master id (it changes when the master restarts).
    pub master_id: String,
    /// The frameworks known to the master.
    pub frameworks: Vec<FrameworkView>,
    /// Ids of frameworks torn down or timed out.
    pub removed_frameworks: Vec<String>,
    /// The agents.
    pub agents: Vec<AgentView>,
    /// Outstanding offers.
    pub offers: Vec<OfferView>,
    /// Every task ever launched (the latest record per id first, then older
    /// records of reused ids).
    pub tasks: Vec<TaskView>,
    /// Every sandbox ever created.
    pub sandboxes: Vec<SandboxView>,
    /// Acknowledgements that matched no pending update, with the reason:
    /// a framework bug Mesos only logs.
    pub invalid_acknowledgements: Vec<String>,
    /// Executor calls accepted but dropped (updates for unknown tasks).
    pub dropped_executor_calls: Vec<String>,
    /// Faults waiting to happen.
    pub faults: ArmedFaults,
}

fn task_view(t: &TaskRecord) -> TaskView {
    TaskView {
        framework_id: t.framework_id.clone(),
        task_id: t.task_id.clone(),
        agent_id: t.agent_id.clone(),
        executor_id: t.executor_id.clone(),
        state: t.state.as_str_name().to_owned(),
        live: t.live,
        history: t.history.clone(),
        pending_updates: t.pending.len(),
        resources: t.resources.describe(None),
    }
}

pub(crate) fn snapshot(st: &State) -> SimSnapshot {
    SimSnapshot {
        master_id: st.master_id.clone(),
        frameworks: st
            .frameworks
            .values()
            .map(|f| FrameworkView {
                id: f.id.clone(),
                name: f.info.name.clone(),
                connected: f.conn.is_some(),
                suppressed: f.suppressed,
                roles: f.roles(),
                capabilities: f
                    .info
                    .capabilities
                    .iter()
                    .filter_map(|c| c.r#type)
                    .filter_map(|t| {
                        mesos_proto::v1::framework_info::capability::Type::try_from(t).ok()
                    })
                    .map(|t| t.as_str_name().to_owned())
                    .collect(),
            })
            .collect(),
        removed_frameworks: st.removed_frameworks.iter().cloned().collect(),
        agents: (0..st.agents.len())
            .map(|i| {
                let a = &st.agents[i];
                AgentView {
                    id: a.id.clone(),
                    endpoint: a.endpoint(),
                    alive: a.alive,
                    total: a.total.to_string(),
                    available: st.available(i).to_string(),
                    executors: a.executors.keys().cloned().collect(),
                }
            })
            .collect(),
        offers: st
            .offers
            .iter()
            .map(|(id, o)| OfferView {
                id: id.clone(),
                framework_id: o.framework_id.clone(),
                agent_id: o.agent_id.clone(),
                resources: o.resources.to_string(),
            })
            .collect(),
        tasks: st
            .tasks
            .values()
            .chain(st.finished_tasks.iter())
            .map(task_view)
            .collect(),
        sandboxes: st.sandboxes.clone(),
        invalid_acknowledgements: st.invalid_acknowledgements.clone(),
        dropped_executor_calls: st.dropped_executor_calls.clone(),
        faults: ArmedFaults {
            fail_next_fetch: st.faults.fail_next_fetch,
            duplicate_updates: st.faults.duplicate_updates,
            reorder_updates: st.faults.reorder_updates,
            lose_accepts: st.faults.lose_accepts,
            heartbeats_paused: st
                .faults
                .heartbeats_paused_until
                .is_some_and(|until| until > std::time::Instant::now()),
        },
    }
}
