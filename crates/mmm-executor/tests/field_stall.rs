//! No silent stall: a partition stuck on a persistent consumer error shows
//! in the task's health at once and fails the task after the stall timeout.
//!
//! A real broker cannot be made to refuse fetches on demand, so the source is
//! librdkafka's mock cluster, told to answer every Fetch with an
//! authorization error.

mod field;

use std::time::{Duration, Instant};

use field::*;
use mmm_executor::engine::{Engine, EngineError, Limits};
use mmm_test_support::{ApiKey, MockKafkaCluster, ResponseError};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

#[test]
fn a_partition_that_cannot_be_fetched_is_reported_then_fails_the_task() {
    let mock = MockKafkaCluster::start(1).expect("mock cluster");
    let topic = mmm_test_support::random_name("stuck");
    mock.create_topic(&topic, 1, 1).expect("source topic");
    mock.create_topic(&format!("copy.{topic}"), 1, 1)
        .expect("target topic (the mock cannot create topics)");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap())
        .create()
        .expect("producer");
    for i in 0..10 {
        producer
            .send(
                BaseRecord::to(&topic)
                    .partition(0)
                    .key("k")
                    .payload(&format!("v{i}")),
            )
            .expect("queued");
    }
    producer.flush(Duration::from_secs(10)).expect("loaded");
    mock.fail_until_cleared(
        ApiKey::Fetch,
        ResponseError::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
    );

    let mut task = bare_task(
        &mock.bootstrap(),
        &mock.bootstrap(),
        &[&topic],
        &[("statistics.interval.ms", "500")],
    );
    task.target_topic_prefix = "copy.".into();
    task.stall_timeout_ms = 8_000;
    let engine = Engine::start(task, Limits::default()).expect("engine starts");
    let metrics = engine.metrics();
    let started = Instant::now();

    // Reported long before the timeout, with the error text.
    let mut seen = None;
    while started.elapsed() < Duration::from_secs(60) {
        let (health, error) = metrics.health();
        if health != "ok" {
            seen = Some((health, error));
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (health, error) = seen.expect("the health left \"ok\"");
    assert!(matches!(health, "degraded" | "stalled"), "{health}");
    let error = error.expect("an error text");
    assert!(error.to_lowercase().contains("authorization"), "{error}");

    let outcome = join_within(engine, Duration::from_secs(120));
    match outcome {
        Err(e @ EngineError::Stalled { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&format!("{topic}-0")), "{text}");
            assert!(text.to_lowercase().contains("authorization"), "{text}");
        }
        other => panic!("expected a stall failure, got {other:?}"),
    }
    assert_eq!(metrics.health().0, "stalled");
}
