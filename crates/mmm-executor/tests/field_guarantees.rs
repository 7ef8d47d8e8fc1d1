//! Safe defaults: Java's murmur2 for "hash", and Java's `none` offset reset
//! failing the task with the partition named.

mod field;

use std::time::Duration;

use field::*;
use mmm_core::task_data::Partitioning;
use mmm_executor::engine::{Engine, EngineError, Limits};
use mmm_test_support::{create_topic, produce, random_name, KafkaBroker, TestRecord};

/// Known key → hash pairs of the Java client (`UtilsTest.testMurmur2`).
#[test]
fn the_tests_murmur2_is_the_java_clients() {
    for (key, hash) in [
        (&b"21"[..], -973_932_308),
        (b"foobar", -790_332_482),
        (b"a-little-bit-long-string", -985_981_536),
        (b"a-little-bit-longer-string", -1_486_304_829),
        (
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58_897_971,
        ),
        (b"abc", 479_470_107),
    ] {
        assert_eq!(murmur2(key), hash, "{}", String::from_utf8_lossy(key));
    }
}

#[test]
fn hash_puts_each_key_where_a_java_producer_would() {
    let source = KafkaBroker::start().expect("source broker");
    let target = KafkaBroker::start().expect("target broker");
    let topic = random_name("hash");
    create_topic(&source.bootstrap(), &topic, 7).expect("source topic");
    // Everything on source partition 0, so only the partitioner spreads them.
    let sent: Vec<TestRecord> = (0..300)
        .map(|i| TestRecord::new(0, format!("customer-{i}"), format!("order-{i}")))
        .collect();
    produce(&source.bootstrap(), &topic, &sent).expect("load source");
    let mut task = bare_task(&source.bootstrap(), &target.bootstrap(), &[&topic], &[]);
    task.partitioning = Partitioning::Hash;
    let engine = Engine::start(task, Limits::default()).expect("engine starts");
    let got = read_until_idle(
        &target.bootstrap(),
        &topic,
        sent.len(),
        Duration::from_secs(2),
        Duration::from_secs(120),
    );
    engine.stop(Duration::from_secs(10));
    engine.join().expect("clean stop");
    assert_eq!(got.len(), sent.len());
    let mut used = std::collections::BTreeSet::new();
    for r in &got {
        let key = r.key.as_deref().expect("keyed");
        assert_eq!(
            r.partition,
            java_partition(key, 7),
            "key {}",
            String::from_utf8_lossy(key)
        );
        used.insert(r.partition);
    }
    assert_eq!(used.len(), 7, "the keys spread over every partition");
}

#[test]
fn javas_none_fails_the_task_naming_the_partition() {
    let source = KafkaBroker::start().expect("source broker");
    let target = KafkaBroker::start().expect("target broker");
    let topic = random_name("none");
    create_topic(&source.bootstrap(), &topic, 1).expect("source topic");
    produce(&source.bootstrap(), &topic, &[TestRecord::new(0, "k", "v")]).expect("load");
    // The scheduler maps Java's "none" to librdkafka's "error".
    let task = bare_task(
        &source.bootstrap(),
        &target.bootstrap(),
        &[&topic],
        &[("auto.offset.reset", "error")],
    );
    let engine = Engine::start(task, Limits::default()).expect("engine starts");
    let outcome = join_within(engine, Duration::from_secs(120));
    match outcome {
        Err(e @ EngineError::NoOffset { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains(&format!("{topic}-0")) && text.contains("auto.offset.reset"),
                "{text}"
            );
            assert!(e.is_configuration());
        }
        other => panic!("expected a missing-offset failure, got {other:?}"),
    }
}
