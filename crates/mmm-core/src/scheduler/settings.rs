//! What the state machine needs from the configuration.

use std::collections::BTreeMap;

use crate::config::{MirrorConfig, SchedulerConfig, SchedulerTuning, TopicSelection};

/// The most servers one `add` may create.
pub const MAX_ADD_PER_CALL: u32 = 1000;

/// The scheduler's settings, fixed for its lifetime.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// URIs Mesos fetches into the sandbox (the executor binary first).
    pub executor_uris: Vec<String>,
    /// The command that starts the executor in the sandbox.
    pub executor_command: String,
    /// The base consumer configuration (librdkafka names).
    pub consumer: BTreeMap<String, String>,
    /// The base producer configuration (librdkafka names).
    pub producer: BTreeMap<String, String>,
    /// Mirroring defaults for tasks added without their own settings.
    pub mirror: MirrorConfig,
    /// Lifecycle tuning: attempts, backoff, refuse filter, timeouts, constraints.
    pub tuning: SchedulerTuning,
    /// The most servers one `add` may create.
    pub max_add_per_call: u32,
    /// The executor's own cpus, beside its task's.
    pub executor_cpus: f64,
    /// The executor's own memory (MB), beside its task's.
    pub executor_mem: f64,
}

impl Settings {
    /// Settings from the validated configuration, the mapped Kafka
    /// configurations and the executor's download URIs.
    pub fn from_config(
        config: &SchedulerConfig,
        consumer: BTreeMap<String, String>,
        producer: BTreeMap<String, String>,
        executor_uris: Vec<String>,
    ) -> Settings {
        Settings {
            executor_uris,
            executor_command: DEFAULT_EXECUTOR_COMMAND.to_owned(),
            consumer,
            producer,
            mirror: config.mirror.clone(),
            tuning: config.scheduler.clone(),
            max_add_per_call: MAX_ADD_PER_CALL,
            executor_cpus: config.executor.cpus,
            executor_mem: config.executor.mem,
        }
    }
}

/// The command that runs the executor fetched into the sandbox.
pub const DEFAULT_EXECUTOR_COMMAND: &str = "./mmm-executor";

impl Default for Settings {
    fn default() -> Self {
        Settings {
            executor_uris: Vec::new(),
            executor_command: DEFAULT_EXECUTOR_COMMAND.to_owned(),
            consumer: BTreeMap::new(),
            producer: BTreeMap::new(),
            mirror: MirrorConfig::defaults_with(TopicSelection::List(Vec::new())),
            tuning: SchedulerTuning::default(),
            max_add_per_call: MAX_ADD_PER_CALL,
            executor_cpus: crate::config::DEFAULT_EXECUTOR_CPUS,
            executor_mem: crate::config::DEFAULT_EXECUTOR_MEM,
        }
    }
}
