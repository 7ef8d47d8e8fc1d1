//! An application consumer in a consumer group, for failover tests.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::error::{Error, Result};
use crate::kafka_data::ConsumedRecord;

/// How long the group stays quiet before the application has read everything.
const QUIET: Duration = Duration::from_secs(3);

/// Joins `group` (session timeout 6 s, as Tansu joins take half of it),
/// reads `topic` from the group's committed offsets (the earliest without),
/// processes at most `limit` records of each of its `partitions` (all when
/// `None`: until nothing comes for a few seconds), commits the offsets after
/// what it processed, and leaves. Returns the processed records in the order read.
pub fn consume_as_group(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
    limit: Option<usize>,
    timeout: Duration,
) -> Result<Vec<ConsumedRecord>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("log_level", "3")
        .create()
        .map_err(|e| Error::kafka(format!("creating a consumer of group {group}"), e))?;
    consumer
        .subscribe(&[topic])
        .map_err(|e| Error::kafka(format!("subscribing to {topic}"), e))?;
    let started = Instant::now();
    let mut processed = Vec::new();
    // Per partition: records processed, the offset after the last one.
    let mut progress: BTreeMap<i32, (usize, i64)> = BTreeMap::new();
    // Since the assignment or the last record.
    let mut quiet_since: Option<Instant> = None;
    loop {
        let full = limit.is_some_and(|l| {
            progress.len() == usize::try_from(partitions).unwrap_or(0)
                && progress.values().all(|(n, _)| *n >= l)
        });
        if quiet_since.is_none() && consumer.assignment().is_ok_and(|a| a.count() > 0) {
            quiet_since = Some(Instant::now());
        }
        if full || quiet_since.is_some_and(|t| t.elapsed() >= QUIET) {
            break;
        }
        if started.elapsed() >= timeout {
            return Err(Error::Incomplete {
                topic: topic.to_owned(),
                expected: limit.map_or(0, |l| l * usize::try_from(partitions).unwrap_or(0)),
                got: processed.len(),
                waited: started.elapsed(),
            });
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                quiet_since = Some(Instant::now());
                let entry = progress.entry(m.partition()).or_insert((0, 0));
                if limit.is_some_and(|l| entry.0 >= l) {
                    continue;
                }
                entry.0 += 1;
                entry.1 = m.offset() + 1;
                processed.push(ConsumedRecord::from_message(&m));
            }
            Some(Err(e)) => tracing::debug!(group, %e, "consume error, retrying"),
            None => {}
        }
    }
    let mut tpl = TopicPartitionList::new();
    for (p, (_, next)) in &progress {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*next))
            .map_err(|e| Error::kafka(format!("committing {topic}/{p}"), e))?;
    }
    if tpl.count() > 0 {
        consumer
            .commit(&tpl, CommitMode::Sync)
            .map_err(|e| Error::kafka(format!("committing group {group}"), e))?;
    }
    consumer.unsubscribe();
    Ok(processed)
}
