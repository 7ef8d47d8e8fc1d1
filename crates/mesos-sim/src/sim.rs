//! The running simulator: start, inspect, inject faults, stop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::any;
use axum::Router;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::SimConfig;
use crate::inspect::{self, SimSnapshot, TaskView};
use crate::resources::ResourceSet;
use crate::state::{events, Agent, Shared, SharedRef, State};
use crate::{agent, control, http_executor, http_scheduler, master};

/// What can go wrong starting or driving the simulator.
#[derive(Debug, Error)]
pub enum SimError {
    /// A port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The work directory could not be created.
    #[error("cannot create work directory '{path}': {source}")]
    WorkDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// No agent has that id.
    #[error("no agent with id '{id}'")]
    UnknownAgent { id: String },
    /// No outstanding offer has that id.
    #[error("no outstanding offer with id '{id}'")]
    UnknownOffer { id: String },
    /// The configuration cannot describe a cluster.
    #[error("invalid configuration: {reason}")]
    InvalidConfig { reason: String },
    /// The TLS certificate could not be made or used.
    #[error("cannot set up TLS: {reason}")]
    Tls { reason: String },
    /// A wait ran out of time.
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout { what: String, waited: Duration },
}

/// A running simulated Mesos master with its agents.
///
/// ```no_run
/// # async fn demo() -> Result<(), mesos_sim::SimError> {
/// let sim = mesos_sim::MesosSim::start(mesos_sim::SimConfig::with_agents(2).fast()).await?;
/// let url = sim.master_url(); // http://127.0.0.1:PORT
/// // ... drive a scheduler against `url`, inspect `sim.tasks()` ...
/// sim.shutdown().await;
/// # let _ = url; Ok(()) }
/// ```
pub struct MesosSim {
    shared: SharedRef,
    master_addr: SocketAddr,
    scheme: &'static str,
    background: Vec<JoinHandle<()>>,
    owned_work_dir: Option<PathBuf>,
    stopped: bool,
}

impl std::fmt::Debug for MesosSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MesosSim")
            .field("master_addr", &self.master_addr)
            .finish_non_exhaustive()
    }
}

async fn bind(port: u16) -> Result<TcpListener, SimError> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpListener::bind(addr)
        .await
        .map_err(|source| SimError::Bind { addr, source })
}

fn local_port(listener: &TcpListener, port: u16) -> Result<u16, SimError> {
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|source| SimError::Bind {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            source,
        })
}

impl MesosSim {
    /// Binds the master and agent ports, and starts serving.
    pub async fn start(config: SimConfig) -> Result<Self, SimError> {
        validate_config(&config)?;
        let master_listener = bind(config.master_port).await?;
        let master_port = local_port(&master_listener, config.master_port)?;
        let mut agent_listeners = Vec::new();
        for a in &config.agents {
            let l = bind(a.port).await?;
            let port = local_port(&l, a.port)?;
            agent_listeners.push((l, port));
        }
        let (work_dir, owned_work_dir) = match &config.work_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let dir = std::env::temp_dir().join(format!("mesos-sim-{}", uuid::Uuid::new_v4()));
                (dir.clone(), Some(dir))
            }
        };
        std::fs::create_dir_all(&work_dir).map_err(|source| SimError::WorkDir {
            path: work_dir.clone(),
            source,
        })?;

        let mut state = State::new(master_port, Vec::new());
        for (i, (a, (_, port))) in config.agents.iter().zip(&agent_listeners).enumerate() {
            state.agents.push(Agent {
                id: format!("{}-S{i}", state.master_id),
                port: *port,
                config: a.clone(),
                total: ResourceSet::agent(a.cpus, a.mem, a.disk, &a.ports, &a.reserved),
                alive: true,
                executors: Default::default(),
                server: None,
                down: false,
                recovering_until: None,
                awaiting_resubscription: Default::default(),
                fail_executor_updates: 0,
            });
        }
        let tick = config.tick.max(Duration::from_millis(1));
        let tls = match &config.tls_dir {
            Some(dir) => Some(crate::tls::generate(dir)?),
            None => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut shared = Shared::new(config, work_dir, state);
        shared.tls = tls.clone();
        let shared = Arc::new(shared);

        let mut background = Vec::new();
        let master_router = Router::new()
            .route("/api/v1/scheduler", any(http_scheduler::handle))
            .route("/master/api/v1/scheduler", any(http_scheduler::handle))
            .merge(control::router())
            .with_state(shared.clone());
        background.push(tokio::spawn(crate::tls::serve(
            master_listener,
            master_router,
            tls.clone(),
            "master",
        )));
        for (index, (listener, _)) in agent_listeners.into_iter().enumerate() {
            let router = http_executor::router(shared.clone(), index);
            let handle = tokio::spawn(crate::tls::serve(listener, router, tls.clone(), "agent"));
            shared.lock().agents[index].server = Some(handle.abort_handle());
            background.push(handle);
        }
        let clock = shared.clone();
        background.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(tick).await;
                let mut st = clock.lock();
                if st.stopping {
                    break;
                }
                master::tick(&clock, &mut st);
                agent::tick(&clock, &mut st);
            }
        }));
        tracing::info!(port = master_port, "mesos-sim master listening");
        Ok(Self {
            shared,
            master_addr: SocketAddr::from(([127, 0, 0, 1], master_port)),
            scheme,
            background,
            owned_work_dir,
            stopped: false,
        })
    }

    /// `http://127.0.0.1:PORT` (`https://` with `tls_dir`), the master's base URL.
    pub fn master_url(&self) -> String {
        format!("{}://{}", self.scheme, self.master_addr)
    }

    /// The CA certificate (PEM) the master and agents' certificate chains
    /// to, with `tls_dir`.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.shared
            .config
            .tls_dir
            .as_deref()
            .map(crate::tls::ca_file)
    }

    /// The master's address.
    pub fn master_addr(&self) -> SocketAddr {
        self.master_addr
    }

    /// The agents' ids, in configuration order.
    pub fn agent_ids(&self) -> Vec<String> {
        self.shared
            .lock()
            .agents
            .iter()
            .map(|a| a.id.clone())
            .collect()
    }

    /// The agent's `127.0.0.1:port`.
    pub fn agent_endpoint(&self, agent_id: &str) -> Result<String, SimError> {
        let st = self.shared.lock();
        st.agents
            .iter()
            .find(|a| a.id == agent_id)
            .map(|a| a.endpoint())
            .ok_or_else(|| SimError::UnknownAgent {
                id: agent_id.into(),
            })
    }

    /// The directory holding the sandboxes.
    pub fn work_dir(&self) -> PathBuf {
        self.shared.work_dir.clone()
    }

    /// Everything: frameworks, agents, offers, tasks, sandboxes.
    pub fn snapshot(&self) -> SimSnapshot {
        inspect::snapshot(&self.shared.lock())
    }

    /// Every task with its state history.
    pub fn tasks(&self) -> Vec<TaskView> {
        self.snapshot().tasks
    }

    /// The latest record of one task.
    pub fn task(&self, task_id: &str) -> Option<TaskView> {
        self.tasks().into_iter().find(|t| t.task_id == task_id)
    }

    /// Polls the state until `check` returns `Some`, or fails after `timeout`.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&SimSnapshot) -> Option<T>,
    ) -> Result<T, SimError> {
        let start = Instant::now();
        loop {
            if let Some(v) = check(&self.snapshot()) {
                return Ok(v);
            }
            if start.elapsed() >= timeout {
                return Err(SimError::Timeout {
                    what: what.into(),
                    waited: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills an agent: executors SIGKILLed, tasks TASK_LOST (TASK_UNREACHABLE
    /// for PARTITION_AWARE frameworks), offers rescinded, FAILURE sent.
    pub fn kill_agent(&self, agent_id: &str) -> Result<(), SimError> {
        let mut st = self.shared.lock();
        let idx = st
            .agent_index(agent_id)
            .ok_or_else(|| SimError::UnknownAgent {
                id: agent_id.into(),
            })?;
        agent::kill_agent(&mut st, idx);
        Ok(())
    }

    /// Closes the executor API streams on an agent, as a network partition
    /// between executors and agent would; returns how many were open.
    pub fn drop_executor_streams(&self, agent_id: &str) -> Result<usize, SimError> {
        let mut st = self.shared.lock();
        let idx = st
            .agent_index(agent_id)
            .ok_or_else(|| SimError::UnknownAgent {
                id: agent_id.into(),
            })?;
        Ok(agent::drop_executor_streams(&mut st, idx))
    }

    /// Restarts an agent: its endpoint closes and executor streams end for
    /// `downtime`; then it recovers, and executors that do not subscribe
    /// again within `executor_reregistration_timeout` are killed, their tasks
    /// TASK_LOST (TASK_GONE when partition-aware). Executors keep running
    /// meanwhile. Returns at once.
    pub fn restart_agent(&self, agent_id: &str, downtime: Duration) -> Result<(), SimError> {
        let idx =
            self.shared
                .lock()
                .agent_index(agent_id)
                .ok_or_else(|| SimError::UnknownAgent {
                    id: agent_id.into(),
                })?;
        agent::restart(&self.shared, idx, downtime);
        Ok(())
    }

    /// Makes an agent refuse the next `n` executor UPDATE calls with 503
    /// while the streams stay up (until it restarts).
    pub fn fail_next_executor_updates(&self, agent_id: &str, n: u32) -> Result<(), SimError> {
        let mut st = self.shared.lock();
        let idx = st
            .agent_index(agent_id)
            .ok_or_else(|| SimError::UnknownAgent {
                id: agent_id.into(),
            })?;
        st.agents[idx].fail_executor_updates += n;
        Ok(())
    }

    /// Restarts the master as a failover with its registry intact: every
    /// scheduler stream is cut, events not yet sent are dropped, offers are
    /// forgotten, and frameworks must SUBSCRIBE again (with their id) to get
    /// their tasks back. Agents and executors keep running.
    pub fn restart_master(&self) {
        restart_master(&mut self.shared.lock());
    }

    /// Rescinds every outstanding offer; returns their ids.
    pub fn rescind_offers(&self) -> Vec<String> {
        let mut st = self.shared.lock();
        let ids: Vec<String> = st.offers.keys().cloned().collect();
        for id in &ids {
            rescind(&mut st, id);
        }
        ids
    }

    /// Rescinds one outstanding offer.
    pub fn rescind_offer(&self, offer_id: &str) -> Result<(), SimError> {
        let mut st = self.shared.lock();
        if !st.offers.contains_key(offer_id) {
            return Err(SimError::UnknownOffer {
                id: offer_id.into(),
            });
        }
        rescind(&mut st, offer_id);
        Ok(())
    }

    /// Makes the next executor fetch fail (its tasks get TASK_FAILED with
    /// REASON_CONTAINER_LAUNCH_FAILED).
    pub fn fail_next_fetch(&self) {
        self.shared.lock().faults.fail_next_fetch += 1;
    }

    /// Sends each of the next `n` status updates twice.
    pub fn duplicate_next_updates(&self, n: u32) {
        self.shared.lock().faults.duplicate_updates += n;
    }

    /// Holds each of the next `n` status updates back until the update after
    /// it has been sent (or until its retry).
    pub fn reorder_next_updates(&self, n: u32) {
        self.shared.lock().faults.reorder_updates += n;
    }

    /// Loses each of the next `n` ACCEPT calls: answered 202 but never
    /// carried out, as if lost on the way; their offers stay outstanding.
    pub fn lose_next_accepts(&self, n: u32) {
        self.shared.lock().faults.lose_accepts += n;
    }

    /// Sends no HEARTBEAT for `duration`.
    pub fn delay_heartbeats(&self, duration: Duration) {
        let now = Instant::now();
        // A pause too long for the clock means "for good".
        let until = now
            .checked_add(duration)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
        self.shared.lock().faults.heartbeats_paused_until = Some(until);
    }

    /// Stops serving and kills every executor.
    pub async fn shutdown(mut self) {
        self.stop();
        for handle in self.background.drain(..) {
            let _ = handle.await;
        }
    }

    fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        {
            let mut st = self.shared.lock();
            st.stopping = true;
            for fw in st.frameworks.values_mut() {
                fw.conn = None;
            }
            for agent in st.agents.iter_mut() {
                for executor in agent.executors.values_mut() {
                    executor.stream = None;
                    if let Some(pid) = executor.pid {
                        crate::process_group::kill(pid);
                    }
                }
                agent.executors.clear();
            }
        }
        for handle in &self.background {
            handle.abort();
        }
        if let Some(dir) = &self.owned_work_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for MesosSim {
    fn drop(&mut self) {
        self.stop();
    }
}

fn validate_config(config: &SimConfig) -> Result<(), SimError> {
    let invalid = |reason: String| Err(SimError::InvalidConfig { reason });
    for (i, a) in config.agents.iter().enumerate() {
        for (name, v) in [("cpus", a.cpus), ("mem", a.mem), ("disk", a.disk)] {
            if !v.is_finite() || v < 0.0 {
                return invalid(format!(
                    "agent {i}: {name} must be a non-negative number, got {v}"
                ));
            }
        }
        if let Some((b, e)) = a.ports.iter().find(|(b, e)| b > e) {
            return invalid(format!(
                "agent {i}: port range [{b}-{e}] begins after it ends"
            ));
        }
        for r in &a.reserved {
            if !r.amount.is_finite() || r.amount < 0.0 {
                return invalid(format!(
                    "agent {i}: reserved {} must be a non-negative number, got {}",
                    r.name, r.amount
                ));
            }
            if r.name.is_empty() {
                return invalid(format!("agent {i}: a reserved resource has an empty name"));
            }
            if r.role == "*" {
                return invalid(format!("agent {i}: role \"*\" cannot be reserved"));
            }
            if let Err(e) = crate::master::validate_role(&r.role) {
                return invalid(format!("agent {i}: reserved {}: {e}", r.name));
            }
        }
        if a.attributes.iter().any(|(name, _)| name.is_empty()) {
            return invalid(format!("agent {i}: an attribute has an empty name"));
        }
    }
    if config.heartbeat_interval.is_zero() {
        return invalid("heartbeat_interval must be positive".into());
    }
    Ok(())
}

pub(crate) fn restart_master(st: &mut State) {
    st.master_id = uuid::Uuid::new_v4().to_string();
    let now = Instant::now();
    for fw in st.frameworks.values_mut() {
        if fw.conn.take().is_some() {
            fw.disconnected_since = Some(now);
        }
    }
    st.offers.clear();
    st.faults.held_update = None;
}

pub(crate) fn rescind(st: &mut State, offer_id: &str) {
    if let Some(offer) = st.offers.remove(offer_id) {
        if let Some(fw) = st.frameworks.get_mut(&offer.framework_id) {
            fw.send(&events::rescind(offer_id));
        }
    }
}
