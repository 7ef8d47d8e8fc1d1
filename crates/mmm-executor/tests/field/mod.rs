//! Helpers of the field tests: tasks, and reading a topic until it is idle.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mmm_core::task_data::{Properties, TaskData, TopicSelection, PROVENANCE_HEADER};
use mmm_test_support::{random_name, ConsumedRecord, TestRecord};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// A task mirroring `topics` from `source` to `target` with only the
/// properties a task needs, so the executor's own defaults apply, plus `extra`
/// consumer properties.
pub fn bare_task(
    source: &str,
    target: &str,
    topics: &[&str],
    extra_consumer: &[(&str, &str)],
) -> TaskData {
    let group = random_name("group");
    let mut consumer: Properties = [
        ("bootstrap.servers", source),
        ("group.id", group.as_str()),
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "500"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in extra_consumer {
        consumer.insert((*k).to_owned(), (*v).to_owned());
    }
    let producer: Properties = [("bootstrap.servers".to_owned(), target.to_owned())].into();
    let mut data = TaskData::new(
        11,
        consumer,
        producer,
        TopicSelection::List(topics.iter().map(|t| t.to_string()).collect()),
    );
    data.offset_commit_interval_ms = 500;
    data
}

/// Reads every partition of `topic` from the beginning until at least
/// `min_count` records arrived and then none for `idle` (so duplicates or
/// unexpected extra records are read too), or panics after `timeout`.
pub fn read_until_idle(
    bootstrap: &str,
    topic: &str,
    min_count: usize,
    idle: Duration,
    timeout: Duration,
) -> Vec<ConsumedRecord> {
    let started = Instant::now();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", random_name("reader"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("reader");
    let partitions = loop {
        let n = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .ok()
            .and_then(|m| {
                m.topics()
                    .iter()
                    .find(|t| t.name() == topic && t.error().is_none())
                    .map(|t| t.partitions().len())
            })
            .unwrap_or(0);
        if n > 0 {
            break n as i32;
        }
        assert!(
            started.elapsed() < timeout,
            "topic {topic} never appeared on {bootstrap}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut records = Vec::new();
    let mut last = Instant::now();
    loop {
        if records.len() >= min_count && last.elapsed() >= idle {
            return records;
        }
        assert!(
            started.elapsed() < timeout,
            "read {} of at least {min_count} records of {topic} in {timeout:?}",
            records.len()
        );
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            last = Instant::now();
            records.push(ConsumedRecord {
                topic: m.topic().to_owned(),
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                            .collect()
                    })
                    .unwrap_or_default(),
                timestamp: m.timestamp(),
            });
        }
    }
}

/// Asserts that `got` holds exactly `sent`, partition by partition in
/// order, each with the provenance header naming `origin` added.
pub fn assert_byte_exact(sent: &[TestRecord], got: &[ConsumedRecord], origin: &str, what: &str) {
    let mut by_partition: BTreeMap<i32, Vec<&ConsumedRecord>> = BTreeMap::new();
    for r in got {
        by_partition.entry(r.partition).or_default().push(r);
    }
    for list in by_partition.values_mut() {
        list.sort_by_key(|r| r.offset);
    }
    assert_eq!(got.len(), sent.len(), "{what}: record count");
    for (p, records) in &by_partition {
        let expected: Vec<_> = sent.iter().filter(|r| r.partition == *p).collect();
        assert_eq!(records.len(), expected.len(), "{what}: partition {p}");
        for (got, want) in records.iter().zip(expected) {
            let want = want.clone().with_header(PROVENANCE_HEADER, origin);
            assert!(
                got.matches(&want),
                "{what}: partition {p}: {got:?} differs from {want:?}"
            );
        }
    }
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = SEED ^ data.len() as u32;
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for chunk in chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition the Java producer's default partitioner picks for a key.
pub fn java_partition(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions
}

/// Waits up to `timeout` for the engine to end on its own.
pub fn join_within(
    engine: mmm_executor::engine::Engine,
    timeout: Duration,
) -> mmm_executor::engine::EngineResult {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(engine.join());
    });
    rx.recv_timeout(timeout)
        .expect("the engine ended on its own in time")
}
