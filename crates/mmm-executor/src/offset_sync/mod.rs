//! The source → target offset mapping (docs/disaster-recovery.md).
//!
//! - [`segments`]: the mapping of one source partition and the translation
//!   of a committed offset.
//! - [`read_back`]: the segments earlier runs published to the sync topic.
//!
//! The engine records the mapping from its delivery reports and publishes it
//! before each commit (`engine::syncs`).

pub mod segments;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use mmm_core::offset_sync::{OffsetSync, SyncKey};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use segments::{PartitionMap, Segment};

/// Why the sync topic could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("reading offset sync topic {topic}: {source}")]
pub struct ReadBackError {
    /// The sync topic.
    pub topic: String,
    /// The client's error.
    #[source]
    pub source: KafkaError,
}

/// The mapping per source (topic, partition), with the partition's target topic.
pub type KnownMaps = HashMap<(String, i32), (String, PartitionMap)>;

/// How long the read-back waits for more records once every partition
/// reported its end (or, without such reports, at all).
const SETTLE: Duration = Duration::from_millis(300);
const QUIET: Duration = Duration::from_secs(3);

/// Every live segment of the sync topic that `keep(source topic, target
/// topic)` accepts, per source partition, with its target topic. Records
/// that cannot be read are logged and skipped; a missing topic is empty.
pub fn read_back(
    config: &ClientConfig,
    topic: &str,
    timeout: Duration,
    keep: impl Fn(&str, &str) -> bool,
) -> Result<KnownMaps, ReadBackError> {
    let fail = |source| ReadBackError {
        topic: topic.to_owned(),
        source,
    };
    let mut config = config.clone();
    config
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest");
    if config.get("group.id").is_none() {
        // Required by the client; no group is joined (partitions are assigned).
        config.set("group.id", "mmm-offset-sync-reader");
    }
    let consumer: BaseConsumer = config.create().map_err(fail)?;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(fail)?;
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map_or(0, |t| t.partitions().len());
    if partitions == 0 {
        return Ok(HashMap::new());
    }
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .map_err(fail)?;
    }
    consumer.assign(&tpl).map_err(fail)?;

    // Later records of a key replace earlier ones; a tombstone removes it.
    let mut latest: BTreeMap<SyncKey, Option<OffsetSync>> = BTreeMap::new();
    let mut at_end = vec![false; partitions];
    let deadline = Instant::now() + timeout;
    let mut last_record = Instant::now();
    loop {
        let quiet = last_record.elapsed();
        if (at_end.iter().all(|&e| e) && quiet >= SETTLE) || quiet >= QUIET {
            break;
        }
        if Instant::now() >= deadline {
            tracing::warn!(
                topic,
                "the offset sync topic was not read to its end in time: \
                 translation covers what was read"
            );
            break;
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                if let Some(e) = usize::try_from(p).ok().and_then(|p| at_end.get_mut(p)) {
                    *e = true;
                }
            }
            Some(Err(e)) => return Err(fail(e)),
            Some(Ok(m)) => {
                last_record = Instant::now();
                if let Some(e) = usize::try_from(m.partition())
                    .ok()
                    .and_then(|p| at_end.get_mut(p))
                {
                    *e = false;
                }
                let key = match SyncKey::parse(m.key().unwrap_or_default()) {
                    Ok(key) => key,
                    Err(e) => {
                        tracing::warn!(error = %e, "skipping an offset sync record");
                        continue;
                    }
                };
                let value = match m.payload() {
                    None => None,
                    Some(bytes) => match OffsetSync::parse(&key, bytes) {
                        Ok(sync) => Some(sync),
                        Err(e) => {
                            tracing::warn!(error = %e, "skipping an offset sync record");
                            continue;
                        }
                    },
                };
                latest.insert(key, value);
            }
        }
    }
    let mut maps = KnownMaps::new();
    let mut segments = 0usize;
    for (key, sync) in latest {
        let Some(sync) = sync else { continue };
        if !keep(&key.topic, &sync.target_topic) {
            continue;
        }
        let entry = maps
            .entry((key.topic, key.partition))
            .or_insert_with(|| (sync.target_topic.clone(), PartitionMap::new()));
        entry.1.load(Segment {
            source_start: sync.source_start,
            target_start: sync.target_start,
            count: sync.count,
        });
        segments += 1;
    }
    tracing::info!(
        topic,
        partitions = maps.len(),
        segments,
        "read back the offset syncs"
    );
    Ok(maps)
}

/// Whether a source topic is one of `task`'s (its list, or its regex).
pub fn topic_filter(task: &mmm_core::task_data::TaskData) -> impl Fn(&str) -> bool {
    use mmm_core::task_data::TopicSelection;
    let (names, pattern) = match &task.topics {
        TopicSelection::List(names) => (names.clone(), None),
        TopicSelection::Regex(p) => (Vec::new(), regex::Regex::new(&format!("^(?:{p})$")).ok()),
    };
    move |topic| {
        names.iter().any(|n| n == topic) || pattern.as_ref().is_some_and(|r| r.is_match(topic))
    }
}

/// Producer properties that also serve a consumer or admin client of the
/// target: where it is and how to connect to it.
const CONNECTION_PREFIXES: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "client.id",
    "client.rack",
    "security.",
    "sasl.",
    "ssl.",
    "ssl_",
    "socket.",
    "broker.",
    "reconnect.",
    "api.version",
    "connections.max.idle.ms",
    "topic.metadata.",
    "metadata.max.age.ms",
    "debug",
    "log_level",
];

/// A client configuration for reading from the target cluster (the sync
/// topic, group offsets), from the task's producer properties.
pub fn target_client_config(task: &mmm_core::task_data::TaskData) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (k, v) in &task.producer {
        if CONNECTION_PREFIXES.iter().any(|p| k.starts_with(p)) {
            config.set(k, v);
        }
    }
    config
}
