//! The offset mapping the engine publishes to the sync topic, against real
//! brokers: a mirror run, foreign writes in the target, and a second run that
//! copies everything again (duplicates); the published syncs translate
//! committed source offsets to the target record a consumer must resume at.
//!
//! Tansu neither compacts nor writes transaction markers, so the source here
//! has no gaps; gaps in the source are covered by the property test of
//! `offset_sync::segments`. The target gap comes from records another
//! producer writes into the target partition between the runs.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use mmm_core::offset_sync::{OffsetSync, SyncKey};
use mmm_core::task_data::PROVENANCE_HEADER;
use mmm_executor::engine::{Engine, Limits};
use mmm_executor::offset_sync::read_back;
use mmm_test_support::{
    consume_all, create_topic, produce, random_name, ConsumedRecord, KafkaBroker, TestRecord,
};
use rdkafka::ClientConfig;

const PARTITIONS: i32 = 2;
const FIRST: usize = 600; // 300 per partition
const MORE: usize = 400; // 200 more per partition
const FOREIGN: usize = 20; // per partition, written straight into the target

fn run_until(engine: Engine, target: &str, topic: &str, total: usize) -> Vec<ConsumedRecord> {
    let got = consume_all(target, topic, total, Duration::from_secs(120)).expect("target records");
    engine.stop(Duration::from_secs(10));
    let summary = join_engine(engine, "the engine").expect("clean stop");
    assert_eq!(summary.undelivered, 0);
    got
}

#[test]
fn published_syncs_translate_to_the_first_unconsumed_record_across_restarts_and_foreign_writes() {
    let source = KafkaBroker::start().expect("source broker");
    let target = KafkaBroker::start().expect("target broker");
    let topic = random_name("synced");
    let sync_topic = random_name("offset-syncs");
    create_topic(&source.bootstrap(), &topic, PARTITIONS).expect("source topic");
    let all = records_with_headers(FIRST + MORE, PARTITIONS);
    produce(&source.bootstrap(), &topic, &all[..FIRST]).expect("first load");

    // Run 1 copies the first load.
    let mut data = task(
        &source.bootstrap(),
        &target.bootstrap(),
        &[&topic],
        &group(),
    );
    data.offset_sync_topic = sync_topic.clone();
    let engine = Engine::start(data.clone(), Limits::default()).expect("engine starts");
    let metrics = engine.metrics();
    run_until(engine, &target.bootstrap(), &topic, FIRST);
    let report = metrics
        .replication()
        .offset_syncs
        .expect("an offset sync report");
    assert_eq!(report.topic, sync_topic);
    assert!(report.syncs_written >= PARTITIONS as u64, "{report:?}");
    assert!(report.last_sync_unix_ms > 0, "{report:?}");
    assert_eq!(report.error, None);
    for p in 0..PARTITIONS {
        assert_eq!(
            report.translation_lag.get(&format!("{topic}-{p}")),
            Some(&0),
            "every committed offset is covered: {report:?}"
        );
    }

    // Another writer in the target, then more source records.
    let foreign: Vec<TestRecord> = (0..FOREIGN * PARTITIONS as usize)
        .map(|i| TestRecord::new(i as i32 % PARTITIONS, "foreign", format!("foreign-{i}")))
        .collect();
    produce(&target.bootstrap(), &topic, &foreign).expect("foreign records");
    produce(&source.bootstrap(), &topic, &all[FIRST..]).expect("second load");

    // Run 2, with a new group, copies everything again from offset 0.
    data.consumer
        .insert("group.id".into(), random_name("second-group"));
    let engine = Engine::start(data, Limits::default()).expect("engine restarts");
    wait_until(
        "the first run's syncs read back",
        Duration::from_secs(60),
        || engine.translate(&topic, 0, 150).is_some(),
    );
    assert_eq!(
        engine.translate(&topic, 0, 150),
        Some(150),
        "read back from the sync topic: run 1 put source 150 at target 150"
    );
    let total = FIRST + FOREIGN * PARTITIONS as usize + (FIRST + MORE);
    let copied = run_until(engine, &target.bootstrap(), &topic, total);

    // What is where: the source offset of each target record, by its value.
    let source_records = consume_all(
        &source.bootstrap(),
        &topic,
        FIRST + MORE,
        Duration::from_secs(60),
    )
    .expect("source records");
    let source_offset: HashMap<(i32, Vec<u8>), i64> = source_records
        .iter()
        .map(|r| ((r.partition, r.value.clone().unwrap_or_default()), r.offset))
        .collect();
    let by_value: HashMap<Vec<u8>, &TestRecord> = all
        .iter()
        .map(|r| (r.value.clone().unwrap_or_default(), r))
        .collect();

    // The published syncs, as a reader of the topic sees them.
    let mut reader = ClientConfig::new();
    reader.set("bootstrap.servers", target.bootstrap());
    let syncs = read_back(&reader, &sync_topic, Duration::from_secs(30), |_, _| true)
        .expect("sync topic readable");
    let raw = consume_all(&target.bootstrap(), &sync_topic, 1, Duration::from_secs(30))
        .expect("raw sync records");
    for record in &raw {
        let key = SyncKey::parse(record.key.as_deref().unwrap_or_default()).expect("a sync key");
        assert_eq!(key.topic, topic);
        let sync = OffsetSync::parse(&key, record.value.as_deref().unwrap_or_default())
            .expect("a sync value");
        assert_eq!(sync.target_topic, topic);
        assert_eq!(sync.target_partition, key.partition);
    }

    for p in 0..PARTITIONS {
        let (target_topic, map) = syncs.get(&(topic.clone(), p)).expect("syncs of partition");
        assert_eq!(target_topic, &topic);
        let mut in_target: Vec<&ConsumedRecord> =
            copied.iter().filter(|r| r.partition == p).collect();
        in_target.sort_by_key(|r| r.offset);
        // The source offset each target position holds (None: foreign).
        let origin: Vec<(i64, Option<i64>)> = in_target
            .iter()
            .map(|r| {
                let value = r.value.clone().unwrap_or_default();
                (r.offset, source_offset.get(&(p, value)).copied())
            })
            .collect();
        let per_partition = ((FIRST + MORE) / PARTITIONS as usize) as i64;
        let first_run = (FIRST / PARTITIONS as usize) as i64;
        for x in [
            0,
            1,
            99,
            first_run - 1,
            first_run,
            first_run + 1,
            per_partition - 1,
            per_partition,
        ] {
            let got = map
                .translate(x)
                .unwrap_or_else(|| panic!("p{p}: {x} translatable"));
            let exact = origin.iter().find(|(_, s)| s.is_some_and(|s| s >= x));
            match exact {
                Some(&(at, _)) => {
                    assert_eq!(
                        got, at,
                        "p{p}: committed {x} resumes at the first copy of {x}"
                    );
                    let record = in_target.iter().find(|r| r.offset == got).expect("record");
                    let want = by_value[&record.value.clone().unwrap_or_default()];
                    // Records written straight into the target carry no origin.
                    let foreign = record.headers.iter().all(|(n, _)| n != PROVENANCE_HEADER);
                    let want = if foreign {
                        (*want).clone()
                    } else {
                        mirrored(want, source.cluster_id())
                    };
                    assert!(record.matches(&want), "p{p}: target {got} is {record:?}");
                    assert_eq!(
                        source_offset[&(p, want.value.clone().unwrap_or_default())],
                        x,
                        "p{p}: the record at target {got} is source record {x}"
                    );
                }
                None => {
                    let end = origin
                        .iter()
                        .filter(|(_, s)| s.is_some())
                        .map(|(o, _)| o + 1)
                        .max();
                    assert_eq!(
                        Some(got),
                        end,
                        "p{p}: past the end, where the next copy lands"
                    );
                }
            }
        }
        // Run 2 started after run 1's copies and the foreign records.
        assert_eq!(
            map.translate(first_run),
            Some(first_run + FOREIGN as i64 + first_run)
        );
    }
}
