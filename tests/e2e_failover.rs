//! Consumer failover and failback through the real binaries: an application
//! group reads part of a topic on the source and commits; a task added with
//! `mmm-cli` mirrors the topic and syncs the group (`[mirror] sync_groups`);
//! the source broker is stopped; the group resumes on the target and reads
//! part further. Then a second framework mirrors the target into a fresh
//! source cluster, syncing the group, and the group resumes there. Nothing is
//! skipped, nothing read again; the mirror's own duplicates are counted apart.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use mmm_e2e::{wait_until, System};
use mmm_test_support::{
    bin_path, consume_all, consume_as_group, create_topic, produce, random_name,
    wait_for_listening_port, ChildGuard, KafkaBroker, TestRecord,
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
fn a_consumer_group_fails_over_to_the_target_and_back_without_skipping_or_rereading(
) -> anyhow::Result<()> {
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
        Some(100),
        read,
    )?;

    let by_value: HashMap<_, _> = records
        .iter()
        .map(|r| (r.value.clone().unwrap_or_default(), r))
        .collect();
    // The group resumes exactly where it stopped on the source: record 150
    // of each partition (the records are spread round-robin).
    for p in 0..PARTITIONS {
        let first = on_target
            .iter()
            .find(|r| r.partition == p)
            .expect("records read");
        let want = 150 * PARTITIONS + p;
        assert_eq!(
            first.value.as_deref(),
            Some(format!("invoice-{want}").as_bytes()),
            "partition {p} resumes at its first unconsumed record"
        );
    }
    let mirror_duplicates = consume_all(
        &system.target.bootstrap(),
        &topic,
        records.len() + other.len(),
        Duration::from_secs(60),
    )?
    .len()
        - records.len()
        - other.len();

    // Failback: a second framework mirrors the target into a fresh source
    // cluster and syncs the group there.
    let fresh = KafkaBroker::start()?;
    let d = system.dir.path();
    std::fs::create_dir_all(d.join("state-back"))?;
    std::fs::write(
        d.join("back.toml"),
        format!(
            "[mesos]\nmaster = \"{master}\"\nframework_name = \"mmm-e2e-back\"\n\
             failover_timeout_secs = 3600\n\n[api]\nbind = \"127.0.0.1:0\"\n\n\
             [mirror]\ntopics = [\"{topic}\"]\noffset_commit_interval_ms = 1000\n\
             sync_groups = [\"{app}\"]\nsync_groups_interval_ms = 500\n\n\
             [storage]\npath = \"{state}\"\n\n[executor]\ndist_dir = \"{dist}\"\n",
            master = system.master_url,
            state = d.join("state-back/mmm-state.json").display(),
            dist = d.join("dist").display(),
        ),
    )?;
    std::fs::write(
        d.join("consumer-back.properties"),
        format!(
            "bootstrap.servers={}\ngroup.id={}\nenable.auto.commit=false\n\
             auto.offset.reset=earliest\nsession.timeout.ms=6000\n",
            system.target.bootstrap(),
            random_name("e2e-back")
        ),
    )?;
    std::fs::write(
        d.join("producer-back.properties"),
        format!("bootstrap.servers={}\nacks=all\n", fresh.bootstrap()),
    )?;
    let mut cmd = Command::new(bin_path("mmm-scheduler")?);
    cmd.arg(d.join("back.toml"))
        .arg("-c")
        .arg(d.join("consumer-back.properties"))
        .arg("-p")
        .arg(d.join("producer-back.properties"))
        .env("RUST_LOG", "info");
    let mut back = ChildGuard::spawn_logged("mmm-scheduler-back", cmd, &d.join("back.log"))?;
    let port = wait_for_listening_port(&mut back, Duration::from_secs(60))?;
    let back_cli = |args: &[&str]| {
        Command::new(bin_path("mmm-cli")?)
            .arg("--api")
            .arg(format!("http://127.0.0.1:{port}/api"))
            .args(args)
            .output()
            .map_err(anyhow::Error::from)
    };
    let added = back_cli(&["add", "1"])?;
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    wait_until("the reverse task running", Duration::from_secs(60), || {
        let out = back_cli(&["status", "--json"])?;
        let status: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        Ok(status["value"]["servers"][0]["state"] == "Running")
    })?;
    consume_all(
        &fresh.bootstrap(),
        &topic,
        records.len() + other.len(),
        Duration::from_secs(120),
    )?;
    // The fresh cluster holds the target's log from its start: same offsets.
    let on_target_committed = committed(&system.target.bootstrap(), &app, &topic)?;
    wait_until(
        "the group synced to the fresh source",
        Duration::from_secs(90),
        || Ok(committed(&fresh.bootstrap(), &app, &topic)? == on_target_committed),
    )?;
    let on_fresh = consume_as_group(&fresh.bootstrap(), &app, &topic, PARTITIONS, None, read)?;

    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    // Mirrored copies carry the source cluster as their origin, also after
    // the second hop back to the fresh cluster (the first origin is kept).
    let origin = system.source.cluster_id();
    let copies = on_target.iter().chain(&on_fresh).map(|r| (r, true));
    for (r, mirrored) in on_source.iter().map(|r| (r, false)).chain(copies) {
        let value = r.value.clone().unwrap_or_default();
        let want = by_value
            .get(&value)
            .unwrap_or_else(|| panic!("not an application record: {r:?}"));
        let want = if mirrored {
            (*want).clone().with_header("mmm-provenance", origin)
        } else {
            (*want).clone()
        };
        assert!(r.matches(&want), "byte-exact: {r:?}");
        *seen.entry(value).or_default() += 1;
    }
    let again: usize = seen.values().map(|n| n - 1).sum();
    let skipped = records.len() - seen.len();
    eprintln!(
        "failover and failback: {} records read on the source, {} on the target, {} on the fresh \
         source; {again} read again, {skipped} skipped, {mirror_duplicates} duplicates from mirroring",
        on_source.len(),
        on_target.len(),
        on_fresh.len()
    );
    assert_eq!(again, 0, "records read again");
    assert_eq!(skipped, 0, "records skipped");
    assert_eq!(on_target.len(), 200);

    let deleted = back_cli(&["delete", "1"])?;
    assert!(deleted.status.success());
    let deleted = system.cli(&["delete", "1"])?;
    assert!(deleted.status.success());
    wait_until("the executor to exit", Duration::from_secs(90), || {
        Ok(system.executor_pids().is_empty())
    })?;
    Ok(())
}
