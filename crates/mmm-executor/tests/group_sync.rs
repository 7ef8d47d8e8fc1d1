//! Consumer group offset sync against real brokers: a group's committed
//! source offsets are written, translated, for the same group on the target;
//! a group with a live member on the target is left alone, and a target
//! offset never moves backwards.
//!
//! Tansu serves every API this needs (ListGroups, DescribeGroups,
//! OffsetFetch, OffsetCommit without membership), with one difference from
//! Kafka: it lists and describes a group only once the group has committed
//! offsets (Kafka describes a group with members but no commits as Stable,
//! and an unknown one as Dead). The live member here therefore commits
//! first, as live consumers do.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use mmm_core::task_data::GroupSelection;
use mmm_executor::engine::{Engine, Limits};
use mmm_test_support::{consume_all, create_topic, produce, random_name, KafkaBroker};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Commits `offsets` (per partition) for `group` without joining it, as
/// `kafka-consumer-groups.sh --reset-offsets` does.
fn commit_offsets(bootstrap: &str, group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("committer");
    let mut tpl = TopicPartitionList::new();
    for &(p, o) in offsets {
        tpl.add_partition_offset(topic, p, Offset::Offset(o))
            .expect("partition");
    }
    consumer
        .commit(&tpl, CommitMode::Sync)
        .expect("offsets committed");
}

#[test]
fn selected_groups_get_translated_offsets_on_the_target_unless_live_there_or_ahead() {
    let source = KafkaBroker::start().expect("source broker");
    let target = KafkaBroker::start().expect("target broker");
    let topic = random_name("app-topic");
    create_topic(&source.bootstrap(), &topic, 2).expect("source topic");
    // Another writer first: target offsets differ from the source's.
    create_topic(&target.bootstrap(), &topic, 2).expect("target topic");
    let foreign: Vec<_> = (0..10)
        .map(|i| mmm_test_support::TestRecord::new(i % 2, "foreign", format!("foreign-{i}")))
        .collect();
    produce(&target.bootstrap(), &topic, &foreign).expect("foreign records");
    let sent = records_with_headers(400, 2);
    produce(&source.bootstrap(), &topic, &sent).expect("source records");

    let idle = random_name("app-idle");
    let busy = random_name("app-busy");
    commit_offsets(&source.bootstrap(), &idle, &topic, &[(0, 120), (1, 45)]);
    commit_offsets(&source.bootstrap(), &busy, &topic, &[(0, 10), (1, 10)]);
    // On the target, the idle group already stands past the translation of 45.
    commit_offsets(&target.bootstrap(), &idle, &topic, &[(1, 190)]);

    // The busy group has a live member on the target.
    let stop_member = Arc::new(AtomicBool::new(false));
    let joined = Arc::new(AtomicBool::new(false));
    let member = {
        let (bootstrap, topic, busy, stop, joined) = (
            target.bootstrap(),
            topic.clone(),
            busy.clone(),
            stop_member.clone(),
            joined.clone(),
        );
        std::thread::spawn(move || {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("group.id", &busy)
                .set("session.timeout.ms", "6000")
                .set("enable.auto.commit", "false")
                .create()
                .expect("member");
            consumer.subscribe(&[&topic]).expect("subscribed");
            while !stop.load(Ordering::Acquire) {
                let _ = consumer.poll(Duration::from_millis(100));
                if !joined.load(Ordering::Acquire)
                    && consumer.assignment().is_ok_and(|a| a.count() == 2)
                {
                    // Tansu describes a group only once it has committed
                    // offsets; a live consumer has, typically.
                    let mut tpl = TopicPartitionList::new();
                    for p in 0..2 {
                        tpl.add_partition_offset(&topic, p, Offset::Offset(3))
                            .expect("partition");
                    }
                    consumer
                        .commit(&tpl, CommitMode::Sync)
                        .expect("member commits");
                    joined.store(true, Ordering::Release);
                }
            }
        })
    };
    wait_until("the target member joined", Duration::from_secs(60), || {
        joined.load(Ordering::Acquire)
    });

    // The mirror's own group matches the selection too, and is never synced.
    let own = random_name("app-mirror");
    let mut data = task(&source.bootstrap(), &target.bootstrap(), &[&topic], &own);
    data.offset_sync_topic = random_name("offset-syncs");
    data.sync_groups = GroupSelection::Regex("app-.*".into());
    data.sync_groups_interval_ms = 300;
    let engine = Engine::start(data.clone(), Limits::default()).expect("engine starts");
    let metrics = engine.metrics();
    consume_all(&target.bootstrap(), &topic, 410, Duration::from_secs(120)).expect("mirrored");
    // Partition 0: 5 foreign records, then source 0.. at 5..: 120 → 125.
    // Partition 1 stays: the translation of 45 (50) is behind 190.
    wait_until("the idle group synced", Duration::from_secs(60), || {
        committed(&target.bootstrap(), &idle, &topic, 2) == vec![125, 190]
    });
    wait_until("the busy group skipped", Duration::from_secs(60), || {
        metrics
            .replication()
            .group_syncs
            .get(&busy)
            .and_then(|r| r.skipped.clone())
            .is_some_and(|s| s.contains("active member"))
    });
    let report = metrics.replication();
    let idle_report = &report.group_syncs[&idle];
    assert_eq!(idle_report.partitions, 1, "{report:?}");
    assert!(idle_report.last_sync_unix_ms > 0);
    assert!(
        !report.group_syncs.keys().any(|g| !g.starts_with("app-")),
        "only selected groups: {report:?}"
    );
    assert!(
        !report.group_syncs.contains_key(&own),
        "never the mirror's own group: {report:?}"
    );
    assert_eq!(
        committed(&target.bootstrap(), &own, &topic, 2),
        vec![-1, -1]
    );

    let copied = consume_all(&target.bootstrap(), &topic, 410, Duration::from_secs(60))
        .expect("target records");
    let at = copied
        .iter()
        .find(|r| r.partition == 0 && r.offset == 125)
        .expect("record at the translated offset");
    let want = sent
        .iter()
        .filter(|r| r.partition == 0)
        .nth(120)
        .expect("source 120");
    assert!(
        at.matches(&mirrored(want, source.cluster_id())),
        "target 125 holds source 120: {at:?}"
    );
    assert_eq!(
        committed(&target.bootstrap(), &busy, &topic, 2),
        vec![3, 3],
        "the live group was not moved"
    );

    stop_member.store(true, Ordering::Release);
    join_within(member, "the target member");
    engine.stop(Duration::from_secs(10));
    join_engine(engine, "the engine").expect("clean stop");

    // A restarted mirror with nothing new to copy still syncs the group,
    // from the mapping it read back.
    let engine = Engine::start(data, Limits::default()).expect("engine restarts");
    commit_offsets(&source.bootstrap(), &idle, &topic, &[(0, 200), (1, 199)]);
    wait_until(
        "the idle group synced again",
        Duration::from_secs(60),
        || committed(&target.bootstrap(), &idle, &topic, 2) == vec![205, 204],
    );
    assert_eq!(
        engine.metrics().records_produced.load(Ordering::Relaxed),
        0,
        "nothing copied again"
    );
    engine.stop(Duration::from_secs(10));
    join_engine(engine, "the restarted engine").expect("clean stop");
}
