//! Target topics mirror their source: configuration and partition count.
//!
//! Tansu takes DescribeConfigs and CreateTopics with configurations, but has
//! no CreatePartitions and does not check a replication factor against its
//! broker count: the refusal of a factor is covered by target_topics' unit
//! tests.

mod field;

use std::time::Duration;

use field::*;
use mmm_executor::engine::{Engine, EngineError, Limits};
use mmm_test_support::{
    create_topic, produce, random_name, wait_for_partitions, KafkaBroker, TestRecord,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client")
}

fn opts() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)))
}

/// Tansu answers CreatePartitions with "unsupported", so neither a source
/// nor a target can grow on it: this test shows that a target with fewer
/// partitions than its source is grown before anything is routed to it, and
/// that a refusal fails the task naming the topic (never a record sent to a
/// partition the target lacks). The growth itself is what the same code does
/// when a source grows mid-stream. No test broker can add partitions to a
/// topic (librdkafka's mock cluster cannot either), so records of partitions
/// added mid-stream are not shown arriving on a real target; the growth is
/// covered by the unit tests of `target_topics::cover` with scripted
/// partition counts. See docs/task-data.md.
#[test]
fn a_target_with_fewer_partitions_is_grown_or_the_task_fails_naming_it() {
    let source = KafkaBroker::start().expect("source broker");
    let target = KafkaBroker::start().expect("target broker");
    let topic = random_name("grows");
    create_topic(&source.bootstrap(), &topic, 3).expect("source topic");
    create_topic(&target.bootstrap(), &topic, 1).expect("smaller target topic");
    produce(&source.bootstrap(), &topic, &[TestRecord::new(2, "k", "v")]).expect("load");
    let engine = Engine::start(
        bare_task(&source.bootstrap(), &target.bootstrap(), &[&topic], &[]),
        Limits::default(),
    )
    .expect("engine starts");
    match join_within(engine, Duration::from_secs(120)) {
        Err(e @ EngineError::GrowTopic { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains(&topic)
                    && text.contains("1 to 3")
                    && text.contains("UnsupportedFeature"),
                "{text}"
            );
        }
        other => panic!("expected Tansu to refuse the growth, got {other:?}"),
    }
    let got = read_until_idle(
        &target.bootstrap(),
        &topic,
        0,
        Duration::from_secs(1),
        Duration::from_secs(60),
    );
    assert!(got.is_empty(), "nothing was routed: {got:?}");
}

#[test]
fn a_compacted_source_gives_a_compacted_target_with_its_configs() {
    let source = KafkaBroker::start().expect("source broker");
    let target = KafkaBroker::start().expect("target broker");
    let topic = random_name("compacted");
    let new_topic = NewTopic::new(&topic, 2, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("retention.ms", "86400000")
        .set("min.compaction.lag.ms", "60000")
        .set("max.message.bytes", "2097152")
        .set("message.timestamp.type", "CreateTime");
    let created = futures::executor::block_on(
        admin(&source.bootstrap()).create_topics([&new_topic], &opts()),
    )
    .expect("CreateTopics answered");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    wait_for_partitions(&source.bootstrap(), &topic, 2).expect("source topic");
    let sent = vec![TestRecord::new(0, "k", "v"), TestRecord::new(1, "k2", "v2")];
    produce(&source.bootstrap(), &topic, &sent).expect("load");

    let mut task = bare_task(&source.bootstrap(), &target.bootstrap(), &[&topic], &[]);
    task.replication_factor = Some(1);
    let engine = Engine::start(task, Limits::default()).expect("engine starts");
    let got = read_until_idle(
        &target.bootstrap(),
        &topic,
        sent.len(),
        Duration::from_millis(500),
        Duration::from_secs(120),
    );
    engine.stop(Duration::from_secs(10));
    engine.join().expect("clean stop");
    assert_byte_exact(&sent, &got, source.cluster_id(), "compacted");

    let described = futures::executor::block_on(
        admin(&target.bootstrap()).describe_configs([&ResourceSpecifier::Topic(&topic)], &opts()),
    )
    .expect("DescribeConfigs answered");
    let resource = described
        .into_iter()
        .next()
        .expect("one result")
        .expect("target topic described");
    for (key, value) in [
        ("cleanup.policy", "compact"),
        ("retention.ms", "86400000"),
        ("min.compaction.lag.ms", "60000"),
        ("max.message.bytes", "2097152"),
        ("message.timestamp.type", "CreateTime"),
    ] {
        let entry = resource.get(key);
        assert_eq!(
            entry.and_then(|e| e.value.as_deref()),
            Some(value),
            "target {key}"
        );
    }
}
