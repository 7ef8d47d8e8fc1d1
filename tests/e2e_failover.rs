//! Consumer failover through the real binaries: an application group reads
//! part of a topic on the source and commits; a task added with `mmm-cli`
//! mirrors the topic and syncs the group (`[mirror] sync_groups`); the source
//! broker is stopped; the group resumes on the target. Nothing is skipped,
//! nothing read again; the mirror's own duplicates are counted apart.
//! Failback (the same, mirrored the other way) is tested on the engine:
//! crates/mmm-executor/tests/failover.rs.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use mmm_e2e::{wait_until, System};
use mmm_test_support::{
    consume_all, consume_as_group, create_topic, produce, random_name, TestRecord,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const PARTITIONS: i32 = 2;

/// `group`'s committed offsets of `topic` on `bootstrap` (-1: none).
fn committed(bootstrap: &str, group: &str, topic: &str) -> anyhow::Result<Vec<i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(topic, p);
    }
    let got = consumer.committed_offsets(tpl, Duration::from_secs(10))?;
    Ok((0..PARTITIONS)
        .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => -1,
        })
        .collect())
}

#[test]
fn a_consumer_group_resumes_on_the_target_after_the_source_is_lost() -> anyhow::Result<()> {
    let topic = random_name("e2e-billing");
    let app = random_name("billing-app");
    let mut system = System::start_mirroring(
        1,
        std::slice::from_ref(&topic),
        &format!("sync_groups = [\"{app}\"]\nsync_groups_interval_ms = 500"),
    )?;
    create_topic(&system.source.bootstrap(), &topic, PARTITIONS)?;
    // The target log does not start where the source's does.
    create_topic(&system.target.bootstrap(), &topic, PARTITIONS)?;
    let other: Vec<_> = (0..6)
        .map(|i| TestRecord::new(i % PARTITIONS, "other", format!("other-{i}")))
        .collect();
    produce(&system.target.bootstrap(), &topic, &other)?;
    let records: Vec<TestRecord> = (0..800u32)
        .map(|n| {
            TestRecord::new(
                i32::try_from(n).expect("small") % PARTITIONS,
                format!("key-{n}"),
                format!("invoice-{n}"),
            )
            .with_header("n", n.to_be_bytes().to_vec())
        })
        .collect();
    produce(&system.source.bootstrap(), &topic, &records)?;

    // The application reads part of the topic on the source and commits.
    let read = Duration::from_secs(90);
    let on_source = consume_as_group(
        &system.source.bootstrap(),
        &app,
        &topic,
        PARTITIONS,
        Some(150),
        read,
    )?;
    assert_eq!(
        committed(&system.source.bootstrap(), &app, &topic)?,
        vec![150, 150]
    );

    let added = system.cli(&["add", "1"])?;
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    system.wait_for_servers(1, "Running", Duration::from_secs(60))?;
    consume_all(
        &system.target.bootstrap(),
        &topic,
        records.len() + other.len(),
        Duration::from_secs(120),
    )?;
    // 3 other records in each target partition: source 150 is at 153.
    wait_until(
        "the group synced to the target",
        Duration::from_secs(90),
        || Ok(committed(&system.target.bootstrap(), &app, &topic)? == vec![153, 153]),
    )?;

    // The source site is lost; the mirror stays up, the application moves.
    system.source.stop()?;
    let on_target = consume_as_group(
        &system.target.bootstrap(),
        &app,
        &topic,
        PARTITIONS,
        None,
        read,
    )?;

    let processed: HashSet<_> = on_source.iter().filter_map(|r| r.value.clone()).collect();
    let again = on_target
        .iter()
        .filter(|r| r.value.as_ref().is_some_and(|v| processed.contains(v)))
        .count();
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    for r in on_source.iter().chain(&on_target) {
        *seen.entry(r.value.clone().unwrap_or_default()).or_default() += 1;
    }
    let skipped = records
        .iter()
        .filter(|r| !seen.contains_key(r.value.as_deref().unwrap_or_default()))
        .count();
    let target_copies = consume_all(
        &system.target.bootstrap(),
        &topic,
        records.len() + other.len(),
        Duration::from_secs(60),
    )?;
    let mirror_duplicates = target_copies.len() - records.len() - other.len();
    eprintln!(
        "failover: {} records on the source, {} on the target, {again} read again, \
         {skipped} skipped, {mirror_duplicates} duplicates from mirroring",
        on_source.len(),
        on_target.len()
    );
    assert_eq!(again, 0, "records read again after failover");
    assert_eq!(skipped, 0, "records skipped");
    assert!(
        on_target.iter().all(|r| !r
            .value
            .as_deref()
            .unwrap_or_default()
            .starts_with(b"other-")),
        "the other writer's records precede the group's offsets"
    );
    let on_target_by_value: HashMap<_, _> = records
        .iter()
        .map(|r| (r.value.clone().unwrap_or_default(), r))
        .collect();
    for r in &on_target {
        let want = on_target_by_value[r.value.as_deref().unwrap_or_default()];
        assert!(r.matches(want), "byte-exact: {r:?}");
    }

    let deleted = system.cli(&["delete", "1"])?;
    assert!(deleted.status.success());
    wait_until("the executor to exit", Duration::from_secs(90), || {
        Ok(system.executor_pids().is_empty())
    })?;
    Ok(())
}
