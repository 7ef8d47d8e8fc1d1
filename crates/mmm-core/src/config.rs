//! The scheduler's configuration: the TOML file of the contract, and the
//! original framework's `mmm.properties` as a compatibility path.
//!
//! Functions here parse strings; the caller reads the file and passes its
//! name so every error can name it.

use std::path::PathBuf;

use toml::{Table, Value};

use crate::constraints::{Constraint, Pattern};
use crate::properties::{Properties, PropertiesError};
use crate::task_data::{
    GroupSelection, DEFAULT_OFFSET_SYNC_TOPIC, DEFAULT_STALL_TIMEOUT_MS,
    DEFAULT_SYNC_GROUPS_INTERVAL_MS,
};

/// The validated scheduler configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerConfig {
    /// `[mesos]`: how to reach the master and who the framework is.
    pub mesos: MesosConfig,
    /// `[api]`: the REST API.
    pub api: ApiConfig,
    /// `[mirror]`: defaults for tasks added without their own settings.
    pub mirror: MirrorConfig,
    /// `[storage] path`: where the cluster state is kept.
    pub storage: StorageSpec,
    /// `[storage] zk_auth_file`: `user:password` for ZooKeeper digest
    /// authentication; the state and lock znodes are then creator-only.
    pub zk_auth_file: Option<PathBuf>,
    /// `[executor]`: what is served to executors.
    pub executor: ExecutorConfig,
    /// `[scheduler]`: task lifecycle tuning (all optional).
    pub scheduler: SchedulerTuning,
}

/// `[mesos]`.
#[derive(Debug, Clone, PartialEq)]
pub struct MesosConfig {
    /// `master`: where the master is.
    pub master: MasterSpec,
    /// `framework_name` [mirror-maker-mesos].
    pub framework_name: String,
    /// `user`: the user tasks run as; `None` means the user running the scheduler.
    pub user: Option<String>,
    /// `failover_timeout_secs` [30 days]: how long Mesos keeps the tasks while the scheduler is away.
    pub failover_timeout_secs: u64,
    /// `principal`: for HTTP basic auth to the master.
    pub principal: Option<String>,
    /// `secret_file`: the file holding the principal's secret.
    pub secret_file: Option<PathBuf>,
    /// `role`: the Mesos role to register with [*].
    pub role: Option<String>,
    /// `roles`: several roles, registered with MULTI_ROLE (instead of `role`).
    pub roles: Vec<String>,
    /// `master_scheme` ["http"]: "https" reaches masters written as
    /// host:port and leaders found in ZooKeeper over TLS.
    pub master_tls: bool,
    /// `ca_file`: PEM certificates trusted for https masters besides the
    /// system's roots (a private CA).
    pub ca_file: Option<PathBuf>,
}

/// `[api]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiConfig {
    /// `bind` [127.0.0.1:7000]: host:port of the REST API, status page and downloads (port 0:
    /// any free port, logged at start).
    pub bind: String,
    /// `advertised_url`: what executors and the CLI reach; derived from bind when absent.
    pub advertised_url: Option<String>,
    /// `token_file`: when set, mutating calls need this bearer token.
    pub token_file: Option<PathBuf>,
    /// `insecure` [false]: allow a non-loopback `bind` without a token.
    pub insecure: bool,
    /// `allowed_hosts`: more names (`host` or `host:port`) requests may use.
    pub allowed_hosts: Vec<String>,
    /// `tls_cert` and `tls_key`: PEM files; when set the API, the page and
    /// `dist/` are served over TLS and the URIs are https.
    pub tls: Option<TlsFiles>,
}

/// The server's certificate chain and private key, PEM.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsFiles {
    /// `tls_cert`.
    pub cert: PathBuf,
    /// `tls_key` (owner-only).
    pub key: PathBuf,
}

/// Which topics to mirror.
#[derive(Debug, Clone, PartialEq)]
pub enum TopicSelection {
    /// These topics.
    List(Vec<String>),
    /// Every topic matching this regex.
    Regex(Pattern),
}

pub use crate::task_data::Partitioning;

/// `[mirror]`.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorConfig {
    /// `topics` or `topics_regex` (exactly one).
    pub topics: TopicSelection,
    /// `offset_commit_interval_ms` [60000].
    pub offset_commit_interval_ms: u64,
    /// `partitioning` ["preserve"]: "preserve" or "hash".
    pub partitioning: Partitioning,
    /// `target_topic_prefix` [""]: put before each target topic name.
    pub target_topic_prefix: String,
    /// `target_topic_suffix` [""]: put after each target topic name.
    pub target_topic_suffix: String,
    /// `create_topics` [true]: create missing target topics.
    pub create_topics: bool,
    /// `cpus` [0.2]: CPUs of a task added without its own.
    pub cpus: f64,
    /// `mem` [256]: memory (MB) of a task added without its own.
    pub mem: f64,
    /// `replication_factor` [the target broker's default]: of created target topics.
    pub replication_factor: Option<u16>,
    /// `stall_timeout_ms` [300000]: a partition stuck on a persistent error this long fails the task.
    pub stall_timeout_ms: u64,
    /// `provenance` [true]: mark mirrored records with their origin cluster
    /// and never mirror a record back to the cluster it came from.
    pub provenance: bool,
    /// `source_cluster_alias` [the source's cluster id]: the origin name written.
    pub source_cluster_alias: Option<String>,
    /// `target_cluster_alias` [the target's cluster id]: the target's name
    /// in provenance headers; records carrying it are not mirrored.
    pub target_cluster_alias: Option<String>,
    /// `offset_sync_topic` [mmm-offset-syncs]: compacted target topic of the
    /// offset mapping; "" writes none.
    pub offset_sync_topic: String,
    /// `sync_groups` [none]: consumer groups whose offsets are translated to
    /// the target; an array of ids or a regex string.
    pub sync_groups: GroupSelection,
    /// `sync_groups_interval_ms` [10000]: how often groups are synced.
    pub sync_groups_interval_ms: u64,
}

/// `[executor]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorConfig {
    /// `dist_dir` [dist]: the files served to executors.
    pub dist_dir: PathBuf,
    /// `cpus` [0.1]: what the executor itself asks for, beside its task's.
    pub cpus: f64,
    /// `mem` [32]: the executor's own memory (MB), beside its task's.
    pub mem: f64,
}

/// `[scheduler]`: optional tuning of the task lifecycle.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerTuning {
    /// `max_launch_attempts` [5]: launches without reaching RUNNING before a server is Failed.
    pub max_launch_attempts: u32,
    /// `relaunch_backoff_ms` [2000]: the first relaunch delay; doubles per attempt.
    pub relaunch_backoff_ms: u64,
    /// `relaunch_backoff_max_ms` [120000]: the longest relaunch delay.
    pub relaunch_backoff_max_ms: u64,
    /// `refuse_seconds` [5]: how long a declined offer's resources stay away.
    pub refuse_seconds: f64,
    /// `reconcile_timeout_ms` [30000]: re-send explicit reconciliation after
    /// this (doubling up to a cap), and ask about a launch not confirmed by then.
    pub reconcile_timeout_ms: u64,
    /// `reconcile_interval_secs` [900]: how often implicit reconciliation runs.
    pub reconcile_interval_secs: u64,
    /// `unreachable_timeout_ms` [300000]: how long an unreachable task is awaited before a relaunch.
    pub unreachable_timeout_ms: u64,
    /// `shutdown_grace_period_ms` [30000]: the executor's time to stop after a kill.
    pub shutdown_grace_period_ms: u64,
    /// `constraints` [[]]: placement constraints, e.g. "hostname:unique".
    pub constraints: Vec<Constraint>,
    /// `healthy_after_ms` [600000]: how long a task must run healthy before
    /// its launch attempts are forgotten.
    pub healthy_after_ms: u64,
}

impl Default for SchedulerTuning {
    fn default() -> Self {
        SchedulerTuning {
            max_launch_attempts: 5,
            relaunch_backoff_ms: 2_000,
            relaunch_backoff_max_ms: 120_000,
            refuse_seconds: 5.0,
            reconcile_timeout_ms: 30_000,
            reconcile_interval_secs: 900,
            unreachable_timeout_ms: 300_000,
            shutdown_grace_period_ms: 30_000,
            constraints: Vec::new(),
            healthy_after_ms: 600_000,
        }
    }
}

/// One master endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterEndpoint {
    /// Whether to use https.
    pub tls: bool,
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    /// Port [5050].
    pub port: u16,
}

impl MasterEndpoint {
    /// The base URL, e.g. `http://127.0.0.1:5050`.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Where the Mesos master is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterSpec {
    /// One or more masters tried in order (the leader redirects).
    Direct(Vec<MasterEndpoint>),
    /// The leader as recorded in ZooKeeper.
    ZooKeeper {
        /// host:port of each ZooKeeper server.
        hosts: Vec<String>,
        /// The znode path, e.g. "/mesos".
        path: String,
    },
}

/// Where the cluster state is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageSpec {
    /// A local JSON file.
    File(PathBuf),
    /// A ZooKeeper znode.
    ZooKeeper {
        /// host:port of each ZooKeeper server.
        hosts: Vec<String>,
        /// The znode path, e.g. "/mmm".
        path: String,
    },
}

/// A configuration that cannot be used; every variant names file and key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// Not valid TOML.
    #[error("{file}: invalid TOML: {message}")]
    Syntax {
        /// The file name given by the caller.
        file: String,
        /// The parser's explanation, with line and column.
        message: String,
    },
    /// A key this version does not know.
    #[error("{file}: unknown key {key}")]
    UnknownKey {
        /// The file name given by the caller.
        file: String,
        /// The key, e.g. "[api].bnd".
        key: String,
    },
    /// A key whose value has the wrong type.
    #[error("{file}: {key}: expected {expected}, found {found}")]
    WrongType {
        /// The file name given by the caller.
        file: String,
        /// The key, e.g. "[mesos].failover_timeout_secs".
        key: String,
        /// The type wanted.
        expected: &'static str,
        /// The type found.
        found: String,
    },
    /// A required key is absent.
    #[error("{file}: missing {key}")]
    Missing {
        /// The file name given by the caller.
        file: String,
        /// The key.
        key: String,
    },
    /// A value of the right type that is not acceptable.
    #[error("{file}: {key}: {problem}")]
    Invalid {
        /// The file name given by the caller.
        file: String,
        /// The key.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// A legacy properties file that does not parse.
    #[error(transparent)]
    Properties(#[from] PropertiesError),
}

/// The sections and keys of the TOML file.
const SCHEMA: &[(&str, &[&str])] = &[
    (
        "mesos",
        &[
            "master",
            "framework_name",
            "user",
            "failover_timeout_secs",
            "principal",
            "secret_file",
            "role",
            "roles",
            "master_scheme",
            "ca_file",
        ],
    ),
    (
        "api",
        &[
            "bind",
            "advertised_url",
            "token_file",
            "insecure",
            "allowed_hosts",
            "tls_cert",
            "tls_key",
        ],
    ),
    (
        "mirror",
        &[
            "topics",
            "topics_regex",
            "offset_commit_interval_ms",
            "partitioning",
            "target_topic_prefix",
            "target_topic_suffix",
            "create_topics",
            "cpus",
            "mem",
            "replication_factor",
            "stall_timeout_ms",
            "provenance",
            "source_cluster_alias",
            "target_cluster_alias",
            "offset_sync_topic",
            "sync_groups",
            "sync_groups_interval_ms",
        ],
    ),
    ("storage", &["path", "zk_auth_file"]),
    ("executor", &["dist_dir", "cpus", "mem"]),
    (
        "scheduler",
        &[
            "max_launch_attempts",
            "relaunch_backoff_ms",
            "relaunch_backoff_max_ms",
            "refuse_seconds",
            "reconcile_timeout_ms",
            "reconcile_interval_secs",
            "unreachable_timeout_ms",
            "shutdown_grace_period_ms",
            "constraints",
            "healthy_after_ms",
        ],
    ),
];

/// Default `[mesos] framework_name`.
pub const DEFAULT_FRAMEWORK_NAME: &str = "mirror-maker-mesos";
/// Default `[mesos] failover_timeout_secs` (30 days).
pub const DEFAULT_FAILOVER_TIMEOUT_SECS: u64 = 30 * 24 * 3600;
/// Default `[api] bind`.
pub const DEFAULT_API_BIND: &str = "127.0.0.1:7000";
/// Default `[mirror] offset_commit_interval_ms`.
pub const DEFAULT_OFFSET_COMMIT_INTERVAL_MS: u64 = 60_000;
/// Default `[storage] path`.
pub const DEFAULT_STORAGE_PATH: &str = "mmm-state.json";
/// Default `[executor] dist_dir`.
pub const DEFAULT_DIST_DIR: &str = "dist";
/// Default `[mirror] cpus`, as in the original framework.
pub const DEFAULT_CPUS: f64 = 0.2;
/// Default `[mirror] mem`, as in the original framework.
pub const DEFAULT_MEM: f64 = 256.0;
/// Default `[executor] cpus`: the executor's own share, as Mesos gives its own executors.
pub const DEFAULT_EXECUTOR_CPUS: f64 = 0.1;
/// Default `[executor] mem` (MB).
pub const DEFAULT_EXECUTOR_MEM: f64 = 32.0;

/// Reads typed values from one section, naming file and key in errors.
struct Section<'a> {
    file: &'a str,
    name: &'a str,
    table: Option<&'a Table>,
}

impl<'a> Section<'a> {
    fn key(&self, key: &str) -> String {
        format!("[{}].{key}", self.name)
    }

    fn wrong(&self, key: &str, expected: &'static str, found: &Value) -> ConfigError {
        ConfigError::WrongType {
            file: self.file.to_owned(),
            key: self.key(key),
            expected,
            found: describe(found),
        }
    }

    fn invalid(&self, key: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_owned(),
            key: self.key(key),
            problem: problem.into(),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.table.and_then(|t| t.get(key))
    }

    fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.wrong(key, "a string", other)),
        }
    }

    fn non_empty_string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.string(key)? {
            Some(s) if s.trim().is_empty() => Err(self.invalid(key, "must not be empty")),
            other => Ok(other),
        }
    }

    fn u64(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Integer(i)) => u64::try_from(*i)
                .map_err(|_| self.invalid(key, format!("must not be negative, got {i}"))),
            Some(other) => Err(self.wrong(key, "a non-negative integer", other)),
        }
    }

    fn positive_u64(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        match self.u64(key, default)? {
            0 => Err(self.invalid(key, "must be greater than 0")),
            n => Ok(n),
        }
    }

    fn positive_f64(&self, key: &str, default: f64) -> Result<f64, ConfigError> {
        let v = match self.get(key) {
            None => return Ok(default),
            Some(Value::Float(f)) => *f,
            Some(Value::Integer(i)) => *i as f64,
            Some(other) => return Err(self.wrong(key, "a number", other)),
        };
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(self.invalid(key, format!("must be a positive number, got {v}")))
        }
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Boolean(b)) => Ok(*b),
            Some(other) => Err(self.wrong(key, "true or false", other)),
        }
    }

    fn strings(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(self.wrong(key, "an array of strings", other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.wrong(key, "an array of strings", other)),
        }
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("the string {s:?}"),
        Value::Integer(i) => format!("the integer {i}"),
        Value::Float(f) => format!("the number {f}"),
        Value::Boolean(b) => format!("the boolean {b}"),
        Value::Datetime(d) => format!("the date {d}"),
        Value::Array(_) => "an array".into(),
        Value::Table(_) => "a table".into(),
    }
}

impl SchedulerConfig {
    /// Parses the TOML configuration `text`; `file` names it in errors.
    pub fn from_toml(file: &str, text: &str) -> Result<SchedulerConfig, ConfigError> {
        let root: Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax {
                file: file.to_owned(),
                message: e.to_string().trim_end().to_owned(),
            })?;
        check_keys(file, &root)?;
        let section = |name: &'static str| -> Result<Section<'_>, ConfigError> {
            Ok(Section {
                file,
                name,
                table: match root.get(name) {
                    None => None,
                    Some(Value::Table(t)) => Some(t),
                    Some(other) => {
                        return Err(ConfigError::WrongType {
                            file: file.to_owned(),
                            key: format!("[{name}]"),
                            expected: "a table",
                            found: describe(other),
                        })
                    }
                },
            })
        };
        let mesos = parse_mesos(&section("mesos")?)?;
        let api = parse_api(&section("api")?)?;
        let mirror = parse_mirror(&section("mirror")?)?;
        let storage_section = section("storage")?;
        let storage = match storage_section.non_empty_string("path")? {
            None => StorageSpec::File(PathBuf::from(DEFAULT_STORAGE_PATH)),
            Some(path) => {
                StorageSpec::parse(&path).map_err(|p| storage_section.invalid("path", p))?
            }
        };
        let zk_auth_file = storage_section
            .non_empty_string("zk_auth_file")?
            .map(PathBuf::from);
        if zk_auth_file.is_some() && matches!(storage, StorageSpec::File(_)) {
            return Err(storage_section
                .invalid("zk_auth_file", "is only used with a zk:// path".to_string()));
        }
        let executor_section = section("executor")?;
        let executor = ExecutorConfig {
            dist_dir: PathBuf::from(
                executor_section
                    .non_empty_string("dist_dir")?
                    .unwrap_or_else(|| DEFAULT_DIST_DIR.to_owned()),
            ),
            cpus: executor_section.positive_f64("cpus", DEFAULT_EXECUTOR_CPUS)?,
            mem: executor_section.positive_f64("mem", DEFAULT_EXECUTOR_MEM)?,
        };
        let scheduler = parse_tuning(&section("scheduler")?)?;
        Ok(SchedulerConfig {
            mesos,
            api,
            mirror,
            storage,
            zk_auth_file,
            executor,
            scheduler,
        })
    }

    /// Parses the original framework's `mmm.properties` (mesos.master,
    /// mesos.framework.name, mesos.user, mmm.api, mmm.topics,
    /// mmm.offset.commit.interval.ms); everything else takes the defaults.
    pub fn from_legacy_properties(file: &str, text: &str) -> Result<SchedulerConfig, ConfigError> {
        let props = Properties::parse(file, text)?;
        let known = [
            "mesos.master",
            "mesos.framework.name",
            "mesos.user",
            "mmm.api",
            "mmm.api.token.file",
            "mmm.api.insecure",
            "mmm.topics",
            "mmm.offset.commit.interval.ms",
        ];
        if let Some((key, _)) = props.iter().find(|(k, _)| !known.contains(k)) {
            return Err(ConfigError::UnknownKey {
                file: file.to_owned(),
                key: key.to_owned(),
            });
        }
        let invalid = |key: &str, problem: String| ConfigError::Invalid {
            file: file.to_owned(),
            key: key.to_owned(),
            problem,
        };
        let required = |key: &str| {
            props
                .get(key)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ConfigError::Missing {
                    file: file.to_owned(),
                    key: key.to_owned(),
                })
        };
        let master =
            MasterSpec::parse(required("mesos.master")?).map_err(|p| invalid("mesos.master", p))?;
        let topics: Vec<String> = required("mmm.topics")?
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        let bind = match props.get("mmm.api").map(str::trim) {
            None | Some("") => DEFAULT_API_BIND.to_owned(),
            Some(api) => {
                check_host_port(api).map_err(|p| invalid("mmm.api", p))?;
                api.to_owned()
            }
        };
        let token_file = props
            .get("mmm.api.token.file")
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(PathBuf::from);
        let insecure = match props.get("mmm.api.insecure").map(str::trim) {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(invalid(
                    "mmm.api.insecure",
                    format!("expected true or false, found {other:?}"),
                ))
            }
        };
        let interval = match props.get("mmm.offset.commit.interval.ms").map(str::trim) {
            None | Some("") => DEFAULT_OFFSET_COMMIT_INTERVAL_MS,
            Some(v) => v.parse::<u64>().ok().filter(|&n| n > 0).ok_or_else(|| {
                invalid(
                    "mmm.offset.commit.interval.ms",
                    format!("expected a positive integer, found {v:?}"),
                )
            })?,
        };
        let topics = check_topics(topics).map_err(|p| invalid("mmm.topics", p))?;
        Ok(SchedulerConfig {
            mesos: MesosConfig {
                master,
                framework_name: props
                    .get("mesos.framework.name")
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .unwrap_or(DEFAULT_FRAMEWORK_NAME)
                    .to_owned(),
                user: props
                    .get("mesos.user")
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
                failover_timeout_secs: DEFAULT_FAILOVER_TIMEOUT_SECS,
                principal: None,
                secret_file: None,
                role: None,
                roles: Vec::new(),
                master_tls: false,
                ca_file: None,
            },
            api: ApiConfig {
                bind,
                advertised_url: None,
                token_file,
                insecure,
                allowed_hosts: Vec::new(),
                tls: None,
            },
            mirror: MirrorConfig {
                topics: TopicSelection::List(topics),
                offset_commit_interval_ms: interval,
                ..MirrorConfig::defaults_with(TopicSelection::List(Vec::new()))
            },
            storage: StorageSpec::File(PathBuf::from(DEFAULT_STORAGE_PATH)),
            zk_auth_file: None,
            executor: ExecutorConfig {
                dist_dir: PathBuf::from(DEFAULT_DIST_DIR),
                cpus: DEFAULT_EXECUTOR_CPUS,
                mem: DEFAULT_EXECUTOR_MEM,
            },
            scheduler: SchedulerTuning::default(),
        })
    }

    /// Parses `text` as legacy properties when `file` ends in `.properties`,
    /// as TOML otherwise.
    pub fn from_file_text(file: &str, text: &str) -> Result<SchedulerConfig, ConfigError> {
        if file.ends_with(".properties") {
            Self::from_legacy_properties(file, text)
        } else {
            Self::from_toml(file, text)
        }
    }
}

impl MirrorConfig {
    /// The defaults of every optional `[mirror]` key, with `topics`.
    pub fn defaults_with(topics: TopicSelection) -> MirrorConfig {
        MirrorConfig {
            topics,
            offset_commit_interval_ms: DEFAULT_OFFSET_COMMIT_INTERVAL_MS,
            partitioning: Partitioning::Preserve,
            target_topic_prefix: String::new(),
            target_topic_suffix: String::new(),
            create_topics: true,
            cpus: DEFAULT_CPUS,
            mem: DEFAULT_MEM,
            replication_factor: None,
            stall_timeout_ms: DEFAULT_STALL_TIMEOUT_MS,
            provenance: true,
            source_cluster_alias: None,
            target_cluster_alias: None,
            offset_sync_topic: DEFAULT_OFFSET_SYNC_TOPIC.to_owned(),
            sync_groups: GroupSelection::None,
            sync_groups_interval_ms: DEFAULT_SYNC_GROUPS_INTERVAL_MS,
        }
    }
}

fn check_keys(file: &str, root: &Table) -> Result<(), ConfigError> {
    for (name, value) in root {
        let Some((_, keys)) = SCHEMA.iter().find(|(s, _)| s == name) else {
            return Err(ConfigError::UnknownKey {
                file: file.to_owned(),
                key: if value.is_table() {
                    format!("[{name}]")
                } else {
                    name.clone()
                },
            });
        };
        if let Value::Table(table) = value {
            if let Some(key) = table.keys().find(|k| !keys.contains(&k.as_str())) {
                return Err(ConfigError::UnknownKey {
                    file: file.to_owned(),
                    key: format!("[{name}].{key}"),
                });
            }
        }
    }
    Ok(())
}

fn parse_mesos(s: &Section<'_>) -> Result<MesosConfig, ConfigError> {
    let master_text = s
        .non_empty_string("master")?
        .ok_or_else(|| ConfigError::Missing {
            file: s.file.to_owned(),
            key: s.key("master"),
        })?;
    let mut master = MasterSpec::parse(&master_text).map_err(|p| s.invalid("master", p))?;
    let master_tls = match s.non_empty_string("master_scheme")?.as_deref() {
        None | Some("http") => false,
        Some("https") => true,
        Some(other) => {
            return Err(s.invalid(
                "master_scheme",
                format!("{other:?}: expected \"http\" or \"https\""),
            ))
        }
    };
    if let (true, MasterSpec::Direct(endpoints)) = (master_tls, &mut master) {
        for (endpoint, item) in endpoints.iter_mut().zip(master_text.split(',')) {
            if item.trim().starts_with("http://") {
                return Err(s.invalid(
                    "master_scheme",
                    format!("\"https\" conflicts with the master URL {:?}", item.trim()),
                ));
            }
            endpoint.tls = true;
        }
    }
    Ok(MesosConfig {
        master,
        framework_name: s
            .non_empty_string("framework_name")?
            .unwrap_or_else(|| DEFAULT_FRAMEWORK_NAME.to_owned()),
        user: s.string("user")?.filter(|u| !u.trim().is_empty()),
        failover_timeout_secs: s.u64("failover_timeout_secs", DEFAULT_FAILOVER_TIMEOUT_SECS)?,
        principal: s.non_empty_string("principal")?,
        secret_file: s.non_empty_string("secret_file")?.map(PathBuf::from),
        role: s.non_empty_string("role")?,
        roles: parse_roles(s)?,
        master_tls,
        ca_file: s.non_empty_string("ca_file")?.map(PathBuf::from),
    })
}

/// `roles`: a non-empty list of distinct, non-empty role names, not with `role`.
fn parse_roles(s: &Section<'_>) -> Result<Vec<String>, ConfigError> {
    let Some(roles) = s.strings("roles")? else {
        return Ok(Vec::new());
    };
    if s.get("role").is_some() {
        return Err(s.invalid("roles", "set either role or roles, not both"));
    }
    if roles.is_empty() {
        return Err(s.invalid("roles", "needs at least one role"));
    }
    for (i, role) in roles.iter().enumerate() {
        if role.trim().is_empty() || role.chars().any(char::is_whitespace) {
            return Err(s.invalid("roles", format!("{role:?} is not a role name")));
        }
        if roles[..i].contains(role) {
            return Err(s.invalid("roles", format!("{role:?} is listed twice")));
        }
    }
    Ok(roles)
}

fn parse_api(s: &Section<'_>) -> Result<ApiConfig, ConfigError> {
    let bind = s
        .non_empty_string("bind")?
        .unwrap_or_else(|| DEFAULT_API_BIND.to_owned());
    check_bind(&bind).map_err(|p| s.invalid("bind", p))?;
    let advertised_url = s.non_empty_string("advertised_url")?;
    if let Some(url) = &advertised_url {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| {
                s.invalid(
                    "advertised_url",
                    format!("{url:?} must start with http:// or https://"),
                )
            })?;
        if rest.trim_end_matches('/').is_empty() {
            return Err(s.invalid("advertised_url", format!("{url:?} has no host")));
        }
    }
    let token_file = s.non_empty_string("token_file")?.map(PathBuf::from);
    let insecure = s.bool("insecure", false)?;
    let allowed_hosts = s.strings("allowed_hosts")?.unwrap_or_default();
    if let Some(bad) = allowed_hosts
        .iter()
        .find(|h| h.trim().is_empty() || h.contains(['/', ' ', '@']))
    {
        return Err(s.invalid(
            "allowed_hosts",
            format!("{bad:?} is not a host or host:port"),
        ));
    }
    let tls = match (
        s.non_empty_string("tls_cert")?,
        s.non_empty_string("tls_key")?,
    ) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: PathBuf::from(cert),
            key: PathBuf::from(key),
        }),
        (None, None) => None,
        (Some(_), None) => return Err(s.invalid("tls_key", "is needed with tls_cert")),
        (None, Some(_)) => return Err(s.invalid("tls_cert", "is needed with tls_key")),
    };
    if let (Some(_), Some(url)) = (&tls, &advertised_url) {
        if !url.starts_with("https://") {
            return Err(s.invalid(
                "advertised_url",
                format!("{url:?} must be https:// when tls_cert is set"),
            ));
        }
    }
    Ok(ApiConfig {
        bind,
        advertised_url,
        token_file,
        insecure,
        allowed_hosts,
        tls,
    })
}

/// Whether `bind` (host:port) listens on a loopback address only.
pub fn is_loopback_bind(bind: &str) -> bool {
    // An address with port 0 (any free port) is still an address.
    if let Ok(addr) = bind.parse::<std::net::SocketAddr>() {
        return addr.ip().is_loopback();
    }
    if let Some(host) = bind.strip_suffix(":0") {
        return host.eq_ignore_ascii_case("localhost");
    }
    match split_host_port(bind) {
        Ok((host, _)) => {
            host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Err(_) => false,
    }
}

impl ApiConfig {
    /// Refuses an API reachable from other hosts without a token, unless
    /// `insecure` says so: anyone who reaches it could read and change the
    /// mirroring tasks. Returns whether it runs insecure.
    pub fn check_exposure(&self) -> Result<bool, String> {
        if self.token_file.is_some() || is_loopback_bind(&self.bind) {
            return Ok(false);
        }
        if self.insecure {
            return Ok(true);
        }
        Err(format!(
            "[api] bind {:?} is reachable from other hosts but the API has no token: anyone \
             who can reach it could read and change the mirroring tasks; set [api] token_file \
             (mmm.api.token.file in mmm.properties), or insecure = true (mmm.api.insecure) \
             to run without one",
            self.bind
        ))
    }
}

fn check_topics(topics: Vec<String>) -> Result<Vec<String>, String> {
    if topics.is_empty() {
        return Err("needs at least one topic".into());
    }
    if let Some(bad) = topics.iter().find(|t| !valid_topic_name(t)) {
        return Err(format!(
            "{bad:?} is not a valid Kafka topic name (1-249 of a-z A-Z 0-9 . _ -)"
        ));
    }
    Ok(topics)
}

/// Whether Kafka accepts `name` as a topic name.
pub fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn parse_mirror(s: &Section<'_>) -> Result<MirrorConfig, ConfigError> {
    let topics = match (s.strings("topics")?, s.string("topics_regex")?) {
        (Some(_), Some(_)) => {
            return Err(s.invalid("topics", "set either topics or topics_regex, not both"))
        }
        (None, None) => {
            return Err(ConfigError::Missing {
                file: s.file.to_owned(),
                key: "[mirror].topics or [mirror].topics_regex".into(),
            })
        }
        (Some(list), None) => {
            TopicSelection::List(check_topics(list).map_err(|p| s.invalid("topics", p))?)
        }
        (None, Some(regex)) => {
            if regex.is_empty() {
                return Err(s.invalid("topics_regex", "must not be empty"));
            }
            TopicSelection::Regex(
                Pattern::new(&regex)
                    .map_err(|e| s.invalid("topics_regex", format!("invalid regex: {e}")))?,
            )
        }
    };
    let partitioning = match s.string("partitioning")?.as_deref() {
        None | Some("preserve") => Partitioning::Preserve,
        Some("hash") => Partitioning::Hash,
        Some(other) => {
            return Err(s.invalid(
                "partitioning",
                format!("{other:?} is not \"preserve\" or \"hash\""),
            ))
        }
    };
    let affix = |key: &str| -> Result<String, ConfigError> {
        let value = s.string(key)?.unwrap_or_default();
        if !value.is_empty() && !valid_topic_name(&format!("x{value}")) {
            return Err(s.invalid(
                key,
                format!(
                    "{value:?} may only hold a-z A-Z 0-9 . _ - (it becomes part of topic names)"
                ),
            ));
        }
        Ok(value)
    };
    Ok(MirrorConfig {
        topics,
        target_topic_prefix: affix("target_topic_prefix")?,
        target_topic_suffix: affix("target_topic_suffix")?,
        offset_commit_interval_ms: s.positive_u64(
            "offset_commit_interval_ms",
            DEFAULT_OFFSET_COMMIT_INTERVAL_MS,
        )?,
        partitioning,
        create_topics: s.bool("create_topics", true)?,
        cpus: s.positive_f64("cpus", DEFAULT_CPUS)?,
        mem: s.positive_f64("mem", DEFAULT_MEM)?,
        replication_factor: match s.get("replication_factor") {
            None => None,
            Some(_) => {
                let rf = s.positive_u64("replication_factor", 1)?;
                Some(
                    u16::try_from(rf)
                        .ok()
                        .filter(|&rf| rf <= 32_767)
                        .ok_or_else(|| {
                            s.invalid("replication_factor", format!("{rf} is above 32767"))
                        })?,
                )
            }
        },
        stall_timeout_ms: s.positive_u64("stall_timeout_ms", DEFAULT_STALL_TIMEOUT_MS)?,
        provenance: s.bool("provenance", true)?,
        source_cluster_alias: cluster_alias(s, "source_cluster_alias")?,
        target_cluster_alias: cluster_alias(s, "target_cluster_alias")?,
        offset_sync_topic: match s.string("offset_sync_topic")? {
            None => DEFAULT_OFFSET_SYNC_TOPIC.to_owned(),
            Some(t) if t.is_empty() || valid_topic_name(&t) => t,
            Some(t) => {
                return Err(s.invalid(
                    "offset_sync_topic",
                    format!("{t:?} is not a topic name (1 to 249 of a-z A-Z 0-9 . _ -)"),
                ))
            }
        },
        sync_groups: parse_sync_groups(s, partitioning)?,
        sync_groups_interval_ms: s
            .positive_u64("sync_groups_interval_ms", DEFAULT_SYNC_GROUPS_INTERVAL_MS)?,
    })
}

/// `source_cluster_alias` or `target_cluster_alias`.
fn cluster_alias(s: &Section<'_>, key: &str) -> Result<Option<String>, ConfigError> {
    match s.string(key)? {
        None => Ok(None),
        Some(alias) => match crate::task_data::cluster_alias_problem(&alias) {
            Some(problem) => Err(s.invalid(key, problem)),
            None => Ok(Some(alias)),
        },
    }
}

/// `sync_groups`: an array of group ids, or one regex string.
fn parse_sync_groups(
    s: &Section<'_>,
    partitioning: Partitioning,
) -> Result<GroupSelection, ConfigError> {
    let groups = match s.get("sync_groups") {
        None => return Ok(GroupSelection::None),
        Some(Value::String(pattern)) => {
            if pattern.is_empty() {
                return Err(s.invalid("sync_groups", "the pattern must not be empty"));
            }
            Pattern::new(pattern)
                .map_err(|e| s.invalid("sync_groups", format!("invalid regex: {e}")))?;
            GroupSelection::Regex(pattern.clone())
        }
        Some(Value::Array(_)) => {
            let names = s.strings("sync_groups")?.unwrap_or_default();
            if names.iter().any(|n| n.trim().is_empty()) {
                return Err(s.invalid("sync_groups", "a group id cannot be empty"));
            }
            GroupSelection::List(names)
        }
        Some(other) => {
            return Err(s.wrong(
                "sync_groups",
                "an array of group ids or a regex string",
                other,
            ))
        }
    };
    if !groups.is_none() && partitioning != Partitioning::Preserve {
        return Err(s.invalid(
            "sync_groups",
            "offsets translate only with partitioning = \"preserve\"",
        ));
    }
    Ok(groups)
}

fn parse_tuning(s: &Section<'_>) -> Result<SchedulerTuning, ConfigError> {
    let d = SchedulerTuning::default();
    let attempts = s.positive_u64("max_launch_attempts", u64::from(d.max_launch_attempts))?;
    let max_launch_attempts = u32::try_from(attempts)
        .map_err(|_| s.invalid("max_launch_attempts", format!("{attempts} is too large")))?;
    let relaunch_backoff_ms = s.positive_u64("relaunch_backoff_ms", d.relaunch_backoff_ms)?;
    let relaunch_backoff_max_ms =
        s.positive_u64("relaunch_backoff_max_ms", d.relaunch_backoff_max_ms)?;
    if relaunch_backoff_max_ms < relaunch_backoff_ms {
        return Err(s.invalid(
            "relaunch_backoff_max_ms",
            format!(
                "{relaunch_backoff_max_ms} is below relaunch_backoff_ms ({relaunch_backoff_ms})"
            ),
        ));
    }
    let constraints = s
        .strings("constraints")?
        .unwrap_or_default()
        .iter()
        .map(|c| Constraint::parse(c).map_err(|p| s.invalid("constraints", p)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SchedulerTuning {
        max_launch_attempts,
        relaunch_backoff_ms,
        relaunch_backoff_max_ms,
        refuse_seconds: s.positive_f64("refuse_seconds", d.refuse_seconds)?,
        reconcile_timeout_ms: s.positive_u64("reconcile_timeout_ms", d.reconcile_timeout_ms)?,
        reconcile_interval_secs: s
            .positive_u64("reconcile_interval_secs", d.reconcile_interval_secs)?,
        unreachable_timeout_ms: s.u64("unreachable_timeout_ms", d.unreachable_timeout_ms)?,
        shutdown_grace_period_ms: s.u64("shutdown_grace_period_ms", d.shutdown_grace_period_ms)?,
        constraints,
        healthy_after_ms: s.u64("healthy_after_ms", d.healthy_after_ms)?,
    })
}

/// Checks `host:port` (IPv6 in brackets) and returns the port.
fn check_host_port(text: &str) -> Result<u16, String> {
    let (host, port) = split_host_port(text)?;
    let port = port.ok_or_else(|| format!("{text:?} has no port (expected host:port)"))?;
    if host.is_empty() {
        return Err(format!("{text:?} has no host (expected host:port)"));
    }
    Ok(port)
}

/// A listen address: `host:port`, where port 0 takes any free port (the scheduler logs the one it
/// bound; tests and the demo start it so, to never race for a port).
fn check_bind(text: &str) -> Result<(), String> {
    match text.strip_suffix(":0") {
        Some(host) if !host.is_empty() => check_host_port(&format!("{host}:1")).map(|_| ()),
        _ => check_host_port(text).map(|_| ()),
    }
}

/// Splits `host[:port]`, `[v6][:port]`; the port must be a number 1-65535.
fn split_host_port(text: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{text:?}: unclosed '['"))?;
        match after {
            "" => (host, None),
            p => (
                host,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("{text:?}: expected ':' after ']'"))?,
                ),
            ),
        }
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    if host
        .chars()
        .any(|c| c.is_whitespace() || c == '/' || c == '@')
    {
        return Err(format!("{text:?}: {host:?} is not a host name"));
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{text:?}: port {p:?} is not a number from 1 to 65535"))?,
        ),
    };
    Ok((host.to_owned(), port))
}

/// Parses `zk://h1:2181,h2:2181/path` into hosts and path.
fn parse_zk(text: &str) -> Result<(Vec<String>, String), String> {
    let rest = text
        .strip_prefix("zk://")
        .ok_or_else(|| format!("{text:?} does not start with zk://"))?;
    let (hosts, path) = rest
        .split_once('/')
        .ok_or_else(|| format!("{text:?} has no znode path (zk://host:port/path)"))?;
    let path = format!("/{}", path.trim_end_matches('/'));
    if path == "/" {
        return Err(format!("{text:?} has an empty znode path"));
    }
    if path.contains("//") {
        return Err(format!(
            "{text:?}: znode path {path:?} has an empty segment"
        ));
    }
    let hosts: Vec<String> = hosts
        .split(',')
        .map(|h| {
            let (host, port) = split_host_port(h.trim())?;
            if host.is_empty() {
                return Err(format!("{text:?}: empty ZooKeeper host"));
            }
            let port = port.unwrap_or(2181);
            Ok(if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            })
        })
        .collect::<Result<_, String>>()?;
    Ok((hosts, path))
}

impl MasterSpec {
    /// Parses `host:port`, `http(s)://host:port`, a comma list of either, or
    /// `zk://hosts/path`. A missing port means 5050.
    pub fn parse(text: &str) -> Result<MasterSpec, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the master address is empty".into());
        }
        if text.starts_with("zk://") {
            let (hosts, path) = parse_zk(text)?;
            return Ok(MasterSpec::ZooKeeper { hosts, path });
        }
        let endpoints = text
            .split(',')
            .map(|item| parse_endpoint(item.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MasterSpec::Direct(endpoints))
    }
}

fn parse_endpoint(item: &str) -> Result<MasterEndpoint, String> {
    if item.is_empty() {
        return Err("empty entry in the master list".into());
    }
    let (tls, rest) = if let Some(r) = item.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = item.strip_prefix("http://") {
        (false, r)
    } else if item.contains("://") {
        return Err(format!(
            "{item:?}: unsupported scheme (use host:port, http://, https:// or zk://)"
        ));
    } else {
        (false, item)
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('/') {
        return Err(format!("{item:?}: a master address has no path"));
    }
    let (host, port) = split_host_port(rest)?;
    if host.is_empty() {
        return Err(format!("{item:?} has no host"));
    }
    Ok(MasterEndpoint {
        tls,
        host,
        port: port.unwrap_or(5050),
    })
}

impl StorageSpec {
    /// Parses a file path or `zk://hosts/path`.
    pub fn parse(text: &str) -> Result<StorageSpec, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the storage path is empty".into());
        }
        if text.starts_with("zk://") {
            let (hosts, path) = parse_zk(text)?;
            return Ok(StorageSpec::ZooKeeper { hosts, path });
        }
        if text.contains("://") {
            return Err(format!(
                "{text:?}: unsupported scheme (use a file path or zk://)"
            ));
        }
        Ok(StorageSpec::File(PathBuf::from(text)))
    }
}
