//! Reading and checking the three files the scheduler starts from, once,
//! before anything else happens.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use mmm_core::config::SchedulerConfig;
use mmm_core::kafka_props::{self, Role};
use mmm_core::properties::Properties;
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::BaseProducer;
use rdkafka::ClientConfig;
use thiserror::Error;

/// A start-up file that cannot be used.
#[derive(Debug, Error)]
pub enum StartupError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(#[from] mmm_core::config::ConfigError),
    #[error("{0}")]
    Properties(#[from] mmm_core::properties::PropertiesError),
    #[error("{0}")]
    KafkaProps(#[from] kafka_props::KafkaPropsError),
    #[error("{file}: {source}")]
    Guarantee {
        file: String,
        source: mmm_core::delivery_guarantees::GuaranteeError,
    },
    #[error(
        "{file}: {key} is not supported: it loads code or runs a command on every agent, \
         and the executor refuses it"
    )]
    CodeLoading { file: String, key: String },
    #[error("{file}: librdkafka refuses the {role} configuration: {reason}")]
    Librdkafka {
        file: String,
        role: Role,
        reason: String,
    },
}

/// The validated inputs of a scheduler run.
#[derive(Clone)]
pub struct Inputs {
    pub config: SchedulerConfig,
    /// librdkafka names and values.
    pub consumer: BTreeMap<String, String>,
    pub producer: BTreeMap<String, String>,
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs")
            .field("config", &self.config)
            .field("consumer", &kafka_props::Redacted(&self.consumer))
            .field("producer", &kafka_props::Redacted(&self.producer))
            .finish()
    }
}

fn read(path: &Path) -> Result<String, StartupError> {
    fs::read_to_string(path).map_err(|source| StartupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads the scheduler configuration: legacy `mmm.properties` when the name
/// ends in `.properties`, TOML when it ends in `.toml`, and by content
/// otherwise (the original's keys all start with `mesos.` or `mmm.`).
pub fn load_config(path: &Path) -> Result<SchedulerConfig, StartupError> {
    let text = read(path)?;
    let name = path.display().to_string();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    let config = match ext {
        "properties" => SchedulerConfig::from_legacy_properties(&name, &text)?,
        "toml" => SchedulerConfig::from_toml(&name, &text)?,
        _ if looks_like_legacy_properties(&text) => {
            SchedulerConfig::from_legacy_properties(&name, &text)?
        }
        _ => SchedulerConfig::from_toml(&name, &text)?,
    };
    Ok(config)
}

fn looks_like_legacy_properties(text: &str) -> bool {
    let mut keys = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'));
    keys.next().is_some_and(|first| {
        !first.starts_with('[') && (first.starts_with("mesos.") || first.starts_with("mmm."))
    })
}

/// Reads a Java Kafka properties file and maps it to librdkafka names,
/// warning for every key that has no librdkafka meaning.
pub fn load_kafka(path: &Path, role: Role) -> Result<BTreeMap<String, String>, StartupError> {
    let text = read(path)?;
    let name = path.display().to_string();
    let props = Properties::parse(&name, &text)?;
    let mapped = kafka_props::map_properties(role, &name, props.iter())?;
    for dropped in &mapped.dropped {
        tracing::warn!(file = %name, %role, key = %dropped.key, reason = %dropped.reason, "Kafka property dropped: no librdkafka equivalent");
    }
    check_guarantees(&name, role, &mapped.config)?;
    if let Some(key) = mmm_core::property_allowlist::code_loading_key(&mapped.config) {
        return Err(StartupError::CodeLoading {
            file: name,
            key: key.to_string(),
        });
    }
    validate_with_librdkafka(&name, role, &mapped.config)?;
    Ok(mapped.config)
}

/// Refuses settings that would weaken the mirror's delivery guarantees.
fn check_guarantees(
    file: &str,
    role: Role,
    config: &BTreeMap<String, String>,
) -> Result<(), StartupError> {
    use mmm_core::delivery_guarantees::{check_consumer, check_producer};
    match role {
        Role::Consumer => check_consumer(config),
        Role::Producer => check_producer(config),
    }
    .map_err(|source| StartupError::Guarantee {
        file: file.to_owned(),
        source,
    })
}

/// Builds a client from the configuration: librdkafka checks every name
/// and value. Creating a client does not connect to any broker.
pub fn validate_with_librdkafka(
    file: &str,
    role: Role,
    config: &BTreeMap<String, String>,
) -> Result<(), StartupError> {
    let mut cc = ClientConfig::new();
    for (k, v) in config {
        cc.set(k, v);
    }
    // A consumer needs a group to be created at all; the executor always has one.
    if role == Role::Consumer && !config.contains_key("group.id") {
        cc.set("group.id", "mmm-config-check");
    }
    let result = match role {
        Role::Consumer => cc.create::<BaseConsumer>().map(drop),
        Role::Producer => cc.create::<BaseProducer>().map(drop),
    };
    result.map_err(|e| StartupError::Librdkafka {
        file: file.to_string(),
        role,
        // librdkafka's messages name the property; values never appear in them
        // except for the offending one, which is not a secret unless the key is.
        reason: redact_reason(&e.to_string(), config),
    })
}

fn redact_reason(reason: &str, config: &BTreeMap<String, String>) -> String {
    let mut out = reason.to_string();
    for (k, v) in config {
        if kafka_props::is_secret(k) && !v.is_empty() {
            out = out.replace(v.as_str(), kafka_props::REDACTED);
        }
    }
    out
}

/// Everything at once, in the order an operator fixes them.
pub fn load_inputs(
    config: &Path,
    consumer: &Path,
    producer: &Path,
) -> Result<Inputs, StartupError> {
    let config = load_config(config)?;
    let consumer = load_kafka(consumer, Role::Consumer)?;
    let producer = load_kafka(producer, Role::Producer)?;
    Ok(Inputs {
        config,
        consumer,
        producer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn legacy_properties_are_recognised_by_content() {
        assert!(looks_like_legacy_properties(
            "# c\nmesos.master=zk://m:2181/mesos\n"
        ));
        assert!(!looks_like_legacy_properties(
            "[mesos]\nmaster = \"m:5050\"\n"
        ));
    }

    #[test]
    fn the_original_kafka_files_map_and_validate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = write(
            dir.path(),
            "kafka-consumser.properties",
            "bootstrap.servers=127.0.0.1:9092\ngroup.id=mirror_maker_group\nenable.auto.commit=false\nsession.timeout.ms=30000\nkey.deserializer=org.apache.kafka.common.serialization.ByteArrayDeserializer\n",
        );
        let p = write(
            dir.path(),
            "kafka-producer.properties",
            "bootstrap.servers=127.0.0.1:9092\nretries=2147483647\nblock.on.buffer.full=true\nmax.in.flight.requests.per.connection=1\nacks=all\n",
        );
        let consumer = load_kafka(&c, Role::Consumer).expect("consumer");
        assert_eq!(
            consumer.get("group.id").map(String::as_str),
            Some("mirror_maker_group")
        );
        assert!(!consumer.contains_key("key.deserializer"));
        let producer = load_kafka(&p, Role::Producer).expect("producer");
        assert_eq!(producer.get("acks").map(String::as_str), Some("all"));
    }

    #[test]
    fn a_value_librdkafka_refuses_is_named_and_secrets_are_hidden() {
        let mut config = BTreeMap::new();
        config.insert(
            "bootstrap.servers".to_string(),
            "127.0.0.1:9092".to_string(),
        );
        config.insert("acks".to_string(), "sometimes".to_string());
        let err = validate_with_librdkafka("p.properties", Role::Producer, &config)
            .expect_err("invalid acks");
        let msg = err.to_string();
        assert!(
            msg.contains("p.properties") && msg.contains("acks"),
            "{msg}"
        );
        assert_eq!(
            redact_reason(
                "bad value hunter2 for sasl.password",
                &BTreeMap::from([("sasl.password".to_string(), "hunter2".to_string())])
            ),
            "bad value [redacted] for sasl.password"
        );
    }

    #[test]
    fn weaker_delivery_settings_are_refused_at_start_naming_file_and_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (text, key) in [
            ("bootstrap.servers=b:9092\nacks=1\n", "acks"),
            (
                "bootstrap.servers=b:9092\nenable.idempotence=false\n",
                "enable.idempotence",
            ),
            (
                "bootstrap.servers=b:9092\ntransactional.id=mm\n",
                "transactional.id",
            ),
        ] {
            let p = write(dir.path(), "producer.properties", text);
            let err = load_kafka(&p, Role::Producer).expect_err("refused");
            let msg = err.to_string();
            assert!(
                msg.contains("producer.properties") && msg.contains(&format!("`{key}`")),
                "{msg}"
            );
        }
        let c = write(
            dir.path(),
            "consumer.properties",
            "bootstrap.servers=b:9092\ngroup.id=g\nisolation.level=read_uncommitted\n",
        );
        let msg = load_kafka(&c, Role::Consumer)
            .expect_err("refused")
            .to_string();
        assert!(msg.contains("`isolation.level`"), "{msg}");
    }

    #[test]
    fn a_code_loading_key_in_an_operator_file_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = write(
            dir.path(),
            "c.properties",
            "bootstrap.servers=127.0.0.1:9092\ngroup.id=g\nplugin.library.paths=/tmp/evil.so\n",
        );
        let err = load_kafka(&c, Role::Consumer)
            .expect_err("refused")
            .to_string();
        assert!(
            err.contains("plugin.library.paths") && err.contains("c.properties"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = load_config(Path::new("/nonexistent/mmm.toml")).expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/mmm.toml"), "{err}");
    }
}
