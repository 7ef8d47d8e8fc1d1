//! The environment the Mesos agent gives an executor, read and checked once.

use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

/// A secret from the environment; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// How the executor reaches the agent over TLS, from libprocess's
/// `LIBPROCESS_SSL_*` variables (which operators pass to executors through
/// the agent's `--executor_environment_variables`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentTls {
    /// `LIBPROCESS_SSL_ENABLED`: the agent serves https.
    pub enabled: bool,
    /// `LIBPROCESS_SSL_CA_FILE`: PEM certificates trusted besides the system's.
    pub ca_file: Option<PathBuf>,
    /// `LIBPROCESS_SSL_CA_DIR`: a directory of PEM certificates trusted too.
    pub ca_dir: Option<PathBuf>,
    /// `LIBPROCESS_SSL_VERIFY_SERVER_CERT` (or its legacy name
    /// `LIBPROCESS_SSL_VERIFY_CERT`) set to false: accept any certificate.
    /// Unset, the certificate is verified (libprocess's default is not to).
    pub skip_verification: bool,
}

/// What the agent told the executor through its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct MesosEnv {
    /// `MESOS_FRAMEWORK_ID`.
    pub framework_id: String,
    /// `MESOS_EXECUTOR_ID`.
    pub executor_id: String,
    /// `MESOS_AGENT_ENDPOINT` (`ip:port`).
    pub agent_endpoint: String,
    /// `MESOS_SLAVE_ID` / `MESOS_AGENT_ID`, when given.
    pub agent_id: Option<String>,
    /// `MESOS_SANDBOX`, else `MESOS_DIRECTORY`: where `executor.log` goes.
    pub sandbox: Option<PathBuf>,
    /// `MESOS_CHECKPOINT=1`: survive an agent restart by re-subscribing.
    pub checkpoint: bool,
    /// `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD` [5secs].
    pub shutdown_grace_period: Duration,
    /// `MESOS_RECOVERY_TIMEOUT` [15mins]: how long to retry subscribing.
    pub recovery_timeout: Duration,
    /// `MESOS_SUBSCRIPTION_BACKOFF_MAX` [2secs]: the cap of the retry backoff.
    pub subscription_backoff_max: Duration,
    /// `MESOS_EXECUTOR_AUTHENTICATION_TOKEN`: sent as a Bearer token on every
    /// call when the agent authenticates executors.
    pub authentication_token: Option<Secret>,
    /// TLS to the agent.
    pub tls: AgentTls,
}

/// A missing or unreadable variable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EnvError {
    /// A variable the executor cannot work without.
    #[error("environment variable {0} is not set: this program is started by a Mesos agent as a custom executor")]
    Missing(&'static str),
    /// A variable with a value that does not parse.
    #[error("environment variable {name} has invalid value {value:?}: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
}

/// Parses a Mesos duration such as `5secs`, `500ms`, `2mins`, `1.5hrs`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| "a unit is missing (ns, us, ms, secs, mins, hrs, days, weeks)".to_owned())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{number:?} is not a number"))?;
    let seconds_per_unit = match unit {
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        "secs" => 1.0,
        "mins" => 60.0,
        "hrs" => 3600.0,
        "days" => 86_400.0,
        "weeks" => 604_800.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} (expected ns, us, ms, secs, mins, hrs, days or weeks)"
            ))
        }
    };
    Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|e| e.to_string())
}

impl MesosEnv {
    /// Reads the process environment.
    pub fn from_process() -> Result<Self, EnvError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `get` (the process environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let required = |name: &'static str| get(name).ok_or(EnvError::Missing(name));
        let duration = |name: &'static str, default: Duration| match get(name) {
            None => Ok(default),
            Some(value) => parse_duration(&value).map_err(|reason| EnvError::Invalid {
                name,
                value,
                reason,
            }),
        };
        let framework_id = required("MESOS_FRAMEWORK_ID")?;
        let executor_id = required("MESOS_EXECUTOR_ID")?;
        let agent_endpoint = required("MESOS_AGENT_ENDPOINT")?;
        if !agent_endpoint.contains(':') {
            return Err(EnvError::Invalid {
                name: "MESOS_AGENT_ENDPOINT",
                value: agent_endpoint,
                reason: "expected ip:port".into(),
            });
        }
        let flag = |name: &'static str| -> Result<Option<bool>, EnvError> {
            match get(name).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
                None => Ok(None),
                Some("1" | "true") => Ok(Some(true)),
                Some("0" | "false") => Ok(Some(false)),
                Some(other) => Err(EnvError::Invalid {
                    name,
                    value: other.to_owned(),
                    reason: "expected true or false".into(),
                }),
            }
        };
        let verify = match flag("LIBPROCESS_SSL_VERIFY_SERVER_CERT")? {
            Some(v) => Some(v),
            None => flag("LIBPROCESS_SSL_VERIFY_CERT")?,
        };
        let tls = AgentTls {
            enabled: flag("LIBPROCESS_SSL_ENABLED")?.unwrap_or(false),
            ca_file: get("LIBPROCESS_SSL_CA_FILE").map(PathBuf::from),
            ca_dir: get("LIBPROCESS_SSL_CA_DIR").map(PathBuf::from),
            skip_verification: verify == Some(false),
        };
        let checkpoint = match get("MESOS_CHECKPOINT").as_deref() {
            None | Some("0") | Some("false") => false,
            Some("1") | Some("true") => true,
            Some(other) => {
                return Err(EnvError::Invalid {
                    name: "MESOS_CHECKPOINT",
                    value: other.to_owned(),
                    reason: "expected 1 or 0".into(),
                })
            }
        };
        Ok(Self {
            framework_id,
            executor_id,
            agent_endpoint,
            agent_id: get("MESOS_SLAVE_ID").or_else(|| get("MESOS_AGENT_ID")),
            sandbox: get("MESOS_SANDBOX")
                .or_else(|| get("MESOS_DIRECTORY"))
                .map(PathBuf::from),
            checkpoint,
            shutdown_grace_period: duration(
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
                Duration::from_secs(5),
            )?,
            recovery_timeout: duration("MESOS_RECOVERY_TIMEOUT", Duration::from_secs(15 * 60))?,
            subscription_backoff_max: duration(
                "MESOS_SUBSCRIPTION_BACKOFF_MAX",
                Duration::from_secs(2),
            )?,
            authentication_token: get("MESOS_EXECUTOR_AUTHENTICATION_TOKEN").map(Secret),
            tls,
        })
    }

    /// The executor API's URL on the agent: https when libprocess SSL is on,
    /// as Mesos's executor library decides.
    pub fn executor_api_url(&self) -> String {
        let endpoint = self
            .agent_endpoint
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/');
        let scheme = if self.tls.enabled { "https" } else { "http" };
        format!("{scheme}://{endpoint}/api/v1/executor")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const BASE: &[(&str, &str)] = &[
        ("MESOS_FRAMEWORK_ID", "fw"),
        ("MESOS_EXECUTOR_ID", "ex"),
        ("MESOS_AGENT_ENDPOINT", "127.0.0.1:5051"),
    ];

    #[test]
    fn durations_in_mesos_format() {
        assert_eq!(parse_duration("5secs"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2mins"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5hrs"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("3days"), Ok(Duration::from_secs(3 * 86_400)));
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
        assert!(parse_duration("5").expect_err("no unit").contains("unit"));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("secs").is_err());
        assert!(parse_duration("1.2.3secs").is_err());
    }

    #[test]
    fn reads_the_agent_environment() {
        let mut pairs = BASE.to_vec();
        pairs.extend([
            ("MESOS_CHECKPOINT", "1"),
            ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "7secs"),
            ("MESOS_RECOVERY_TIMEOUT", "1mins"),
            ("MESOS_SUBSCRIPTION_BACKOFF_MAX", "250ms"),
            ("MESOS_SANDBOX", "/tmp/sb"),
            ("MESOS_SLAVE_ID", "agent-1"),
        ]);
        let e = MesosEnv::from_lookup(env(&pairs)).expect("valid");
        assert!(e.checkpoint);
        assert_eq!(e.shutdown_grace_period, Duration::from_secs(7));
        assert_eq!(e.recovery_timeout, Duration::from_secs(60));
        assert_eq!(e.subscription_backoff_max, Duration::from_millis(250));
        assert_eq!(e.sandbox, Some(PathBuf::from("/tmp/sb")));
        assert_eq!(e.agent_id.as_deref(), Some("agent-1"));
        assert_eq!(
            e.executor_api_url(),
            "http://127.0.0.1:5051/api/v1/executor"
        );
    }

    #[test]
    fn token_and_tls_settings_are_read() {
        let mut pairs = BASE.to_vec();
        pairs.extend([
            ("MESOS_EXECUTOR_AUTHENTICATION_TOKEN", "tok.en.sig"),
            ("LIBPROCESS_SSL_ENABLED", "true"),
            ("LIBPROCESS_SSL_CA_FILE", "/etc/ca.pem"),
            ("LIBPROCESS_SSL_VERIFY_CERT", "false"),
        ]);
        let e = MesosEnv::from_lookup(env(&pairs)).expect("valid");
        assert_eq!(
            e.authentication_token.as_ref().map(Secret::expose),
            Some("tok.en.sig")
        );
        assert!(!format!("{e:?}").contains("tok.en.sig"), "never printed");
        assert!(e.tls.enabled && e.tls.skip_verification);
        assert_eq!(e.tls.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(
            e.executor_api_url(),
            "https://127.0.0.1:5051/api/v1/executor"
        );
        // The newer name wins over the legacy one.
        pairs.push(("LIBPROCESS_SSL_VERIFY_SERVER_CERT", "1"));
        let e = MesosEnv::from_lookup(env(&pairs)).expect("valid");
        assert!(!e.tls.skip_verification);
        let mut pairs = BASE.to_vec();
        pairs.push(("LIBPROCESS_SSL_ENABLED", "sometimes"));
        let err = MesosEnv::from_lookup(env(&pairs)).expect_err("invalid");
        assert!(err.to_string().contains("LIBPROCESS_SSL_ENABLED"), "{err}");
    }

    #[test]
    fn defaults_apply_without_checkpointing() {
        let e = MesosEnv::from_lookup(env(BASE)).expect("valid");
        assert!(!e.checkpoint);
        assert!(e.authentication_token.is_none());
        assert_eq!(e.tls, AgentTls::default());
        assert_eq!(e.shutdown_grace_period, Duration::from_secs(5));
    }

    #[test]
    fn missing_and_invalid_variables_are_named() {
        let err = MesosEnv::from_lookup(env(&BASE[1..])).expect_err("missing");
        assert_eq!(err, EnvError::Missing("MESOS_FRAMEWORK_ID"));
        assert!(err.to_string().contains("MESOS_FRAMEWORK_ID"));
        let mut pairs = BASE.to_vec();
        pairs.push(("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "soon"));
        let err = MesosEnv::from_lookup(env(&pairs)).expect_err("invalid");
        assert!(err
            .to_string()
            .contains("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"));
        let mut pairs = BASE.to_vec();
        pairs.push(("MESOS_CHECKPOINT", "yes"));
        assert!(MesosEnv::from_lookup(env(&pairs)).is_err());
    }
}
