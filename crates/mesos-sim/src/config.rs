//! What a simulated cluster looks like and how fast its clocks run.

use std::path::PathBuf;
use std::time::Duration;

pub use crate::resources::Reserved;

/// One simulated agent: its resources, attributes and HTTP port.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// `cpus` offered.
    pub cpus: f64,
    /// `mem` offered, in MB.
    pub mem: f64,
    /// `disk` offered, in MB.
    pub disk: f64,
    /// `ports` ranges offered, inclusive.
    pub ports: Vec<(u64, u64)>,
    /// TEXT attributes (name, value), e.g. `("rack", "r1")`.
    pub attributes: Vec<(String, String)>,
    /// The agent's HTTP port; 0 picks a free one.
    pub port: u16,
    /// Resources reserved to roles, besides the unreserved ones above
    /// (static, or dynamic when a principal is given).
    pub reserved: Vec<Reserved>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            cpus: 2.0,
            mem: 1024.0,
            disk: 10000.0,
            ports: vec![(31000, 31100)],
            attributes: Vec::new(),
            port: 0,
            reserved: Vec::new(),
        }
    }
}

impl AgentConfig {
    /// Adds `amount` of scalar `name` reserved to `role`: a STATIC
    /// reservation, or a DYNAMIC one made by `principal`.
    pub fn with_reserved(
        mut self,
        name: impl Into<String>,
        amount: f64,
        role: impl Into<String>,
        principal: Option<&str>,
    ) -> Self {
        self.reserved.push(Reserved {
            name: name.into(),
            amount,
            role: role.into(),
            principal: principal.map(str::to_owned),
        });
        self
    }

    /// Adds a TEXT attribute.
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.push((name.into(), value.into()));
        self
    }
}

/// The whole simulated cluster. Every timer is configurable so that tests run
/// fast; the defaults are Mesos's.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// The agents, in order; agent ids end in `-S0`, `-S1`, ...
    pub agents: Vec<AgentConfig>,
    /// The master's port; 0 picks a free one.
    pub master_port: u16,
    /// Where executor sandboxes go. `None`: a fresh temporary directory,
    /// removed at shutdown.
    pub work_dir: Option<PathBuf>,
    /// SUBSCRIBED's `heartbeat_interval_seconds` and the HEARTBEAT period
    /// (Mesos: 15 s).
    pub heartbeat_interval: Duration,
    /// How often unused resources are offered (Mesos's allocation interval: 1 s).
    pub offer_interval: Duration,
    /// How often an unacknowledged status update is re-sent (Mesos: 10 s).
    pub update_retry_interval: Duration,
    /// The grace period between SHUTDOWN and SIGKILL when the ExecutorInfo
    /// does not give one (Mesos: 5 s).
    pub executor_shutdown_grace_period: Duration,
    /// When set, this master is not the leader: every scheduler call is
    /// answered 307 with `Location: //<leader>/api/v1/scheduler`.
    /// The value is `host:port`.
    pub redirect_to_leader: Option<String>,
    /// How often the simulator's clock checks timers (heartbeats, retries,
    /// filters, failover timeouts).
    pub tick: Duration,
    /// (principal, secret) pairs; when any is given, every scheduler call
    /// needs HTTP Basic authentication with one of them (Mesos's
    /// `--authenticate_http_frameworks` with `--credentials`).
    pub framework_credentials: Vec<(String, String)>,
    /// The roles frameworks may use (Mesos's `--roles`); `None`: any role.
    pub roles_whitelist: Option<Vec<String>>,
    /// Agents authenticate executors (`--authenticate_http_executors`): each
    /// gets a token in `MESOS_EXECUTOR_AUTHENTICATION_TOKEN` and every call
    /// without it is answered 401.
    pub authenticate_http_executors: bool,
    /// When set, the master and agents serve https (libprocess SSL) with a
    /// CA and certificate made at start and written here (`ca.pem`,
    /// `cert.pem`, `key.pem`); executors get `LIBPROCESS_SSL_ENABLED=true`
    /// and `LIBPROCESS_SSL_CA_FILE`, as an operator passes them.
    pub tls_dir: Option<PathBuf>,
    /// Variables every executor gets, like the agent's
    /// `--executor_environment_variables` (the Mesos ones win).
    pub executor_environment: Vec<(String, String)>,
    /// How long a restarted agent waits for its executors to subscribe
    /// again before it kills them; also their `MESOS_SUBSCRIPTION_BACKOFF_MAX`
    /// (Mesos's `--executor_reregistration_timeout`: 2 s).
    pub executor_reregistration_timeout: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            agents: vec![AgentConfig::default()],
            master_port: 0,
            work_dir: None,
            heartbeat_interval: Duration::from_secs(15),
            offer_interval: Duration::from_secs(1),
            update_retry_interval: Duration::from_secs(10),
            executor_shutdown_grace_period: Duration::from_secs(5),
            redirect_to_leader: None,
            tick: Duration::from_millis(50),
            framework_credentials: Vec::new(),
            roles_whitelist: None,
            authenticate_http_executors: false,
            tls_dir: None,
            executor_environment: Vec::new(),
            executor_reregistration_timeout: Duration::from_secs(2),
        }
    }
}

impl SimConfig {
    /// `n` default agents, the i-th with attribute `rack = r<i+1>`.
    pub fn with_agents(n: usize) -> Self {
        Self {
            agents: (0..n)
                .map(|i| AgentConfig::default().with_attribute("rack", format!("r{}", i + 1)))
                .collect(),
            ..Self::default()
        }
    }

    /// Short timers for tests: heartbeat 1 s, offers every 100 ms, update
    /// retries every 500 ms, shutdown grace 1 s.
    pub fn fast(mut self) -> Self {
        self.heartbeat_interval = Duration::from_secs(1);
        self.offer_interval = Duration::from_millis(100);
        self.update_retry_interval = Duration::from_millis(500);
        self.executor_shutdown_grace_period = Duration::from_secs(1);
        self.tick = Duration::from_millis(20);
        self
    }
}
