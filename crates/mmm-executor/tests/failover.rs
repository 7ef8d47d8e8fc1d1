//! Consumer failover and failback on real brokers: an application group
//! reads part of a topic on the source and commits; the mirror copies the
//! topic and syncs the group; the source is lost; the group resumes on the
//! target, reads part further, then the mirror runs the other way into a
//! fresh source cluster and the group resumes there. Each time: no record
//! skipped, none read again.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use mmm_core::task_data::GroupSelection;
use mmm_executor::engine::{Engine, Limits};
use mmm_test_support::{
    consume_all, consume_as_group, create_topic, produce, random_name, KafkaBroker, TestRecord,
};

const PARTITIONS: i32 = 2;
const PER_PARTITION: usize = 400;

/// The application: reads from the group's committed offsets, at most
/// `limit` records per partition, commits and leaves; the values it processed.
fn application(bootstrap: &str, group: &str, topic: &str, limit: Option<usize>) -> Vec<Vec<u8>> {
    consume_as_group(
        bootstrap,
        group,
        topic,
        PARTITIONS,
        limit,
        Duration::from_secs(90),
    )
    .expect("the application")
    .into_iter()
    .map(|r| r.value.unwrap_or_default())
    .collect()
}

/// A task mirroring `topic` that syncs `app_group`.
fn mirror(source: &str, target: &str, topic: &str, app_group: &str) -> Engine {
    let mut data = task(source, target, &[topic], &group());
    data.offset_sync_topic = random_name("offset-syncs");
    data.sync_groups = GroupSelection::List(vec![app_group.to_owned()]);
    data.sync_groups_interval_ms = 300;
    Engine::start(data, Limits::default()).expect("mirror starts")
}

/// Waits until `group`'s offsets on `target` are the translation of those it
/// committed on the source: the mirror's report says a sync wrote them and
/// the target holds the translated offsets.
fn wait_for_group_sync(
    engine: &Engine,
    target: &str,
    group: &str,
    topic: &str,
    source_offsets: &[i64],
) {
    let want: Vec<i64> = (0..PARTITIONS)
        .map(|p| {
            engine
                .translate(topic, p, source_offsets[p as usize])
                .expect("translatable")
        })
        .collect();
    wait_until(
        "the group synced to the target",
        Duration::from_secs(90),
        || committed(target, group, topic, PARTITIONS) == want,
    );
    let report = engine.metrics().replication();
    assert!(
        report
            .group_syncs
            .get(group)
            .is_some_and(|r| r.last_sync_unix_ms > 0),
        "{report:?}"
    );
}

#[test]
fn a_group_fails_over_to_the_target_and_back_without_skipping_or_rereading() {
    let mut source = KafkaBroker::start().expect("source broker");
    let target = KafkaBroker::start().expect("target broker");
    let topic = random_name("orders");
    let app = random_name("billing");
    create_topic(&source.bootstrap(), &topic, PARTITIONS).expect("source topic");
    // The target's log does not start where the source's does.
    create_topic(&target.bootstrap(), &topic, PARTITIONS).expect("target topic");
    let foreign: Vec<_> = (0..6)
        .map(|i| TestRecord::new(i % PARTITIONS, "other", format!("other-{i}")))
        .collect();
    produce(&target.bootstrap(), &topic, &foreign).expect("other records");
    let records = records_with_headers(PER_PARTITION * PARTITIONS as usize, PARTITIONS);
    produce(&source.bootstrap(), &topic, &records).expect("source records");
    let all: HashSet<Vec<u8>> = records.iter().filter_map(|r| r.value.clone()).collect();

    // The application reads part of the topic on the source.
    let mut processed = application(&source.bootstrap(), &app, &topic, Some(150));
    let on_source = committed(&source.bootstrap(), &app, &topic, PARTITIONS);
    assert_eq!(on_source, vec![150, 150]);

    let forward = mirror(&source.bootstrap(), &target.bootstrap(), &topic, &app);
    consume_all(
        &target.bootstrap(),
        &topic,
        records.len() + foreign.len(),
        Duration::from_secs(120),
    )
    .expect("mirrored");
    wait_for_group_sync(&forward, &target.bootstrap(), &app, &topic, &on_source);

    // The source site is lost (its mirror with it).
    forward.stop(Duration::from_secs(10));
    join_engine(forward, "the forward mirror").expect("clean stop");
    source.stop().expect("source stopped");

    // Failover: the application resumes on the target, reads part further.
    let on_target = application(&target.bootstrap(), &app, &topic, Some(100));
    let again: Vec<_> = on_target.iter().filter(|v| processed.contains(v)).collect();
    assert_eq!(again.len(), 0, "records read again after failover");
    assert!(
        on_target.iter().all(|v| all.contains(v)),
        "only mirrored records"
    );
    processed.extend(on_target);
    let target_offsets = committed(&target.bootstrap(), &app, &topic, PARTITIONS);

    // Failback: a fresh source cluster, mirrored from the target.
    let fresh = KafkaBroker::start().expect("fresh source broker");
    let back = mirror(&target.bootstrap(), &fresh.bootstrap(), &topic, &app);
    consume_all(
        &fresh.bootstrap(),
        &topic,
        records.len() + foreign.len(),
        Duration::from_secs(120),
    )
    .expect("mirrored back");
    wait_for_group_sync(&back, &fresh.bootstrap(), &app, &topic, &target_offsets);
    back.stop(Duration::from_secs(10));
    join_engine(back, "the reverse mirror").expect("clean stop");

    let rest = application(&fresh.bootstrap(), &app, &topic, None);
    let again = rest.iter().filter(|v| processed.contains(v)).count();
    processed.extend(rest);
    let seen: HashSet<&Vec<u8>> = processed.iter().collect();
    let skipped = all.iter().filter(|v| !seen.contains(v)).count();
    eprintln!(
        "failover and failback: {} records processed, {again} read again, {skipped} skipped",
        processed.len()
    );
    assert_eq!(again, 0, "records read again after failback");
    assert_eq!(skipped, 0, "records skipped");
    assert_eq!(processed.len(), all.len(), "each record processed once");
}
