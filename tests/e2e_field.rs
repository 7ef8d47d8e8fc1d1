//! The executor in the field, through the whole system: a poison record ends
//! the task Failed after the launch attempts (instead of a crash loop), and a
//! partition that cannot progress shows in `mmm-cli status --json` at once.

use std::time::Duration;

use mmm_e2e::{wait_until, System};
use mmm_test_support::{create_topic, produce, random_name, TestRecord};
use serde_json::Value;

fn first_server(system: &System) -> anyhow::Result<Value> {
    Ok(system.status()?["value"]["servers"][0].clone())
}

#[test]
fn a_poison_record_ends_failed_with_its_position_after_the_attempts() -> anyhow::Result<()> {
    let topic = random_name("poison");
    let mut system = System::start_with(
        1,
        std::slice::from_ref(&topic),
        "[scheduler]\nmax_launch_attempts = 3\nrelaunch_backoff_ms = 200\nrelaunch_backoff_max_ms = 1000\n",
    )?;
    // The target takes records of at most 2000 bytes: a larger one can never
    // be delivered, on every launch.
    system.kill_scheduler()?;
    let producer = system.dir.path().join("producer.properties");
    let mut props = std::fs::read_to_string(&producer)?;
    props.push_str("message.max.bytes=2000\n");
    std::fs::write(&producer, props)?;
    system.start_scheduler()?;

    create_topic(&system.source.bootstrap(), &topic, 1)?;
    let mut records: Vec<TestRecord> = (0..5)
        .map(|i| TestRecord::new(0, format!("k{i}"), format!("v{i}")))
        .collect();
    records.push(TestRecord::new(0, "poison", vec![7u8; 5000]));
    produce(&system.source.bootstrap(), &topic, &records)?;

    let added = system.cli(&["add", "1"])?;
    assert!(added.status.success(), "{added:?}");
    wait_until("the task to end Failed", Duration::from_secs(240), || {
        Ok(first_server(&system)?["state"] == "Failed")
    })?;
    let server = first_server(&system)?;
    let message = server["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("gave up after 3 launches"), "{message}");
    assert!(
        message.contains(&format!("{topic}/0@5")) && message.contains("MessageSizeTooLarge"),
        "the message names the record and the error: {message}"
    );
    assert_eq!(server["launch_attempts"], 3);
    Ok(())
}

#[test]
fn a_source_that_cannot_be_read_shows_in_the_status_within_seconds() -> anyhow::Result<()> {
    let topic = random_name("outage");
    let mut system = System::start(1, std::slice::from_ref(&topic))?;
    create_topic(&system.source.bootstrap(), &topic, 2)?;
    produce(
        &system.source.bootstrap(),
        &topic,
        &[TestRecord::new(0, "k", "v"), TestRecord::new(1, "k", "v")],
    )?;
    let added = system.cli(&["add", "1"])?;
    assert!(added.status.success(), "{added:?}");
    system.wait_for_servers(1, "Running", Duration::from_secs(90))?;
    wait_until("a healthy report", Duration::from_secs(60), || {
        Ok(first_server(&system)?["metrics"]["health"] == "ok")
    })?;

    system.source.stop()?;
    let mut seen = Value::Null;
    wait_until(
        "the health to report the error",
        Duration::from_secs(60),
        || {
            seen = first_server(&system)?["metrics"].clone();
            Ok(seen["health"] != "ok" && seen["health"].is_string())
        },
    )?;
    let error = seen["error"].as_str().unwrap_or_default();
    assert!(!error.is_empty(), "an error text: {seen}");
    assert_eq!(
        first_server(&system)?["state"],
        "Running",
        "a stall within the timeout does not fail the task"
    );
    let human = system.cli(&["status"])?;
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("health: "), "{text}");
    Ok(())
}
