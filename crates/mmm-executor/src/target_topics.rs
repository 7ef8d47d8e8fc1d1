//! Where the records of a source topic go: the target topic's name, and a
//! check (or creation, or growth) of its partitions.
//!
//! A created target topic mirrors its source: the same partition count and
//! the source topic's configuration that gives the data its meaning
//! ([`COPIED_CONFIGS`], read with DescribeConfigs), so that a compacted source
//! stays compacted on the target. Its replication factor is the task's
//! `replication_factor`, else the broker's default; a broker that refuses
//! either fails the task with a message naming the topic, never a silent
//! factor of 1.

use std::time::{Duration, Instant};

use mmm_core::task_data::{Partitioning, TaskData};
use rdkafka::admin::{
    AdminClient, AdminOptions, ConfigEntry, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::{Client, ClientContext, DefaultClientContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::engine::EngineError;

/// The topic configurations copied from a source topic to the target topic
/// the executor creates: those that change what the log keeps and means.
pub const COPIED_CONFIGS: &[&str] = &[
    "cleanup.policy",
    "retention.ms",
    "retention.bytes",
    "max.message.bytes",
    "min.compaction.lag.ms",
    "max.compaction.lag.ms",
    "delete.retention.ms",
    "min.cleanable.dirty.ratio",
    "message.timestamp.type",
    "segment.bytes",
    "segment.ms",
];

/// The partition count of `topic`, `None` when the cluster does not know it.
pub fn partition_count<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    timeout: Duration,
    cluster: &'static str,
) -> Result<Option<i32>, EngineError> {
    let metadata = client
        .fetch_metadata(Some(topic), timeout)
        .map_err(|source| EngineError::Metadata {
            cluster,
            topic: topic.to_owned(),
            source: Box::new(source),
        })?;
    let Some(entry) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    match entry.error() {
        None if !entry.partitions().is_empty() => Ok(Some(entry.partitions().len() as i32)),
        None => Ok(None),
        Some(code) => match RDKafkaErrorCode::from(code) {
            RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic => Ok(None),
            other => Err(EngineError::Metadata {
                cluster,
                topic: topic.to_owned(),
                source: Box::new(KafkaError::MetadataFetch(other)),
            }),
        },
    }
}

/// What the engine needs to know of a target topic.
#[derive(Debug, Clone)]
pub struct Route {
    /// The target topic's name.
    pub target: String,
    /// Whether records keep their source partition number.
    pub preserve: bool,
    /// The source topic's partition count when the route was made: a record
    /// of a higher partition means the source grew.
    pub source_partitions: i32,
}

/// The clients topic preparation talks through.
pub struct Clusters<'a, S: ClientContext, T: ClientContext> {
    /// The source consumer's client (metadata).
    pub source: &'a Client<S>,
    /// The target producer's client (metadata the producer will use).
    pub target: &'a Client<T>,
    /// Admin requests to the source cluster (DescribeConfigs).
    pub source_admin: &'a AdminClient<DefaultClientContext>,
    /// Admin requests to the target cluster (CreateTopics, CreatePartitions).
    pub target_admin: &'a AdminClient<DefaultClientContext>,
}

/// Resolves, checks and if allowed creates or grows the target topic of `source`.
pub fn prepare<S: ClientContext, T: ClientContext>(
    task: &TaskData,
    clusters: &Clusters<'_, S, T>,
    source: &str,
    timeout: Duration,
) -> Result<Route, EngineError> {
    let target = task.target_topic(source);
    let source_partitions = partition_count(clusters.source, source, timeout, "source")?
        .ok_or_else(|| EngineError::SourceTopicMissing {
            topic: source.to_owned(),
        })?;
    let target_partitions = match partition_count(clusters.target, &target, timeout, "target")? {
        Some(n) if n < source_partitions && task.create_topics => {
            grow(clusters, &target, n, source_partitions, timeout)?;
            source_partitions
        }
        Some(n) => n,
        None if task.create_topics => {
            let configs = source_configs(clusters.source_admin, source, timeout)?;
            create(
                clusters,
                &target,
                source_partitions,
                task.replication_factor,
                &configs,
                timeout,
            )?;
            source_partitions
        }
        None => {
            return Err(EngineError::TargetTopicMissing {
                source_topic: source.to_owned(),
                target_topic: target,
            })
        }
    };
    let preserve = task.partitioning == Partitioning::Preserve;
    if preserve && target_partitions < source_partitions {
        return Err(EngineError::TooFewTargetPartitions {
            source_topic: source.to_owned(),
            source_partitions,
            target_topic: target,
            target_partitions,
        });
    }
    tracing::info!(
        source,
        target = %target,
        source_partitions,
        target_partitions,
        "target topic ready"
    );
    Ok(Route {
        target,
        preserve,
        source_partitions,
    })
}

/// The configurations of [`COPIED_CONFIGS`] among a topic's described
/// entries, in that order; sensitive and valueless entries are left out.
pub fn copied_configs(entries: &[ConfigEntry]) -> Vec<(String, String)> {
    COPIED_CONFIGS
        .iter()
        .filter_map(|&name| {
            let entry = entries.iter().find(|e| e.name == name)?;
            if entry.is_sensitive {
                return None;
            }
            Some((name.to_owned(), entry.value.clone()?))
        })
        .collect()
}

/// Reads the configuration of source topic `topic` worth copying.
fn source_configs(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<(String, String)>, EngineError> {
    let fail = |reason: String| EngineError::SourceConfig {
        topic: topic.to_owned(),
        reason,
    };
    let options = AdminOptions::new().request_timeout(Some(timeout));
    let results = futures::executor::block_on(
        admin.describe_configs([&ResourceSpecifier::Topic(topic)], &options),
    )
    .map_err(|e| fail(e.to_string()))?;
    match results.into_iter().next() {
        Some(Ok(resource)) => {
            let configs = copied_configs(&resource.entries);
            tracing::info!(topic, ?configs, "source topic configuration");
            Ok(configs)
        }
        Some(Err(code)) => Err(fail(code.to_string())),
        None => Err(fail("the broker returned no result".into())),
    }
}

fn create<S: ClientContext, T: ClientContext>(
    clusters: &Clusters<'_, S, T>,
    topic: &str,
    partitions: i32,
    replication_factor: Option<u16>,
    configs: &[(String, String)],
    timeout: Duration,
) -> Result<(), EngineError> {
    let options = AdminOptions::new().operation_timeout(Some(timeout));
    let fail = |reason: String| EngineError::CreateTopic {
        topic: topic.to_owned(),
        reason,
    };
    // -1 asks for the broker's default replication factor (KIP-464).
    let replication = replication_factor.map_or(-1, i32::from);
    let mut new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    for (key, value) in configs {
        new_topic = new_topic.set(key, value);
    }
    let results =
        futures::executor::block_on(clusters.target_admin.create_topics([&new_topic], &options))
            .map_err(|e| fail(e.to_string()))?;
    match results.into_iter().next() {
        Some(Ok(_)) | Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => {
            tracing::info!(
                topic,
                partitions,
                replication,
                ?configs,
                "created target topic"
            );
            wait_for_partitions(clusters.target, topic, partitions, timeout)
        }
        Some(Err((_, code))) => Err(fail(refusal(code, replication_factor, configs))),
        None => Err(fail("the broker returned no result".into())),
    }
}

/// Why the target refused to create a topic, for the task's failure.
fn refusal(
    code: RDKafkaErrorCode,
    replication_factor: Option<u16>,
    configs: &[(String, String)],
) -> String {
    match (code, replication_factor) {
        (RDKafkaErrorCode::InvalidReplicationFactor, None) => format!(
            "{code}: the broker cannot apply its default replication factor (before \
             Kafka 2.4); set [mirror] replication_factor"
        ),
        (_, rf) => format!(
            "{code} (replication factor {}, configuration {configs:?})",
            rf.map_or("the broker's default".to_owned(), |rf| rf.to_string())
        ),
    }
}

/// Adds partitions to target topic `topic` until it has `partitions`.
fn grow<S: ClientContext, T: ClientContext>(
    clusters: &Clusters<'_, S, T>,
    topic: &str,
    from: i32,
    partitions: i32,
    timeout: Duration,
) -> Result<(), EngineError> {
    let fail = |reason: String| EngineError::GrowTopic {
        topic: topic.to_owned(),
        from,
        to: partitions,
        reason,
    };
    let options = AdminOptions::new().operation_timeout(Some(timeout));
    let count = usize::try_from(partitions).map_err(|_| fail("negative count".into()))?;
    let request = NewPartitions::new(topic, count);
    let results = futures::executor::block_on(
        clusters
            .target_admin
            .create_partitions([&request], &options),
    )
    .map_err(|e| fail(e.to_string()))?;
    match results.into_iter().next() {
        // Another task may have grown it first.
        Some(Ok(_)) | Some(Err((_, RDKafkaErrorCode::InvalidPartitions))) => {
            tracing::info!(topic, from, partitions, "grew target topic");
            wait_for_partitions(clusters.target, topic, partitions, timeout)
        }
        Some(Err((_, code))) => Err(fail(code.to_string())),
        None => Err(fail("the broker returned no result".into())),
    }
}

fn wait_for_partitions<T: ClientContext>(
    client: &Client<T>,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> Result<(), EngineError> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = partition_count(client, topic, timeout, "target")?.unwrap_or(0);
        if seen >= partitions {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(EngineError::CreateTopic {
                topic: topic.to_owned(),
                reason: format!(
                    "metadata shows {seen} of {partitions} partitions after {timeout:?}"
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::admin::ConfigSource;

    fn entry(name: &str, value: Option<&str>, sensitive: bool) -> ConfigEntry {
        ConfigEntry {
            name: name.into(),
            value: value.map(str::to_owned),
            source: ConfigSource::DynamicTopic,
            is_read_only: false,
            is_default: false,
            is_sensitive: sensitive,
        }
    }

    #[test]
    fn a_refused_replication_factor_is_explained_never_replaced() {
        let text = refusal(RDKafkaErrorCode::InvalidReplicationFactor, Some(3), &[]);
        assert!(text.contains("replication factor 3"), "{text}");
        let text = refusal(RDKafkaErrorCode::InvalidReplicationFactor, None, &[]);
        assert!(text.contains("[mirror] replication_factor"), "{text}");
        let configs = [("cleanup.policy".to_owned(), "compact".to_owned())];
        let text = refusal(RDKafkaErrorCode::PolicyViolation, None, &configs);
        assert!(
            text.contains("the broker's default") && text.contains("compact"),
            "{text}"
        );
    }

    #[test]
    fn the_meaningful_configs_of_a_compacted_source_are_copied() {
        let entries = vec![
            entry("segment.jitter.ms", Some("0"), false),
            entry("retention.ms", Some("86400000"), false),
            entry("cleanup.policy", Some("compact"), false),
            entry("min.compaction.lag.ms", Some("1000"), false),
            entry("message.timestamp.type", Some("LogAppendTime"), false),
            entry("max.message.bytes", Some("2097152"), false),
            entry("retention.bytes", None, false),
            entry("min.cleanable.dirty.ratio", Some("0.1"), true),
        ];
        assert_eq!(
            copied_configs(&entries),
            vec![
                ("cleanup.policy".to_owned(), "compact".to_owned()),
                ("retention.ms".to_owned(), "86400000".to_owned()),
                ("max.message.bytes".to_owned(), "2097152".to_owned()),
                ("min.compaction.lag.ms".to_owned(), "1000".to_owned()),
                (
                    "message.timestamp.type".to_owned(),
                    "LogAppendTime".to_owned()
                ),
            ]
        );
    }
}
