//! Creating topics, producing and consuming test records with librdkafka.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::distr::{Alphanumeric, SampleString};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, Timestamp};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::error::{Error, Result};

/// How long helpers wait for metadata and deliveries.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes at the start of a generated value: partition (u32 BE) then sequence (u64 BE).
pub const GENERATED_HEADER_LEN: usize = 12;

/// A unique name such as `topic-Xa3k9QbZ0p`, for topics, groups and cluster ids.
pub fn random_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        Alphanumeric.sample_string(&mut rand::rng(), 10)
    )
}

/// A record to produce: an explicit partition, optional key and value (`None` is Kafka's null),
/// headers in order, and an optional create timestamp in milliseconds (`None` lets the client
/// stamp the current time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRecord {
    /// Target partition.
    pub partition: i32,
    /// Record key; `None` is null.
    pub key: Option<Vec<u8>>,
    /// Record value; `None` is null (a tombstone).
    pub value: Option<Vec<u8>>,
    /// Headers, in order; names may repeat.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Create time in milliseconds since the epoch.
    pub timestamp: Option<i64>,
}

impl TestRecord {
    /// A record with key and value and no headers or timestamp.
    pub fn new(partition: i32, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> TestRecord {
        TestRecord {
            partition,
            key: Some(key.into()),
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> TestRecord {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the create timestamp (milliseconds since the epoch).
    pub fn with_timestamp(mut self, millis: i64) -> TestRecord {
        self.timestamp = Some(millis);
        self
    }
}

/// A record as read back from a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// Topic it was read from.
    pub topic: String,
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Record key; `None` is null.
    pub key: Option<Vec<u8>>,
    /// Record value; `None` is null.
    pub value: Option<Vec<u8>>,
    /// Headers in order; a `None` value is a null header value.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Timestamp and its kind.
    pub timestamp: Timestamp,
}

impl ConsumedRecord {
    /// A copy of a consumed message.
    pub fn from_message<M: Message>(message: &M) -> ConsumedRecord {
        ConsumedRecord {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers: message
                .headers()
                .map(|headers| {
                    headers
                        .iter()
                        .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default(),
            timestamp: message.timestamp(),
        }
    }

    /// Whether partition, key, value, headers and (if the test record sets one) timestamp are
    /// byte for byte those of `record`.
    pub fn matches(&self, record: &TestRecord) -> bool {
        let headers_match = self.headers.len() == record.headers.len()
            && self.headers.iter().zip(&record.headers).all(
                |((name, value), (want_name, want_value))| {
                    name == want_name && value.as_deref() == Some(want_value.as_slice())
                },
            );
        self.partition == record.partition
            && self.key == record.key
            && self.value == record.value
            && headers_match
            && record
                .timestamp
                .is_none_or(|millis| self.timestamp.to_millis() == Some(millis))
    }
}

/// Creates `name` with `partitions` partitions (replication factor 1) and waits until metadata
/// shows all of them. Fails if the topic already exists.
pub fn create_topic(bootstrap: &str, name: &str, partitions: i32) -> Result<()> {
    if partitions < 1 {
        return Err(Error::InvalidArgument(format!(
            "topic {name} needs at least one partition, got {partitions}"
        )));
    }
    let admin: AdminClient<DefaultClientContext> =
        client_config(bootstrap).create().map_err(|source| {
            Error::kafka(format!("creating an admin client for {bootstrap}"), source)
        })?;
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));
    let action = || format!("creating topic {name} on {bootstrap}");
    // The admin future is completed by librdkafka's own thread, so no async runtime is needed.
    let results = futures::executor::block_on(admin.create_topics([&topic], &options))
        .map_err(|source| Error::kafka(action(), source))?;
    for result in results {
        if let Err((_, code)) = result {
            return Err(Error::kafka(action(), KafkaError::AdminOp(code)));
        }
    }
    wait_for_partitions(bootstrap, name, partitions)
}

/// Waits until metadata of `topic` lists `partitions` partitions without error.
pub fn wait_for_partitions(bootstrap: &str, topic: &str, partitions: i32) -> Result<()> {
    let consumer = metadata_client(bootstrap)?;
    let started = Instant::now();
    loop {
        let seen = partition_count(&consumer, topic).unwrap_or(0);
        if seen == partitions {
            return Ok(());
        }
        if started.elapsed() >= CLIENT_TIMEOUT {
            return Err(Error::Timeout {
                what: format!(
                    "metadata of topic {topic} on {bootstrap} to show {partitions} partitions (saw {seen})"
                ),
                waited: started.elapsed(),
                log: None,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Produces `records` in order, waiting until every one is acknowledged. Fails naming the first
/// delivery error. One request in flight at a time, so order within a partition is kept.
pub fn produce(bootstrap: &str, topic: &str, records: &[TestRecord]) -> Result<()> {
    produce_with_config(bootstrap, topic, records, &[])
}

/// Like [`produce`], with extra librdkafka producer settings (e.g. a short
/// `message.timeout.ms` when a failure is expected; the default is 30000).
pub fn produce_with_config(
    bootstrap: &str,
    topic: &str,
    records: &[TestRecord],
    settings: &[(&str, &str)],
) -> Result<()> {
    let mut all = vec![("max.in.flight.requests.per.connection", "1")];
    all.extend_from_slice(settings);
    let producer = tracked_producer(bootstrap, &all)?;
    for (index, record) in records.iter().enumerate() {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (name, value) in &record.headers {
            headers = headers.insert(Header {
                key: name,
                value: Some(value.as_slice()),
            });
        }
        let mut base: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
            .partition(record.partition)
            .headers(headers);
        if let Some(key) = &record.key {
            base = base.key(key.as_slice());
        }
        if let Some(value) = &record.value {
            base = base.payload(value.as_slice());
        }
        if let Some(millis) = record.timestamp {
            base = base.timestamp(millis);
        }
        send_with_backpressure(&producer, base).map_err(|source| {
            Error::kafka(format!("queueing record {index} for {topic}"), source)
        })?;
    }
    finish(&producer, topic, records.len())
}

/// Produces `count` records spread round-robin over partitions `0..partitions`, fast (batched,
/// several requests in flight). Each value is `value_size` bytes: the partition (u32 BE) and a
/// per-partition sequence number starting at 0 (u64 BE), then filler; keys are null. Read them
/// back with [`consume_all`] and check them with [`verify_generated`].
pub fn produce_generated(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    count: usize,
    value_size: usize,
) -> Result<()> {
    if partitions < 1 {
        return Err(Error::InvalidArgument(format!(
            "generated records for {topic} need at least one partition, got {partitions}"
        )));
    }
    if value_size < GENERATED_HEADER_LEN {
        return Err(Error::InvalidArgument(format!(
            "generated values must be at least {GENERATED_HEADER_LEN} bytes, got {value_size}"
        )));
    }
    let producer = tracked_producer(
        bootstrap,
        &[
            ("linger.ms", "5"),
            ("batch.size", "1000000"),
            ("queue.buffering.max.messages", "500000"),
            ("queue.buffering.max.kbytes", "1048576"),
        ],
    )?;
    let mut value = vec![b'x'; value_size];
    let mut next_sequence = vec![0u64; usize::try_from(partitions).unwrap_or(1)];
    for index in 0..count {
        let slot = index % next_sequence.len();
        let partition = i32::try_from(slot).unwrap_or(i32::MAX);
        let sequence = next_sequence[slot];
        next_sequence[slot] += 1;
        encode_generated(&mut value, partition, sequence);
        let record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
            .partition(partition)
            .payload(value.as_slice());
        send_with_backpressure(&producer, record).map_err(|source| {
            Error::kafka(
                format!("queueing generated record {index} for {topic}"),
                source,
            )
        })?;
    }
    finish(&producer, topic, count)
}

/// Writes partition and sequence into the first [`GENERATED_HEADER_LEN`] bytes of `value`.
fn encode_generated(value: &mut [u8], partition: i32, sequence: u64) {
    value[..4].copy_from_slice(&partition.to_be_bytes());
    value[4..GENERATED_HEADER_LEN].copy_from_slice(&sequence.to_be_bytes());
}

/// Reads (partition, sequence) from a value written by [`produce_generated`].
pub fn decode_generated(value: &[u8]) -> Option<(i32, u64)> {
    let partition = i32::from_be_bytes(value.get(..4)?.try_into().ok()?);
    let sequence = u64::from_be_bytes(value.get(4..GENERATED_HEADER_LEN)?.try_into().ok()?);
    Some((partition, sequence))
}

/// What a set of consumed records holds compared with what [`produce_generated`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeneratedReport {
    /// (partition, sequence) pairs that were produced but not read, in order.
    pub missing: Vec<(i32, u64)>,
    /// Records read more than once (allowed by at-least-once delivery).
    pub duplicates: usize,
    /// Records whose value names another partition than the one they were read from.
    pub misplaced: usize,
    /// Records whose value is not a generated one, or names a record never produced.
    pub foreign: usize,
    /// Records read, per partition, that appear after a higher sequence of the same source
    /// partition (out of order).
    pub reordered: usize,
}

impl GeneratedReport {
    /// True when nothing is missing and nothing foreign was read (duplicates are allowed).
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.foreign == 0
    }

    /// True when every produced record was read exactly once, in order, in its own partition.
    pub fn is_exact(&self) -> bool {
        self.is_complete() && self.duplicates == 0 && self.misplaced == 0 && self.reordered == 0
    }
}

/// Compares `records` with what `produce_generated(_, _, partitions, count, _)` wrote.
pub fn verify_generated(
    records: &[ConsumedRecord],
    partitions: i32,
    count: usize,
) -> GeneratedReport {
    let partitions_n = usize::try_from(partitions.max(1)).unwrap_or(1);
    let expected_in =
        |partition: usize| count / partitions_n + usize::from(partition < count % partitions_n);
    let mut seen: BTreeMap<(i32, u64), usize> = BTreeMap::new();
    let mut last_sequence: BTreeMap<(i32, i32), u64> = BTreeMap::new();
    let mut report = GeneratedReport::default();
    for record in records {
        let Some((partition, sequence)) = record.value.as_deref().and_then(decode_generated) else {
            report.foreign += 1;
            continue;
        };
        let produced = usize::try_from(partition)
            .ok()
            .filter(|&p| p < partitions_n)
            .is_some_and(|p| usize::try_from(sequence).is_ok_and(|s| s < expected_in(p)));
        if !produced {
            report.foreign += 1;
            continue;
        }
        if record.partition != partition {
            report.misplaced += 1;
        }
        let times = seen.entry((partition, sequence)).or_insert(0);
        *times += 1;
        if *times > 1 {
            report.duplicates += 1;
        }
        let last = last_sequence
            .entry((record.partition, partition))
            .or_insert(sequence);
        if sequence < *last {
            report.reordered += 1;
        }
        *last = (*last).max(sequence);
    }
    for p in 0..partitions_n {
        let partition = i32::try_from(p).unwrap_or(i32::MAX);
        for sequence in 0..expected_in(p) as u64 {
            if !seen.contains_key(&(partition, sequence)) {
                report.missing.push((partition, sequence));
            }
        }
    }
    report
}

/// How long a topic must stay quiet before a read of it counts as complete.
pub const IDLE: Duration = Duration::from_secs(2);

/// Reads `topic` from the beginning of every partition until at least `expected_count` records
/// arrived and then no record came for [`IDLE`], or fails with [`Error::Incomplete`] when fewer
/// than `expected_count` arrived within `timeout`.
///
/// It never stops at the count: records beyond it (duplicates, strays) are read too, so a test
/// can assert "exactly once" or "no duplicates" and see it fail. Records are counted as they are
/// consumed, never from high watermarks (Tansu's in-memory engine reports wrong ones).
/// Partitions are assigned directly, with a throwaway group id and no commits, so no group join is
/// involved. Within a partition records come in offset order.
pub fn consume_all(
    bootstrap: &str,
    topic: &str,
    expected_count: usize,
    timeout: Duration,
) -> Result<Vec<ConsumedRecord>> {
    consume(bootstrap, topic, expected_count, IDLE, timeout)
}

/// Like [`consume_all`], with the quiet period `idle` instead of [`IDLE`] (a longer one for a
/// topic that a mirror may still be writing duplicates to).
pub fn consume_until_idle(
    bootstrap: &str,
    topic: &str,
    min_count: usize,
    idle: Duration,
    timeout: Duration,
) -> Result<Vec<ConsumedRecord>> {
    consume(bootstrap, topic, min_count, idle, timeout)
}

fn consume(
    bootstrap: &str,
    topic: &str,
    expected_count: usize,
    idle: Duration,
    timeout: Duration,
) -> Result<Vec<ConsumedRecord>> {
    let started = Instant::now();
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", random_name("consume-all"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(|source| Error::kafka(format!("creating a consumer for {bootstrap}"), source))?;
    let partitions = loop {
        match partition_count(&consumer, topic) {
            Some(n) if n > 0 => break n,
            _ if started.elapsed() >= timeout => {
                return Err(Error::Timeout {
                    what: format!("metadata of topic {topic} on {bootstrap}"),
                    waited: started.elapsed(),
                    log: None,
                })
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .map_err(|source| Error::kafka(format!("assigning {topic}/{partition}"), source))?;
    }
    consumer
        .assign(&assignment)
        .map_err(|source| Error::kafka(format!("assigning the partitions of {topic}"), source))?;

    let mut records = Vec::with_capacity(expected_count);
    let mut last_record = Instant::now();
    loop {
        if records.len() >= expected_count && last_record.elapsed() >= idle {
            break;
        }
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() && records.len() >= expected_count {
            break;
        }
        if left.is_zero() {
            return Err(Error::Incomplete {
                topic: topic.to_owned(),
                expected: expected_count,
                got: records.len(),
                waited: started.elapsed(),
            });
        }
        match consumer.poll(left.min(Duration::from_millis(200))) {
            None => {}
            Some(Ok(message)) => {
                last_record = Instant::now();
                records.push(ConsumedRecord::from_message(&message))
            }
            Some(Err(err)) => tracing::debug!(topic, %err, "consume error, retrying"),
        }
    }
    Ok(records)
}

fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3");
    config
}

fn metadata_client(bootstrap: &str) -> Result<BaseConsumer> {
    client_config(bootstrap)
        .create()
        .map_err(|source| Error::kafka(format!("creating a client for {bootstrap}"), source))
}

fn partition_count(consumer: &BaseConsumer, topic: &str) -> Option<i32> {
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(2))
        .ok()?;
    let topic = metadata.topics().iter().find(|t| t.name() == topic)?;
    if topic.error().is_some() {
        return None;
    }
    i32::try_from(topic.partitions().len()).ok()
}

/// Counts acknowledgements and keeps the first delivery failures.
#[derive(Default)]
struct DeliveryTracker {
    delivered: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((err, message)) => {
                let mut failures = self
                    .failures
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if failures.len() < 10 {
                    failures.push(format!("partition {}: {err}", message.partition()));
                }
            }
        }
    }
}

fn tracked_producer(
    bootstrap: &str,
    settings: &[(&str, &str)],
) -> Result<BaseProducer<DeliveryTracker>> {
    let mut config = client_config(bootstrap);
    config.set("message.timeout.ms", "30000");
    for (key, value) in settings {
        config.set(*key, *value);
    }
    config
        .create_with_context(DeliveryTracker::default())
        .map_err(|source| Error::kafka(format!("creating a producer for {bootstrap}"), source))
}

fn send_with_backpressure<'a>(
    producer: &BaseProducer<DeliveryTracker>,
    mut record: BaseRecord<'a, [u8], [u8]>,
) -> std::result::Result<(), KafkaError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(20));
            }
            Err((err, _)) => return Err(err),
        }
    }
}

fn finish(producer: &BaseProducer<DeliveryTracker>, topic: &str, count: usize) -> Result<()> {
    producer
        .flush(CLIENT_TIMEOUT)
        .map_err(|source| Error::kafka(format!("flushing records to {topic}"), source))?;
    let tracker = producer.context();
    let failures = tracker
        .failures
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    let delivered = tracker.delivered.load(Ordering::Relaxed);
    if failures.is_empty() && delivered == count {
        Ok(())
    } else {
        Err(Error::Delivery {
            topic: topic.to_owned(),
            delivered,
            expected: count,
            failures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated(read_from: i32, partition: i32, sequence: u64) -> ConsumedRecord {
        let mut value = vec![0u8; 20];
        encode_generated(&mut value, partition, sequence);
        ConsumedRecord {
            topic: "t".into(),
            partition: read_from,
            offset: 0,
            key: None,
            value: Some(value),
            headers: Vec::new(),
            timestamp: Timestamp::NotAvailable,
        }
    }

    #[test]
    fn generated_values_round_trip() {
        let mut value = vec![0u8; GENERATED_HEADER_LEN];
        encode_generated(&mut value, 7, 1 << 40);
        assert_eq!(decode_generated(&value), Some((7, 1 << 40)));
        assert_eq!(decode_generated(&value[..11]), None);
    }

    #[test]
    fn report_counts_each_kind_of_anomaly() {
        // 5 records over 2 partitions: partition 0 gets 0,1,2 and partition 1 gets 0,1.
        let records = vec![
            generated(0, 0, 0),
            generated(0, 0, 2),
            generated(0, 0, 1), // reordered
            generated(0, 0, 1), // duplicate (and behind 2)
            generated(0, 1, 0), // misplaced: written for partition 1
            generated(1, 1, 9), // foreign: never produced
        ];
        let report = verify_generated(&records, 2, 5);
        assert_eq!(report.missing, vec![(1, 1)]);
        assert_eq!(report.duplicates, 1);
        assert_eq!(report.reordered, 2);
        assert_eq!(report.misplaced, 1);
        assert_eq!(report.foreign, 1);
        assert!(!report.is_complete());
    }

    #[test]
    fn a_complete_read_with_duplicates_is_complete_but_not_exact() {
        let mut records: Vec<_> = (0..3).map(|s| generated(0, 0, s)).collect();
        records.push(generated(0, 0, 2));
        let report = verify_generated(&records, 1, 3);
        assert!(report.is_complete() && !report.is_exact(), "{report:?}");
        records.pop();
        assert!(verify_generated(&records, 1, 3).is_exact());
    }
}
