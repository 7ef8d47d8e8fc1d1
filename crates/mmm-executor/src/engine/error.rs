//! Why the replication engine stops on its own.

use rdkafka::error::KafkaError;
use thiserror::Error;

/// Why the engine stopped without being asked to.
#[derive(Debug, Error)]
pub enum EngineError {
    /// librdkafka refused a property.
    #[error("invalid {client} configuration: {source}")]
    Config {
        /// `consumer` or `producer`.
        client: &'static str,
        /// librdkafka's explanation, naming the property.
        source: Box<KafkaError>,
    },
    /// The subscription was refused.
    #[error("subscribing to {what} failed: {source}")]
    Subscribe {
        /// The topics or pattern.
        what: String,
        /// The cause.
        source: Box<KafkaError>,
    },
    /// Metadata could not be read.
    #[error("reading metadata of topic {topic} from the {cluster} cluster failed: {source}")]
    Metadata {
        /// `source` or `target`.
        cluster: &'static str,
        /// The topic.
        topic: String,
        /// The cause.
        source: Box<KafkaError>,
    },
    /// A subscribed topic vanished from the source.
    #[error("source topic {topic} does not exist")]
    SourceTopicMissing {
        /// The topic.
        topic: String,
    },
    /// The target topic does not exist and `create_topics` is false.
    #[error("target topic {target_topic} (for source topic {source_topic}) does not exist and create_topics is false")]
    TargetTopicMissing {
        /// The source topic.
        source_topic: String,
        /// The missing target topic.
        target_topic: String,
    },
    /// "preserve" cannot keep partition numbers.
    #[error("partitioning \"preserve\" needs target topic {target_topic} to have at least the {source_partitions} partitions of source topic {source_topic}, it has {target_partitions}")]
    TooFewTargetPartitions {
        /// The source topic.
        source_topic: String,
        /// Its partition count.
        source_partitions: i32,
        /// The target topic.
        target_topic: String,
        /// Its partition count.
        target_partitions: i32,
    },
    /// Creating a target topic failed.
    #[error("creating target topic {topic} failed: {reason}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The cause.
        reason: String,
    },
    /// The source topic's configuration could not be read for its copy.
    #[error("reading the configuration of source topic {topic} (to create its target topic with it) failed: {reason}")]
    SourceConfig {
        /// The source topic.
        topic: String,
        /// The cause.
        reason: String,
    },
    /// The target topic could not grow with its source.
    #[error("adding partitions to target topic {topic} ({from} to {to}, as its source grew) failed: {reason}")]
    GrowTopic {
        /// The target topic.
        topic: String,
        /// Its partition count.
        from: i32,
        /// The source's partition count.
        to: i32,
        /// The cause.
        reason: String,
    },
    /// `auto.offset.reset` is `error` (Java's `none`) and a partition has no
    /// usable committed offset.
    #[error("source partition(s) {partitions} have no committed offset in range and auto.offset.reset is \"error\" (Java's \"none\"): commit offsets for the group or set auto.offset.reset ({reason})")]
    NoOffset {
        /// `topic-partition` names.
        partitions: String,
        /// The consumer's error.
        reason: String,
    },
    /// A partition made no progress for the stall timeout because of a
    /// persistent error.
    #[error("source partition {topic}-{partition} made no progress for {seconds} s (stall_timeout_ms) while the consumer reported: {error}")]
    Stalled {
        /// The source topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// How long it made no progress.
        seconds: u64,
        /// The last consumer error.
        error: String,
    },
    /// The producer refused a record outright.
    #[error(
        "producing source record {topic}/{partition}@{offset} to {target_topic} failed: {source}"
    )]
    Produce {
        /// The source topic.
        topic: String,
        /// The source partition.
        partition: i32,
        /// The source offset.
        offset: i64,
        /// The target topic.
        target_topic: String,
        /// The cause.
        source: Box<KafkaError>,
    },
    /// The target did not take a record even after the producer's retries.
    #[error("delivery of source record {topic}/{partition}@{offset} to {target_topic} failed after the producer's retries: {source}")]
    Delivery {
        /// The source topic.
        topic: String,
        /// The source partition.
        partition: i32,
        /// The source offset: nothing at or past it was committed.
        offset: i64,
        /// The target topic.
        target_topic: String,
        /// The producer's error.
        source: Box<KafkaError>,
    },
    /// An offset that does not fit the engine's bookkeeping.
    #[error("source record {topic}/{partition}@{offset} cannot be tracked: {reason}")]
    Tracking {
        /// The source topic.
        topic: String,
        /// The source partition.
        partition: i32,
        /// The offset.
        offset: i64,
        /// Why.
        reason: String,
    },
    /// Provenance needs the cluster's name and its metadata carries no id.
    #[error("the {cluster} cluster reports no cluster id (brokers older than Kafka 0.10.1?), which provenance headers need: set [mirror] {alias_key} to name it, or provenance = false")]
    NoClusterId {
        /// `source` or `target`.
        cluster: &'static str,
        /// The key that names it instead.
        alias_key: &'static str,
    },
    /// The consumer hit an error it cannot recover from.
    #[error("the source consumer failed: {0}")]
    Consumer(Box<KafkaError>),
    /// The engine thread died.
    #[error("the replication thread stopped unexpectedly: {0}")]
    Crashed(String),
}

impl EngineError {
    /// Whether the task's configuration (not the clusters) is at fault.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            EngineError::Config { .. }
                | EngineError::Subscribe { .. }
                | EngineError::TargetTopicMissing { .. }
                | EngineError::TooFewTargetPartitions { .. }
                | EngineError::NoOffset { .. }
                | EngineError::NoClusterId { .. }
        )
    }
}
