//! Measures how long a consumer group join takes on a Tansu broker for a few session timeouts.
//!
//! `cargo run -p mmm-test-support --example join_group_time`

use std::time::{Duration, Instant};

use mmm_test_support::{create_topic, produce, random_name, KafkaBroker, TestRecord};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let broker = KafkaBroker::start()?;
    let topic = random_name("join");
    create_topic(&broker.bootstrap(), &topic, 1)?;
    produce(&broker.bootstrap(), &topic, &[TestRecord::new(0, "k", "v")])?;
    for session_ms in [6_000u64, 10_000, 45_000] {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap())
            .set("group.id", random_name("join-group"))
            .set("session.timeout.ms", session_ms.to_string())
            .set("auto.offset.reset", "earliest")
            .create()?;
        consumer.subscribe(&[&topic])?;
        let started = Instant::now();
        let mut first = None;
        while started.elapsed() < Duration::from_secs(120) {
            if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
                first = Some(started.elapsed());
                break;
            }
        }
        eprintln!("session.timeout.ms={session_ms}: first record after {first:?}");
    }
    Ok(())
}
