//! Recovery through the real binaries: executors and the scheduler die
//! mid-stream, and no record and no task is lost or duplicated.

use std::time::Duration;

use mmm_e2e::{verify_batches, wait_until, System};
use mmm_test_support::{consume_until_idle, create_topic, produce_generated, random_name};

const PARTITIONS: i32 = 4;

#[test]
fn executor_killed_with_sigkill_is_relaunched_and_nothing_is_lost() -> anyhow::Result<()> {
    let topic = random_name("e2e-kill");
    let system = System::start(2, std::slice::from_ref(&topic))?;
    create_topic(&system.source.bootstrap(), &topic, PARTITIONS)?;
    produce_generated(&system.source.bootstrap(), &topic, PARTITIONS, 30_000, 200)?;

    assert!(system.cli(&["add", "1"])?.status.success());
    system.wait_for_servers(1, "Running", Duration::from_secs(60))?;
    let first = system.executor_pids();
    assert_eq!(first.len(), 1, "one executor: {first:?}");

    // Kill it while it has records in flight.
    produce_generated(&system.source.bootstrap(), &topic, PARTITIONS, 30_000, 200)?;
    std::process::Command::new("kill")
        .arg("-KILL")
        .arg(first[0].to_string())
        .status()?;

    wait_until("a new executor", Duration::from_secs(90), || {
        let pids = system.executor_pids();
        Ok(pids.len() == 1 && pids[0] != first[0])
    })?;
    system.wait_for_servers(1, "Running", Duration::from_secs(60))?;

    let total = 60_000;
    let (complete, summary) = read_until_complete(&system, &topic, total)?;
    assert!(complete, "records lost: {summary}");
    eprintln!("executor SIGKILL: {summary}");
    Ok(())
}

#[test]
fn scheduler_restarted_mid_stream_keeps_mirroring_without_duplicate_tasks() -> anyhow::Result<()> {
    let topic = random_name("e2e-restart");
    let mut system = System::start(2, std::slice::from_ref(&topic))?;
    create_topic(&system.source.bootstrap(), &topic, PARTITIONS)?;
    produce_generated(&system.source.bootstrap(), &topic, PARTITIONS, 20_000, 200)?;

    assert!(system.cli(&["add", "2"])?.status.success());
    system.wait_for_servers(2, "Running", Duration::from_secs(90))?;
    let before = system.executor_pids();
    assert_eq!(before.len(), 2);

    system.kill_scheduler()?;
    system.start_scheduler()?;
    system.wait_for_servers(2, "Running", Duration::from_secs(90))?;
    let ids: Vec<u64> = system.servers()?.into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, vec![1, 2], "the same servers after the restart");
    let mut after = system.executor_pids();
    after.sort_unstable();
    let mut before_sorted = before.clone();
    before_sorted.sort_unstable();
    assert_eq!(
        after, before_sorted,
        "the running executors were kept, none added"
    );

    produce_generated(&system.source.bootstrap(), &topic, PARTITIONS, 20_000, 200)?;
    let (complete, summary) = read_until_complete(&system, &topic, 40_000)?;
    assert!(complete, "records lost: {summary}");
    eprintln!("scheduler restart: {summary}");
    assert_eq!(
        system.executor_pids().len(),
        2,
        "still exactly two executors"
    );
    Ok(())
}

/// Reads the target topic until both batches are complete or the deadline
/// passes; returns whether it was complete and a summary. Duplicates make the
/// topic longer than `total`, so each read goes on until the topic is idle.
fn read_until_complete(
    system: &System,
    topic: &str,
    total: usize,
) -> anyhow::Result<(bool, String)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let records = consume_until_idle(
            &system.target.bootstrap(),
            topic,
            total,
            Duration::from_secs(3),
            left.max(Duration::from_secs(5)),
        );
        match records {
            Ok(records) => {
                let (complete, summary) = verify_generated_twice(&records, total);
                if complete || std::time::Instant::now() > deadline {
                    return Ok((complete, summary));
                }
            }
            Err(e) if std::time::Instant::now() > deadline => return Err(e.into()),
            Err(_) => {}
        }
    }
}

/// The topic holds two generated batches whose sequences both start at 0,
/// so every (partition, sequence) must have been read at least twice.
fn verify_generated_twice(
    records: &[mmm_test_support::ConsumedRecord],
    total: usize,
) -> (bool, String) {
    let verdict = verify_batches(records, PARTITIONS, 2, total / 2);
    (verdict.complete(), verdict.summary())
}
