//! The operator's path through the whole system: add, status, delete through
//! mmm-cli, with real brokers, mesos-sim, the scheduler and executors fetched
//! from the scheduler's dist/.

use std::time::Duration;

use mmm_e2e::{wait_until, System};
use mmm_test_support::{consume_all, create_topic, produce, random_name, TestRecord};

#[test]
fn add_status_delete_mirrors_records_byte_exact() -> anyhow::Result<()> {
    let topic = random_name("e2e-orders");
    let system = System::start(2, std::slice::from_ref(&topic))?;
    create_topic(&system.source.bootstrap(), &topic, 4)?;
    let records: Vec<TestRecord> = (0..4000u32)
        .map(|n| {
            let partition = i32::try_from(n % 4).expect("small");
            TestRecord::new(
                partition,
                format!("key-{n}"),
                format!("value-{n}-{}", "x".repeat(100)),
            )
            .with_header("trace", n.to_be_bytes().to_vec())
            .with_header("origin", b"e2e".to_vec())
            .with_timestamp(1_700_000_000_000 + i64::from(n))
        })
        .collect();
    produce(&system.source.bootstrap(), &topic, &records)?;

    let added = system.cli(&["add", "1", "--cpus", "0.2", "--mem", "128"])?;
    let stdout = String::from_utf8_lossy(&added.stdout);
    assert!(
        added.status.success(),
        "add failed: {stdout} {}",
        String::from_utf8_lossy(&added.stderr)
    );
    assert!(stdout.contains("Added 1 tasks successfully."), "{stdout}");
    assert!(stdout.contains("id: 1"), "{stdout}");

    system.wait_for_servers(1, "Running", Duration::from_secs(60))?;

    let mirrored = consume_all(
        &system.target.bootstrap(),
        &topic,
        records.len(),
        Duration::from_secs(60),
    )?;
    assert_eq!(
        mirrored.len(),
        records.len(),
        "every record once, nothing more"
    );
    let mut by_partition: Vec<Vec<&TestRecord>> = vec![Vec::new(); 4];
    for r in &records {
        by_partition[usize::try_from(r.partition).expect("partition")].push(r);
    }
    for partition in 0..4 {
        let got: Vec<_> = mirrored
            .iter()
            .filter(|m| m.partition == partition)
            .collect();
        let want = &by_partition[usize::try_from(partition).expect("partition")];
        assert_eq!(got.len(), want.len(), "partition {partition}");
        for (g, w) in got.iter().zip(want.iter()) {
            // As documented: one header added, naming the source cluster.
            let w = (*w)
                .clone()
                .with_header("mmm-provenance", system.source.cluster_id());
            assert!(
                g.matches(&w),
                "partition {partition}: {g:?} differs from {w:?}"
            );
        }
    }

    let status = system.status()?;
    assert_eq!(status["success"], true);
    let server = &status["value"]["servers"][0];
    assert_eq!(server["id"], 1);
    assert_eq!(server["state"], "Running");
    assert_eq!(server["cpus"], 0.2);
    assert_eq!(server["mem"], 128.0);

    let human = system.cli(&["status"])?;
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(
        human.contains("Cluster:") && human.contains("state: Running"),
        "{human}"
    );

    let deleted = system.cli(&["delete", "1"])?;
    assert!(deleted.status.success());
    wait_until("server 1 removed", Duration::from_secs(60), || {
        Ok(system.servers()?.is_empty())
    })?;
    wait_until("the executor to exit", Duration::from_secs(30), || {
        Ok(system.executor_pids().is_empty())
    })?;
    Ok(())
}

#[test]
fn cli_reports_unknown_ids_as_refused() -> anyhow::Result<()> {
    let system = System::start(1, &[random_name("e2e-unused")])?;
    let out = system.cli(&["delete", "42"])?;
    assert_eq!(out.status.code(), Some(1), "the API refused the request");
    let err =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        err.contains("42"),
        "the message names the unknown id: {err}"
    );
    assert!(system.servers()?.is_empty(), "nothing changed");
    Ok(())
}
