//! Helpers shared by the executor's integration tests.
#![allow(dead_code)]

pub mod agent;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mmm_core::task_data::{Properties, TaskData, TopicSelection, PROVENANCE_HEADER};
use mmm_test_support::{random_name, ConsumedRecord, TestRecord};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// A task mirroring `topics` from `source` to `target`, reading from the start.
pub fn task(source: &str, target: &str, topics: &[&str], group: &str) -> TaskData {
    let consumer: Properties = [
        ("bootstrap.servers", source),
        ("group.id", group),
        ("auto.offset.reset", "earliest"),
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "500"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let producer: Properties = [("bootstrap.servers", target), ("acks", "all")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let mut data = TaskData::new(
        7,
        consumer,
        producer,
        TopicSelection::List(topics.iter().map(|t| t.to_string()).collect()),
    );
    data.offset_commit_interval_ms = 500;
    data
}

/// Waits until `cond` holds, failing the test with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The offsets `group` committed for `topic`'s partitions (-1: none).
pub fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("offset reader");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    (0..partitions)
        .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => -1,
        })
        .collect()
}

/// `n` records over `partitions` partitions, each with a distinct key, value,
/// two headers and an explicit create time.
pub fn records_with_headers(n: usize, partitions: i32) -> Vec<TestRecord> {
    (0..n)
        .map(|i| {
            let p = (i % partitions as usize) as i32;
            TestRecord::new(
                p,
                format!("key-{i}"),
                format!("value-{i}-{}", "v".repeat(i % 37)),
            )
            .with_header("seq", (i as u64).to_be_bytes().to_vec())
            .with_header("origin", b"mmm-test".to_vec())
            .with_timestamp(1_600_000_000_000 + i as i64)
        })
        .collect()
}

/// `record` as a mirror with provenance (the default) writes it: its
/// headers, then `mmm-provenance` naming `origin`, the source cluster.
pub fn mirrored(record: &TestRecord, origin: &str) -> TestRecord {
    record.clone().with_header(PROVENANCE_HEADER, origin)
}

/// The consumed records grouped by partition, in offset order.
pub fn by_partition(records: &[ConsumedRecord]) -> BTreeMap<i32, Vec<&ConsumedRecord>> {
    let mut map: BTreeMap<i32, Vec<&ConsumedRecord>> = BTreeMap::new();
    for r in records {
        map.entry(r.partition).or_default().push(r);
    }
    for list in map.values_mut() {
        list.sort_by_key(|r| r.offset);
    }
    map
}

/// How long an engine or a helper thread may take to finish once asked to.
pub const JOIN_WITHIN: Duration = Duration::from_secs(90);

/// Waits at most [`JOIN_WITHIN`] for `handle`'s thread to end and returns its
/// value; panics naming `what` when it does not, so that a stuck engine fails
/// its test instead of hanging it.
pub fn join_within<T>(handle: std::thread::JoinHandle<T>, what: &str) -> T {
    let deadline = Instant::now() + JOIN_WITHIN;
    while !handle.is_finished() {
        assert!(
            Instant::now() < deadline,
            "{what} did not finish within {JOIN_WITHIN:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    match handle.join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// [`mmm_executor::engine::Engine::join`], bounded by [`JOIN_WITHIN`].
pub fn join_engine(
    engine: mmm_executor::engine::Engine,
    what: &str,
) -> mmm_executor::engine::EngineResult {
    join_within(std::thread::spawn(move || engine.join()), what)
}

/// A fresh group name.
pub fn group() -> String {
    random_name("group")
}

/// Reads the target until every record `produce_generated(_, _, partitions,
/// count, _)` wrote has been seen at least once; duplicates are allowed and
/// counted. Fails (naming what is missing) when the target holds no more.
pub fn read_until_complete(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    count: usize,
) -> mmm_test_support::GeneratedReport {
    let mut want = count;
    loop {
        let copied =
            match mmm_test_support::consume_all(bootstrap, topic, want, Duration::from_secs(60)) {
                Ok(copied) => copied,
                Err(e) => panic!("the target holds fewer records than needed: {e}"),
            };
        let report = mmm_test_support::verify_generated(&copied, partitions, count);
        if report.missing.is_empty() {
            return report;
        }
        // Duplicates took the place of records not read yet: read further.
        want = copied.len() + report.missing.len();
    }
}

/// Copies of each generated (partition, sequence) pair in the target, read
/// until `missing(&copies)` (the number of copies still lacking) is 0.
/// Records read from another partition than they name are counted apart.
pub fn copies_until(
    bootstrap: &str,
    topic: &str,
    missing: impl Fn(&std::collections::HashMap<(i32, u64), usize>) -> usize,
) -> (std::collections::HashMap<(i32, u64), usize>, usize) {
    let mut want = 1;
    loop {
        let copied =
            match mmm_test_support::consume_all(bootstrap, topic, want, Duration::from_secs(60)) {
                Ok(copied) => copied,
                Err(e) => panic!("the target holds fewer records than needed: {e}"),
            };
        let mut copies = std::collections::HashMap::new();
        let mut misplaced = 0;
        for r in &copied {
            let (p, seq) =
                mmm_test_support::decode_generated(r.value.as_deref().unwrap_or_default())
                    .expect("a generated value");
            if p != r.partition {
                misplaced += 1;
            }
            *copies.entry((p, seq)).or_insert(0) += 1;
        }
        let lacking = missing(&copies);
        if lacking == 0 {
            return (copies, misplaced);
        }
        want = copied.len() + lacking;
    }
}

/// How many copies are lacking for every partition `0..partitions` to hold
/// `want(seq)` copies of each sequence `0..per_partition`.
pub fn lacking(
    copies: &std::collections::HashMap<(i32, u64), usize>,
    partitions: i32,
    per_partition: u64,
    want: impl Fn(u64) -> usize,
) -> usize {
    let mut lacking = 0;
    for p in 0..partitions {
        for seq in 0..per_partition {
            let have = copies.get(&(p, seq)).copied().unwrap_or(0);
            lacking += want(seq).saturating_sub(have);
        }
    }
    lacking
}
