//! The replication engine against real brokers.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use mmm_core::task_data::{Partitioning, TopicSelection};
use mmm_executor::engine::{Engine, EngineError, Limits};
use mmm_test_support::{
    consume_all, create_topic, produce, produce_generated, random_name, KafkaBroker,
};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

#[test]
fn records_arrive_byte_exact_in_order_on_the_same_partition() {
    exact_and_in_order(Limits::default());
}

/// What a long link to the target does (several producers, each source partition on one of
/// them), at 0 ms: order within each partition and the commits must not change.
#[test]
fn records_spread_over_several_producers_keep_each_partitions_order() {
    exact_and_in_order(Limits {
        target_producers: Some(3),
        ..Limits::default()
    });
}

/// What a long link from the source does (the group member hands partitions to fetch-only
/// consumers), at 0 ms: every record once, in order, and the commits exact.
#[test]
fn records_read_by_several_source_consumers_keep_each_partitions_order() {
    exact_and_in_order(Limits {
        source_consumers: Some(3),
        ..Limits::default()
    });
}

fn exact_and_in_order(limits: Limits) {
    let consumers = limits.source_consumers.unwrap_or(1);
    let source = KafkaBroker::start().expect("source broker");
    let target = KafkaBroker::start().expect("target broker");
    let topic = random_name("exact");
    create_topic(&source.bootstrap(), &topic, 8).expect("source topic");
    let sent = records_with_headers(100_000, 8);
    produce(&source.bootstrap(), &topic, &sent).expect("load source");

    let group = group();
    let mut data = task(&source.bootstrap(), &target.bootstrap(), &[&topic], &group);
    data.consumer
        .insert("statistics.interval.ms".into(), "500".into());
    let engine = Engine::start(data, limits).expect("engine starts");
    let got = consume_all(
        &target.bootstrap(),
        &topic,
        sent.len(),
        Duration::from_secs(120),
    )
    .expect("all records in the target");
    // 8 partitions over the consumers, the member first: 3 are its own, 5 the fetchers' (so
    // those 5 partitions' records above came through the fetchers: the member pauses them).
    let handed_off = engine
        .metrics()
        .partitions_handed_off
        .load(Ordering::Relaxed);
    assert_eq!(handed_off, 8 - 8u64.div_ceil(consumers as u64));
    // Every partition's lag, whichever consumer reads it, counts from the member's commits.
    let metrics = engine.metrics();
    wait_until("no lag on any partition", Duration::from_secs(30), || {
        let lag = metrics.lag();
        lag.len() == 8 && lag.values().all(|&l| l == 0)
    });
    let summary = {
        engine.stop(Duration::from_secs(10));
        join_engine(engine, "the engine").expect("clean stop")
    };

    assert_eq!(got.len(), sent.len(), "no duplicates in a clean run");
    let per_partition = by_partition(&got);
    for (p, records) in &per_partition {
        let expected: Vec<_> = sent.iter().filter(|r| r.partition == *p).collect();
        assert_eq!(records.len(), expected.len(), "partition {p}");
        for (got, want) in records.iter().zip(expected) {
            let want = mirrored(want, source.cluster_id());
            assert!(
                got.matches(&want),
                "partition {p}: {got:?} differs from {want:?}"
            );
        }
    }
    assert_eq!(per_partition.len(), 8);
    let offsets = committed(&source.bootstrap(), &group, &topic, 8);
    for (p, records) in &per_partition {
        assert_eq!(
            offsets[*p as usize],
            records.len() as i64,
            "committed offset of partition {p}"
        );
        assert_eq!(
            summary.committed.get(&(topic.clone(), *p)),
            Some(&(records.len() as i64))
        );
    }
}

#[test]
fn target_unavailable_for_ten_seconds_loses_nothing() {
    outage_loses_nothing(Limits::default());
}

/// Backpressure pauses the partitions where they are read, the fetchers' included.
#[test]
fn target_unavailable_with_several_source_consumers_loses_nothing() {
    outage_loses_nothing(Limits {
        source_consumers: Some(3),
        ..Limits::default()
    });
}

fn outage_loses_nothing(limits: Limits) {
    let source = KafkaBroker::start().expect("source broker");
    let mut target = KafkaBroker::start().expect("target broker");
    let topic = random_name("outage");
    create_topic(&source.bootstrap(), &topic, 8).expect("source topic");
    produce_generated(&source.bootstrap(), &topic, 8, 40_000, 200).expect("first load");
    let engine = Engine::start(
        task(
            &source.bootstrap(),
            &target.bootstrap(),
            &[&topic],
            &group(),
        ),
        limits,
    )
    .expect("engine starts");
    let metrics = engine.metrics();
    wait_until("first deliveries", Duration::from_secs(60), || {
        metrics.records_produced.load(Ordering::Relaxed) > 0
    });

    target.pause().expect("target paused");
    let outage = std::time::Instant::now();
    produce_generated(&source.bootstrap(), &topic, 8, 40_000, 200).expect("load during the outage");
    let produced_during = metrics.records_produced.load(Ordering::Relaxed);
    while outage.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    target.resume().expect("target back");

    // Both loads number each partition's records from 0, so every
    // (partition, sequence) pair must arrive twice.
    let (_, misplaced) = copies_until(&target.bootstrap(), &topic, |copies| {
        lacking(copies, 8, 5_000, |_| 2)
    });
    assert_eq!(misplaced, 0);
    assert!(
        produced_during < 80_000,
        "the outage happened while records were still to be copied"
    );
    assert!(
        metrics.backpressure_pauses.load(Ordering::Relaxed) > 0,
        "the in-flight bound stopped consumption during the outage"
    );
    engine.stop(Duration::from_secs(10));
    let summary = join_engine(engine, "the engine").expect("clean stop");
    assert_eq!(summary.undelivered, 0);
    let total: i64 = summary.committed.values().sum();
    assert_eq!(total, 80_000, "everything delivered is committed");
}

#[test]
fn a_delivery_that_keeps_failing_stops_the_engine_without_committing_past_it() {
    let source = KafkaBroker::start().expect("source broker");
    let mock = MockCluster::new(1).expect("mock target cluster");
    let topic = random_name("failing");
    create_topic(&source.bootstrap(), &topic, 2).expect("source topic");
    mock.create_topic(&topic, 2, 1).expect("target topic");
    produce_generated(&source.bootstrap(), &topic, 2, 1_000, 100).expect("first load");

    let group = group();
    let mut data = task(
        &source.bootstrap(),
        &mock.bootstrap_servers(),
        &[&topic],
        &group,
    );
    data.create_topics = false;
    data.offset_commit_interval_ms = 100;
    data.producer
        .insert("message.timeout.ms".into(), "3000".into());
    data.producer.insert("retry.backoff.ms".into(), "50".into());
    let engine = Engine::start(data, Limits::default()).expect("engine starts");
    wait_until("the first load committed", Duration::from_secs(60), || {
        committed(&source.bootstrap(), &group, &topic, 2) == vec![500, 500]
    });

    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 10_000],
    );
    produce_generated(&source.bootstrap(), &topic, 2, 100, 100).expect("second load");
    let err =
        join_engine(engine, "the engine").expect_err("the engine stops with the delivery error");
    match &err {
        EngineError::Delivery {
            topic: t,
            partition,
            offset,
            ..
        } => {
            assert_eq!(t, &topic);
            assert!((0..2).contains(partition));
            assert!(
                *offset >= 500,
                "a record of the second load failed: {offset}"
            );
        }
        other => panic!("expected a delivery error, got {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&topic) && text.contains("after the producer's retries"),
        "{text}"
    );
    assert_eq!(
        committed(&source.bootstrap(), &group, &topic, 2),
        vec![500, 500],
        "nothing past the failed records is committed"
    );
}

#[test]
fn a_member_joining_mid_stream_loses_nothing() {
    member_joining_mid_stream_loses_nothing(Limits::default());
}

/// A revoke takes the partitions back from the fetchers before their offsets are committed.
#[test]
fn a_member_joining_mid_stream_with_several_source_consumers_loses_nothing() {
    member_joining_mid_stream_loses_nothing(Limits {
        source_consumers: Some(3),
        ..Limits::default()
    });
}

fn member_joining_mid_stream_loses_nothing(limits: Limits) {
    let source = KafkaBroker::start().expect("source broker");
    let target = KafkaBroker::start().expect("target broker");
    let topic = random_name("rebalance");
    create_topic(&source.bootstrap(), &topic, 8).expect("source topic");
    create_topic(&target.bootstrap(), &topic, 8).expect("target topic");
    produce_generated(&source.bootstrap(), &topic, 8, 30_000, 200).expect("first load");
    let group = group();
    let data = task(&source.bootstrap(), &target.bootstrap(), &[&topic], &group);
    let first = Engine::start(data.clone(), limits.clone()).expect("first member");
    wait_until("first deliveries", Duration::from_secs(60), || {
        first.metrics().records_produced.load(Ordering::Relaxed) > 0
    });
    let second = Engine::start(data, limits).expect("second member");
    let loader = {
        let bootstrap = source.bootstrap();
        let topic = topic.clone();
        std::thread::spawn(move || {
            for _ in 0..5 {
                produce_generated(&bootstrap, &topic, 8, 6_000, 200)?;
            }
            Ok::<_, mmm_test_support::Error>(())
        })
    };
    wait_until(
        "the second member copies records",
        Duration::from_secs(60),
        || second.metrics().records_produced.load(Ordering::Relaxed) > 0,
    );
    join_within(loader, "the loader").expect("later loads");

    // 30,000 + 5 x 6,000 records; each load numbers each partition's records
    // from 0, so the first 750 sequences of a partition arrive 6 times.
    let (_, misplaced) = copies_until(&target.bootstrap(), &topic, |copies| {
        lacking(copies, 8, 3_750, |seq| if seq < 750 { 6 } else { 1 })
    });
    assert_eq!(misplaced, 0, "same partition number");
    first.stop(Duration::from_secs(10));
    second.stop(Duration::from_secs(10));
    join_engine(first, "the first engine").expect("first stops cleanly");
    join_engine(second, "the second engine").expect("second stops cleanly");
}

#[test]
fn preserve_fails_clearly_when_the_target_has_fewer_partitions() {
    let source = KafkaBroker::start().expect("source broker");
    let target = KafkaBroker::start().expect("target broker");
    let topic = random_name("narrow");
    create_topic(&source.bootstrap(), &topic, 4).expect("source topic");
    create_topic(&target.bootstrap(), &topic, 2).expect("narrower target topic");
    produce_generated(&source.bootstrap(), &topic, 4, 100, 100).expect("load");
    let group = group();
    let mut data = task(&source.bootstrap(), &target.bootstrap(), &[&topic], &group);
    // With create_topics the target would be grown to the source's count.
    data.create_topics = false;
    let engine = Engine::start(data, Limits::default()).expect("engine starts");
    let err = join_engine(engine, "the engine").expect_err("preserve is impossible");
    assert!(
        matches!(
            err,
            EngineError::TooFewTargetPartitions {
                source_partitions: 4,
                target_partitions: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_configuration());
    assert!(err.to_string().contains(&topic));
    assert_eq!(
        committed(&source.bootstrap(), &group, &topic, 4),
        vec![-1; 4]
    );
}

#[test]
fn regex_hash_partitioning_and_renamed_targets() {
    let source = KafkaBroker::start().expect("source broker");
    let target = KafkaBroker::start().expect("target broker");
    let stem = random_name("rx").replace('-', "_");
    let topics = [format!("{stem}.a"), format!("{stem}.b")];
    for t in &topics {
        create_topic(&source.bootstrap(), t, 3).expect("source topic");
        produce(&source.bootstrap(), t, &records_with_headers(300, 3)).expect("load");
    }
    create_topic(&source.bootstrap(), &format!("other_{stem}"), 1).expect("unmatched topic");
    let mut data = task(&source.bootstrap(), &target.bootstrap(), &["x"], &group());
    data.topics = TopicSelection::Regex(format!("{stem}\\..*"));
    data.partitioning = Partitioning::Hash;
    data.target_topic_prefix = "dc1.".into();
    data.target_topic_suffix = ".copy".into();
    let engine = Engine::start(data, Limits::default()).expect("engine starts");
    for t in &topics {
        let copied = consume_all(
            &target.bootstrap(),
            &format!("dc1.{t}.copy"),
            300,
            Duration::from_secs(120),
        )
        .expect("records in the renamed target");
        let mut keys: Vec<_> = copied.iter().filter_map(|r| r.key.clone()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 300);
        // Hash partitioning: a key always lands on the same partition.
        let mut by_key = std::collections::HashMap::new();
        for r in &copied {
            let p = by_key.entry(r.key.clone()).or_insert(r.partition);
            assert_eq!(*p, r.partition);
        }
    }
    engine.stop(Duration::from_secs(10));
    join_engine(engine, "the engine").expect("clean stop");
}
