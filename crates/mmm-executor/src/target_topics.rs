//! Where the records of a source topic go: the target topic's name, and a
//! check (or creation) of its partitions.

use std::time::{Duration, Instant};

use mmm_core::task_data::{Partitioning, TaskData};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{Client, ClientContext, DefaultClientContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::engine::EngineError;

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
}

/// Resolves, checks and if allowed creates the target topic of `source`.
pub fn prepare<S: ClientContext, T: ClientContext>(
    task: &TaskData,
    source_client: &Client<S>,
    target_client: &Client<T>,
    admin: &AdminClient<DefaultClientContext>,
    source: &str,
    timeout: Duration,
) -> Result<Route, EngineError> {
    let target = task.target_topic(source);
    let source_partitions =
        partition_count(source_client, source, timeout, "source")?.ok_or_else(|| {
            EngineError::SourceTopicMissing {
                topic: source.to_owned(),
            }
        })?;
    let target_partitions = match partition_count(target_client, &target, timeout, "target")? {
        Some(n) => n,
        None if task.create_topics => {
            create(admin, target_client, &target, source_partitions, timeout)?;
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
    Ok(Route { target, preserve })
}

fn create<T: ClientContext>(
    admin: &AdminClient<DefaultClientContext>,
    target_client: &Client<T>,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> Result<(), EngineError> {
    let options = AdminOptions::new().operation_timeout(Some(timeout));
    let fail = |reason: String| EngineError::CreateTopic {
        topic: topic.to_owned(),
        reason,
    };
    // -1 asks for the broker's default replication factor (KIP-464); a broker
    // too old for that refuses it, and gets an explicit factor of 1.
    for replication in [-1, 1] {
        let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
        let results = futures::executor::block_on(admin.create_topics([&new_topic], &options))
            .map_err(|e| fail(e.to_string()))?;
        match results.into_iter().next() {
            Some(Ok(_)) | Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => {
                tracing::info!(topic, partitions, replication, "created target topic");
                return wait_for_partitions(target_client, topic, partitions, timeout);
            }
            Some(Err((_, RDKafkaErrorCode::InvalidReplicationFactor))) if replication == -1 => {
                continue
            }
            Some(Err((_, code))) => return Err(fail(code.to_string())),
            None => return Err(fail("the broker returned no result".into())),
        }
    }
    Err(fail("no replication factor was accepted".into()))
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
