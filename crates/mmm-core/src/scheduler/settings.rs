//! What the state machine needs from the configuration.

use std::collections::BTreeMap;

use crate::config::{MirrorConfig, SchedulerConfig, SchedulerTuning, TopicSelection};

/// The most servers one `add` may create.
pub const MAX_ADD_PER_CALL: u32 = 1000;

/// The scheduler's settings, fixed for its lifetime.
#[derive(Clone, PartialEq)]
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

impl std::fmt::Debug for Settings {
    // The base configurations hold the operator's credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::kafka_props::Redacted;
        f.debug_struct("Settings")
            .field("executor_uris", &self.executor_uris)
            .field("executor_command", &self.executor_command)
            .field("consumer", &Redacted(&self.consumer))
            .field("producer", &Redacted(&self.producer))
            .field("mirror", &self.mirror)
            .field("tuning", &self.tuning)
            .field("max_add_per_call", &self.max_add_per_call)
            .finish()
    }
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

/// The exit code of the launch command when the fetched executor does not
/// match its sha256 (the code `sha256sum`'s own failures never use).
pub const EXECUTOR_CHECK_FAILED_EXIT: i32 = 86;

/// The shell command that runs `./<file>` only if its sha256 is `sha256`, so
/// that a file swapped on the wire or on the scheduler's disk never runs; on
/// a mismatch it says so on stderr and exits with
/// [`EXECUTOR_CHECK_FAILED_EXIT`]. Mesos runs it with `sh -c` in the sandbox.
/// `None` when `file` or `sha256` could break out of the command's quoting.
pub fn checked_executor_command(file: &str, sha256: &str) -> Option<String> {
    let plain = |s: &str, extra: &[u8]| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    };
    let hex = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
    if !plain(file, b"._-") || file.starts_with('-') || !hex {
        return None;
    }
    Some(format!(
        "echo '{sha256}  {file}' | sha256sum -c --status - || \
         {{ echo 'mmm: the fetched {file} does not match sha256 {sha256}: not running it' >&2; \
         exit {EXECUTOR_CHECK_FAILED_EXIT}; }}; exec ./{file}"
    ))
}

/// Why an executor ended, when its exit says more than a number: `status`
/// is the wait status Mesos reports in FAILURE.
pub fn executor_exit_reason(status: i32) -> Option<&'static str> {
    let exited = status & 0x7f == 0;
    let code = (status >> 8) & 0xff;
    (exited && code == EXECUTOR_CHECK_FAILED_EXIT).then_some(
        "the executor fetched into the sandbox does not match the sha256 the scheduler \
         verified; it was not run",
    )
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_command_quotes_only_plain_names_and_hashes() {
        let sha = "a".repeat(64);
        let command = checked_executor_command("mmm-executor", &sha).expect("plain");
        assert!(command.starts_with(&format!("echo '{sha}  mmm-executor' | sha256sum -c")));
        assert!(command.ends_with("exec ./mmm-executor"), "{command}");
        for (file, hash) in [
            ("mmm executor", sha.as_str()),
            ("x';rm -rf /;'", sha.as_str()),
            ("-c", sha.as_str()),
            ("mmm-executor", "abc"),
            ("mmm-executor", &"g".repeat(64)),
        ] {
            assert_eq!(checked_executor_command(file, hash), None, "{file} {hash}");
        }
    }

    #[test]
    fn only_the_check_exit_code_is_explained() {
        assert!(executor_exit_reason(EXECUTOR_CHECK_FAILED_EXIT << 8).is_some());
        assert_eq!(executor_exit_reason(1 << 8), None);
        // killed by signal 86 & 0x7f is not an exit
        assert_eq!(executor_exit_reason(EXECUTOR_CHECK_FAILED_EXIT), None);
    }
}
