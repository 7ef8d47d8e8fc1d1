//! Provenance headers and loop-free two-way mirroring, on real brokers.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mmm_core::task_data::{TaskData, PROVENANCE_HEADER};
use mmm_executor::engine::{Engine, Limits};
use mmm_executor::metrics::Metrics;
use mmm_test_support::{
    consume_all, consume_until_idle, create_topic, produce, random_name, ConsumedRecord,
    KafkaBroker, TestRecord,
};

const PARTITIONS: i32 = 4;

/// Source records of four kinds, in turn within each partition, so that
/// every partition ends with a record the mirror must pass over: with two
/// headers, with none, already marked by a third cluster, and marked by
/// `target_name` (it came from the target).
fn mixed_records(n: usize, target_name: &str) -> Vec<TestRecord> {
    (0..n)
        .map(|i| {
            let p = (i % PARTITIONS as usize) as i32;
            let plain = TestRecord::new(p, format!("key-{i}"), format!("value-{i}"))
                .with_timestamp(1_600_000_000_000 + i as i64);
            let with_headers = plain
                .clone()
                .with_header("seq", (i as u64).to_be_bytes().to_vec())
                .with_header("bin", vec![0u8, 255, 7]);
            match (i / PARTITIONS as usize) % 4 {
                0 => with_headers,
                1 => plain,
                2 => with_headers.with_header(PROVENANCE_HEADER, b"far-away".to_vec()),
                _ => with_headers.with_header(PROVENANCE_HEADER, target_name.as_bytes().to_vec()),
            }
        })
        .collect()
}

/// Mirrors `sent` once with `task` and checks, per partition and in order,
/// that the target holds exactly `expected`, byte for byte; that the
/// engine passed over `skipped` records; and that the group's commits
/// reached the end of every source partition all the same.
fn mirror_and_check(
    source: &KafkaBroker,
    target: &KafkaBroker,
    topic: &str,
    task: TaskData,
    sent: &[TestRecord],
    expected: &[TestRecord],
    skipped: u64,
) {
    let group = task.consumer.get("group.id").cloned().expect("a group");
    produce(&source.bootstrap(), topic, sent).expect("load source");
    let engine = Engine::start(task, Limits::default()).expect("engine starts");
    let metrics = engine.metrics();
    let got = consume_all(
        &target.bootstrap(),
        topic,
        expected.len(),
        Duration::from_secs(120),
    )
    .expect("the records in the target");
    wait_until("every source record seen", Duration::from_secs(60), || {
        metrics.records_consumed.load(Ordering::Relaxed) == sent.len() as u64
    });
    engine.stop(Duration::from_secs(10));
    let summary = join_engine(engine, "the engine").expect("clean stop");

    assert_eq!(got.len(), expected.len(), "nothing more, nothing less");
    let per_partition = by_partition(&got);
    for p in 0..PARTITIONS {
        let want: Vec<_> = expected.iter().filter(|r| r.partition == p).collect();
        let have = per_partition.get(&p).cloned().unwrap_or_default();
        assert_eq!(have.len(), want.len(), "partition {p}");
        for (got, want) in have.iter().zip(want) {
            assert!(got.matches(want), "partition {p}: {got:?} is not {want:?}");
        }
    }
    assert_eq!(
        metrics.records_skipped_loop.load(Ordering::Relaxed),
        skipped
    );
    assert_eq!(
        metrics.records_produced.load(Ordering::Relaxed),
        expected.len() as u64
    );
    let offsets = committed(&source.bootstrap(), &group, topic, PARTITIONS);
    for p in 0..PARTITIONS {
        let end = sent.iter().filter(|r| r.partition == p).count() as i64;
        assert_eq!(
            offsets[p as usize], end,
            "committed offset of partition {p}"
        );
        assert_eq!(summary.committed.get(&(topic.to_owned(), p)), Some(&end));
    }
}

#[test]
fn records_get_the_source_clusters_id_and_those_of_the_target_stay_behind() {
    let source = KafkaBroker::start().expect("source broker");
    let target = KafkaBroker::start().expect("target broker");
    let topic = random_name("provenance");
    create_topic(&source.bootstrap(), &topic, PARTITIONS).expect("source topic");
    let sent = mixed_records(2_000, target.cluster_id());
    let mut skipped = 0;
    let expected: Vec<TestRecord> = sent
        .iter()
        .filter_map(
            |r| match r.headers.iter().find(|(n, _)| n == PROVENANCE_HEADER) {
                // A record that names its origin keeps it, whatever the hop.
                Some((_, origin)) if origin.as_slice() == target.cluster_id().as_bytes() => {
                    skipped += 1;
                    None
                }
                Some(_) => Some(r.clone()),
                None => Some(
                    r.clone()
                        .with_header(PROVENANCE_HEADER, source.cluster_id().as_bytes().to_vec()),
                ),
            },
        )
        .collect();
    assert_eq!(skipped, 500);
    let data = task(
        &source.bootstrap(),
        &target.bootstrap(),
        &[&topic],
        &group(),
    );
    assert!(data.provenance, "on by default");
    mirror_and_check(&source, &target, &topic, data, &sent, &expected, skipped);
}

#[test]
fn aliases_name_the_clusters_instead_of_their_ids() {
    let source = KafkaBroker::start().expect("source broker");
    let target = KafkaBroker::start().expect("target broker");
    let topic = random_name("alias");
    create_topic(&source.bootstrap(), &topic, PARTITIONS).expect("source topic");
    // Marked with the target's id, not its alias: such records are mirrored.
    let mut sent = mixed_records(400, "dc-west");
    sent.extend((0..PARTITIONS).map(|p| {
        TestRecord::new(p, "by-id", "x").with_header(PROVENANCE_HEADER, target.cluster_id())
    }));
    let expected: Vec<TestRecord> = sent
        .iter()
        .filter_map(
            |r| match r.headers.iter().find(|(n, _)| n == PROVENANCE_HEADER) {
                Some((_, origin)) if origin.as_slice() == b"dc-west" => None,
                Some(_) => Some(r.clone()),
                None => Some(
                    r.clone()
                        .with_header(PROVENANCE_HEADER, b"dc-east".to_vec()),
                ),
            },
        )
        .collect();
    let mut data = task(
        &source.bootstrap(),
        &target.bootstrap(),
        &[&topic],
        &group(),
    );
    data.source_cluster_alias = Some("dc-east".into());
    data.target_cluster_alias = Some("dc-west".into());
    mirror_and_check(&source, &target, &topic, data, &sent, &expected, 100);
}

#[test]
fn without_provenance_records_go_as_they_are_and_none_stays_behind() {
    let source = KafkaBroker::start().expect("source broker");
    let target = KafkaBroker::start().expect("target broker");
    let topic = random_name("no-provenance");
    create_topic(&source.bootstrap(), &topic, PARTITIONS).expect("source topic");
    let sent = mixed_records(800, target.cluster_id());
    let mut data = task(
        &source.bootstrap(),
        &target.bootstrap(),
        &[&topic],
        &group(),
    );
    data.provenance = false;
    mirror_and_check(&source, &target, &topic, data, &sent, &sent, 0);
}

/// `n` records produced locally on the cluster called `site`.
fn local_records(site: &str, n: usize) -> Vec<TestRecord> {
    (0..n)
        .map(|i| {
            TestRecord::new(
                (i % PARTITIONS as usize) as i32,
                format!("{site}-key-{i}"),
                format!("{site}-value-{i}-{}", "x".repeat(i % 23)),
            )
            .with_header("site", site.as_bytes().to_vec())
        })
        .collect()
}

/// Every record of `cluster`'s topic, read until the topic is quiet.
fn everything(cluster: &KafkaBroker, topic: &str, at_least: usize) -> Vec<ConsumedRecord> {
    consume_until_idle(
        &cluster.bootstrap(),
        topic,
        at_least,
        Duration::from_secs(3),
        Duration::from_secs(120),
    )
    .expect("the topic's records")
}

/// Checks that `held` (one cluster's topic) is every record of both sites
/// exactly once, byte for byte, the remote ones marked with `remote_id`.
fn holds_each_once(
    held: &[ConsumedRecord],
    local: &[TestRecord],
    remote: &[TestRecord],
    remote_id: &str,
    name: &str,
) {
    assert_eq!(
        held.len(),
        local.len() + remote.len(),
        "{name}: record count"
    );
    let mut seen: std::collections::HashMap<_, Vec<&ConsumedRecord>> = Default::default();
    for r in held {
        seen.entry(r.key.clone()).or_default().push(r);
    }
    for (records, origin) in [(local, None), (remote, Some(remote_id))] {
        for want in records {
            let copies = seen.get(&want.key).map_or(&[][..], Vec::as_slice);
            assert_eq!(copies.len(), 1, "{name}: copies of {want:?}");
            let got = copies[0];
            let expected = match origin {
                None => want.clone(),
                Some(id) => want
                    .clone()
                    .with_header(PROVENANCE_HEADER, id.as_bytes().to_vec()),
            };
            assert!(
                got.matches(&expected),
                "{name}: {got:?} is not {expected:?}"
            );
        }
    }
}

/// The counters of both mirrors that would move if a record looped.
fn activity(a: &Metrics, b: &Metrics) -> [u64; 4] {
    [
        a.records_consumed.load(Ordering::Relaxed),
        a.records_produced.load(Ordering::Relaxed),
        b.records_consumed.load(Ordering::Relaxed),
        b.records_produced.load(Ordering::Relaxed),
    ]
}

#[test]
fn two_way_mirroring_of_the_same_topic_holds_each_record_once_and_goes_idle() {
    let east = KafkaBroker::start().expect("east broker");
    let west = KafkaBroker::start().expect("west broker");
    let topic = random_name("active-active");
    create_topic(&east.bootstrap(), &topic, PARTITIONS).expect("east topic");
    create_topic(&west.bootstrap(), &topic, PARTITIONS).expect("west topic");
    let east_to_west = Engine::start(
        task(&east.bootstrap(), &west.bootstrap(), &[&topic], &group()),
        Limits::default(),
    )
    .expect("east → west");
    let west_to_east = Engine::start(
        task(&west.bootstrap(), &east.bootstrap(), &[&topic], &group()),
        Limits::default(),
    )
    .expect("west → east");
    let (to_west, to_east) = (east_to_west.metrics(), west_to_east.metrics());

    // Both sites produce at once, while both mirrors run.
    const N: usize = 3_000;
    let east_records = Arc::new(local_records("east", N));
    let west_records = Arc::new(local_records("west", N));
    let producers: Vec<_> = [
        (east.bootstrap(), east_records.clone()),
        (west.bootstrap(), west_records.clone()),
    ]
    .into_iter()
    .map(|(bootstrap, records)| {
        let topic = topic.clone();
        std::thread::spawn(move || {
            for chunk in records.chunks(500) {
                produce(&bootstrap, &topic, chunk).expect("local producer");
            }
        })
    })
    .collect();
    for producer in producers {
        join_within(producer, "a local producer");
    }

    // Each mirror copies the other site's records and passes over those it
    // copied itself when they come back.
    wait_until("both mirrors drained", Duration::from_secs(120), || {
        to_west.records_produced.load(Ordering::Relaxed) >= N as u64
            && to_east.records_produced.load(Ordering::Relaxed) >= N as u64
            && to_west.records_skipped_loop.load(Ordering::Relaxed) >= N as u64
            && to_east.records_skipped_loop.load(Ordering::Relaxed) >= N as u64
    });
    let east_held = everything(&east, &topic, 2 * N);
    let west_held = everything(&west, &topic, 2 * N);
    holds_each_once(
        &east_held,
        &east_records,
        &west_records,
        west.cluster_id(),
        "east",
    );
    holds_each_once(
        &west_held,
        &west_records,
        &east_records,
        east.cluster_id(),
        "west",
    );

    // Idle: for several seconds after draining, neither mirror takes or
    // writes a record (a loop would keep both busy).
    let drained = activity(&to_west, &to_east);
    assert_eq!(drained, [2 * N as u64, N as u64, 2 * N as u64, N as u64]);
    let quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(5) {
        assert_eq!(
            activity(&to_west, &to_east),
            drained,
            "a mirror is still busy"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(everything(&east, &topic, 2 * N).len(), 2 * N);
    assert_eq!(everything(&west, &topic, 2 * N).len(), 2 * N);

    for (engine, what) in [(east_to_west, "east → west"), (west_to_east, "west → east")] {
        engine.stop(Duration::from_secs(10));
        let summary = join_engine(engine, what).expect("clean stop");
        assert_eq!(summary.undelivered, 0, "{what}");
        let committed: i64 = summary.committed.values().sum();
        assert_eq!(
            committed,
            2 * N as i64,
            "{what}: commits pass the skipped records"
        );
    }
}
