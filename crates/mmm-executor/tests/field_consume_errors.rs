//! `consume_errors` counts each error the consumer delivers exactly once.
//!
//! The count is checked against the errors the engine received, which it
//! logs one line each ("consumer error", "rebalance error"): this test's
//! process catches those lines. A real broker cannot be made to refuse
//! fetches on demand, so the source is librdkafka's mock cluster, which is
//! told to refuse a few fetches and then goes away for a while.

mod field;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use field::*;
use mmm_executor::engine::{Engine, Limits};
use mmm_executor::metrics::Metrics;
use mmm_test_support::{random_name, ApiKey, MockKafkaCluster, ResponseError};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// Error lines the engine logged for errors it received.
static DELIVERED: AtomicU64 = AtomicU64::new(0);

/// The messages the engine logs once per error it receives.
const ERROR_LINES: &[&str] = &["consumer error", "rebalance error"];

struct CountErrors;

struct MessageOf(Option<String>);

impl Visit for MessageOf {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for CountErrors {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if !event.metadata().target().starts_with("mmm_executor") {
            return;
        }
        let mut message = MessageOf(None);
        event.record(&mut message);
        if message.0.is_some_and(|m| ERROR_LINES.contains(&m.as_str())) {
            DELIVERED.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn load(bootstrap: &str, topic: &str, from: usize, to: usize) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer");
    for i in from..to {
        producer
            .send(
                BaseRecord::to(topic)
                    .partition(0)
                    .key("k")
                    .payload(&format!("v{i}")),
            )
            .expect("queued");
    }
    producer.flush(Duration::from_secs(10)).expect("loaded");
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn produced(metrics: &Metrics) -> u64 {
    metrics.snapshot().records_produced
}

#[test]
fn each_consumer_error_is_counted_once() {
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(CountErrors))
        .expect("the only subscriber of this test process");
    let source = MockKafkaCluster::start(1).expect("source mock cluster");
    let target = MockKafkaCluster::start(1).expect("target mock cluster");
    let topic = random_name("errors");
    source.create_topic(&topic, 1, 1).expect("source topic");
    target
        .create_topic(&format!("copy.{topic}"), 1, 1)
        .expect("target topic (the mock cannot create topics)");
    load(&source.bootstrap(), &topic, 0, 10);

    let mut task = bare_task(&source.bootstrap(), &target.bootstrap(), &[&topic], &[]);
    task.target_topic_prefix = "copy.".into();
    let engine = Engine::start(task, Limits::default()).expect("engine starts");
    let metrics = engine.metrics();
    wait_for(
        "the first records mirrored",
        Duration::from_secs(60),
        || produced(&metrics) >= 10,
    );

    // Refused fetches, then a source that goes away: both reach the engine
    // as consumer errors.
    let before = DELIVERED.load(Ordering::SeqCst);
    source.fail_requests(
        ApiKey::Fetch,
        ResponseError::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        5,
    );
    source.broker_down(1).expect("source down");
    wait_for("consumer errors", Duration::from_secs(60), || {
        DELIVERED.load(Ordering::SeqCst) >= before + 2
    });
    source.broker_up(1).expect("source up");
    source.clear_failures(ApiKey::Fetch);
    load(&source.bootstrap(), &topic, 10, 20);
    wait_for(
        "the records written after the outage mirrored",
        Duration::from_secs(120),
        || produced(&metrics) >= 20,
    );
    engine.stop(Duration::from_secs(10));
    engine.join().expect("a clean stop");

    let delivered = DELIVERED.load(Ordering::SeqCst);
    let counted = metrics.snapshot().consume_errors;
    assert!(delivered >= 2, "errors delivered: {delivered}");
    assert_eq!(
        counted, delivered,
        "consume_errors against the errors the engine received"
    );
}
