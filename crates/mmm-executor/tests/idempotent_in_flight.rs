//! The librdkafka this workspace builds (vendor/README.md) lets an idempotent producer keep
//! several produce requests of one partition in flight, up to the broker's de-duplication window
//! of 5, and keeps the partition's order when one of them fails.
//!
//! The tests run librdkafka's mock cluster, which delays its answers and fails requests on
//! demand; Tansu can do neither. The mock checks producer sequence numbers for transactional
//! producers only, and the executor's producer is not one, so where Kafka would refuse requests
//! behind a failed one, the tests tell the mock to answer the same. The producers use the
//! executor's own producer configuration.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mmm_executor::kafka_config::producer_config;
use mmm_test_support::{random_name, ApiKey, MockKafkaCluster, ResponseError};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientContext, Message};

const ROUND_TRIP: Duration = Duration::from_millis(100);
/// About eight full batches of the executor's `batch.size`.
const RECORDS: usize = 40_000;
const PAYLOAD_BYTES: usize = 200;

/// Keeps librdkafka's `msg` debug lines: one per produce request sent and one per request
/// answered.
#[derive(Clone, Default)]
struct RequestLog(Arc<Mutex<Vec<String>>>);

impl ClientContext for RequestLog {
    fn log(&self, _level: RDKafkaLogLevel, _facility: &str, message: &str) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(message.to_owned());
        }
    }
}

impl ProducerContext for RequestLog {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

impl RequestLog {
    /// The last `n` lines, for a failure's message.
    fn tail(&self, n: usize) -> String {
        let lines = self.lines();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    fn failed_requests(&self, topic: &str) -> usize {
        let partition = format!("{topic} [0]");
        self.lines()
            .iter()
            .filter(|l| l.contains(&partition) && l.contains("encountered error"))
            .count()
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The most produce requests of `topic`'s partition 0 that were in flight at once: sent and
    /// not yet answered, successfully or not.
    fn most_in_flight(&self, topic: &str) -> usize {
        let partition = format!("{topic} [0]");
        let lines = self.lines();
        let (mut now, mut most) = (0usize, 0usize);
        for line in lines.iter().filter(|l| l.contains(&partition)) {
            if line.contains("Produce MessageSet with") {
                now += 1;
                most = most.max(now);
            } else if line.contains("MessageSet with") && answered(line) {
                now = now.saturating_sub(1);
            }
        }
        most
    }
}

/// Whether a `msg` debug line reports a request's answer: delivered, or failed.
fn answered(line: &str) -> bool {
    line.contains("delivered") || line.contains("encountered error")
}

fn producer(cluster: &MockKafkaCluster) -> (BaseProducer<RequestLog>, RequestLog) {
    let mut props = BTreeMap::new();
    props.insert("bootstrap.servers".to_owned(), cluster.bootstrap());
    props.insert("debug".to_owned(), "msg".to_owned());
    let mut config = producer_config(&props);
    config.set_log_level(RDKafkaLogLevel::Debug);
    assert_eq!(config.get("enable.idempotence"), Some("true"));
    let log = RequestLog::default();
    let producer = config
        .create_with_context(log.clone())
        .expect("producer on the mock cluster");
    (producer, log)
}

/// Queues `RECORDS` numbered records for partition 0, serving the producer when its queue is
/// full.
fn send_numbered(producer: &BaseProducer<RequestLog>, topic: &str) {
    for i in 0..RECORDS {
        let payload = payload(i);
        let mut record: BaseRecord<'_, (), [u8]> = BaseRecord::to(topic)
            .partition(0)
            .payload(payload.as_slice());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => panic!("record {i} not queued: {e}"),
            }
        }
    }
}

/// Waits until every queued record is delivered; librdkafka's last words if not.
fn flush_all(producer: &BaseProducer<RequestLog>, log: &RequestLog) {
    if let Err(e) = producer.flush(Duration::from_secs(60)) {
        panic!(
            "not every record delivered: {e}; librdkafka said:\n{}",
            log.tail(60)
        );
    }
}

fn payload(i: usize) -> Vec<u8> {
    let mut p = format!("{i:010}").into_bytes();
    p.resize(PAYLOAD_BYTES, b'.');
    p
}

fn mock_with_topic(topic: &str) -> MockKafkaCluster {
    mock_with_latency(topic, ROUND_TRIP / 2)
}

fn mock_with_latency(topic: &str, latency: Duration) -> MockKafkaCluster {
    let cluster = MockKafkaCluster::start(1).expect("mock cluster");
    cluster.create_topic(topic, 1, 1).expect("topic");
    cluster.set_latency(1, latency).expect("latency");
    cluster
}

/// Reads partition 0 of `topic` from the start, committed records only.
fn read_all(bootstrap: &str, topic: &str, expected: usize) -> Vec<Vec<u8>> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", random_name("reader"))
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = rdkafka::TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, rdkafka::Offset::Beginning)
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let mut got = Vec::with_capacity(expected);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while got.len() < expected && std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => got.push(m.payload().unwrap_or_default().to_vec()),
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    // Anything past the expected records would be a duplicate.
    while let Some(extra) = consumer.poll(Duration::from_millis(500)) {
        got.push(extra.expect("read").payload().unwrap_or_default().to_vec());
    }
    got
}

fn assert_in_order_once(got: &[Vec<u8>]) {
    assert_eq!(got.len(), RECORDS, "every record once, no duplicate");
    for (i, p) in got.iter().enumerate() {
        assert!(
            p == &payload(i),
            "record {i} out of place: {:?}",
            String::from_utf8_lossy(&p[..10.min(p.len())])
        );
    }
}

#[test]
fn one_partition_keeps_several_requests_in_flight() {
    let topic = random_name("inflight");
    let cluster = mock_with_topic(&topic);
    let (producer, log) = producer(&cluster);
    send_numbered(&producer, &topic);
    flush_all(&producer, &log);

    let most = log.most_in_flight(&topic);
    // Stock librdkafka sends a partition's next request only once the previous is answered.
    assert!(
        most >= 2,
        "at most {most} request(s) of the partition were in flight"
    );
    assert!(
        most <= 5,
        "{most} requests in flight, past the broker's de-duplication window"
    );
    assert_in_order_once(&read_all(&cluster.bootstrap(), &topic, RECORDS));
}

/// Kafka answers every request behind a failed one with OUT_OF_ORDER_SEQUENCE_NUMBER, and
/// librdkafka's mock cluster checks sequences for transactional producers only, so here every
/// request fails for a while: the requests in flight fail together, as they would on Kafka, and
/// are all sent again in order.
#[test]
fn requests_in_flight_that_fail_together_are_sent_again_in_order() {
    let topic = random_name("inflight-retry");
    let cluster = mock_with_topic(&topic);
    let (producer, log) = producer(&cluster);
    cluster.fail_until_cleared(
        ApiKey::Produce,
        ResponseError::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
    );
    send_numbered(&producer, &topic);
    // Several requests fail, then the broker recovers.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while log.failed_requests(&topic) < 3 && std::time::Instant::now() < deadline {
        producer.poll(Duration::from_millis(10));
    }
    cluster.clear_failures(ApiKey::Produce);
    flush_all(&producer, &log);

    let most = log.most_in_flight(&topic);
    assert!(
        most >= 2,
        "at most {most} request(s) in flight: the case was not reached"
    );
    let failed = log.failed_requests(&topic);
    assert!(failed >= 3, "{failed} request(s) failed:\n{}", log.tail(60));
    assert_in_order_once(&read_all(&cluster.bootstrap(), &topic, RECORDS));
}

/// What Kafka answers when the first of 5 requests in flight fails: the first gets its error, the
/// 4 behind it OUT_OF_ORDER_SEQUENCE_NUMBER, since their sequence numbers now skip the first's.
/// librdkafka must then send all 5 again, in order, under a new epoch. The mock cluster does not
/// check sequences here, so it is told the answers; a long round trip makes sure all 5 requests
/// are on their way before the first answer.
#[test]
fn a_failed_request_and_the_four_behind_it_are_sent_again_in_order() {
    use ResponseError::{
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS as NOT_ENOUGH_REPLICAS,
        RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER as OUT_OF_ORDER,
    };
    let topic = random_name("inflight-sequence");
    let cluster = mock_with_latency(&topic, Duration::from_millis(500));
    cluster.inner().request_errors(
        ApiKey::Produce,
        &[
            NOT_ENOUGH_REPLICAS,
            OUT_OF_ORDER,
            OUT_OF_ORDER,
            OUT_OF_ORDER,
            OUT_OF_ORDER,
        ],
    );
    let (producer, log) = producer(&cluster);
    send_numbered(&producer, &topic);
    flush_all(&producer, &log);

    assert_eq!(log.most_in_flight(&topic), 5, "{}", log.tail(60));
    let lines = log.lines();
    let recovered = lines
        .iter()
        .filter(|l| l.contains("skipped sequence numbers"))
        .count();
    assert!(
        recovered >= 4,
        "{recovered} request(s) recovered from skipped sequence numbers:\n{}",
        log.tail(60)
    );
    assert_in_order_once(&read_all(&cluster.bootstrap(), &topic, RECORDS));
}
