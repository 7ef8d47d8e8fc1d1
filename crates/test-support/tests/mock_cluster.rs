//! Fault injection with librdkafka's mock cluster.

use std::time::{Duration, Instant};

use mmm_test_support::{
    consume_all, produce, produce_with_config, random_name, ApiKey, Error, MockKafkaCluster,
    ResponseError, TestRecord,
};

const TIMEOUT: Duration = Duration::from_secs(30);
const SHORT: &[(&str, &str)] = &[("message.timeout.ms", "2000")];

#[test]
fn produce_fails_while_errors_are_injected_and_succeeds_once_cleared() {
    let cluster = MockKafkaCluster::start(3).expect("mock cluster starts");
    let topic = random_name("faulty");
    cluster.create_topic(&topic, 2, 3).expect("topic created");
    let record = [TestRecord::new(1, "k", "v")];

    cluster.fail_until_cleared(
        ApiKey::Produce,
        ResponseError::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
    );
    let err = produce_with_config(&cluster.bootstrap(), &topic, &record, SHORT)
        .expect_err("produce must fail while errors are injected");
    assert!(
        matches!(
            err,
            Error::Delivery {
                delivered: 0,
                expected: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("authoriz"), "{err}");

    cluster.clear_failures(ApiKey::Produce);
    produce(&cluster.bootstrap(), &topic, &record).expect("produce works after clearing");
    let consumed = consume_all(&cluster.bootstrap(), &topic, 1, TIMEOUT).expect("consume");
    assert!(consumed[0].matches(&record[0]), "{consumed:?}");
}

#[test]
fn a_few_retriable_errors_are_retried_by_the_client() {
    let cluster = MockKafkaCluster::start(1).expect("mock cluster starts");
    let topic = random_name("retried");
    cluster.create_topic(&topic, 1, 1).expect("topic created");
    cluster.fail_requests(
        ApiKey::Produce,
        ResponseError::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        3,
    );
    produce(
        &cluster.bootstrap(),
        &topic,
        &[TestRecord::new(0, "k", "v")],
    )
    .expect("the client retries past three retriable errors");
    let consumed = consume_all(&cluster.bootstrap(), &topic, 1, TIMEOUT).expect("consume");
    assert_eq!(consumed.len(), 1);
}

#[test]
fn a_downed_broker_fails_produce_until_it_is_back() {
    let cluster = MockKafkaCluster::start(1).expect("mock cluster starts");
    let topic = random_name("down");
    cluster.create_topic(&topic, 1, 1).expect("topic created");
    cluster.broker_down(1).expect("broker down");
    let err = produce_with_config(
        &cluster.bootstrap(),
        &topic,
        &[TestRecord::new(0, "k", "v")],
        SHORT,
    )
    .expect_err("no broker to produce to");
    assert!(matches!(err, Error::Delivery { delivered: 0, .. }), "{err}");

    cluster.broker_up(1).expect("broker up");
    produce(
        &cluster.bootstrap(),
        &topic,
        &[TestRecord::new(0, "k", "v")],
    )
    .expect("produce");
}

#[test]
fn latency_delays_every_answer() {
    let cluster = MockKafkaCluster::start(1).expect("mock cluster starts");
    let topic = random_name("slow");
    cluster.create_topic(&topic, 1, 1).expect("topic created");
    let delay = Duration::from_millis(400);
    cluster.set_latency(1, delay).expect("latency set");
    let started = Instant::now();
    produce(
        &cluster.bootstrap(),
        &topic,
        &[TestRecord::new(0, "k", "v")],
    )
    .expect("produce");
    // A produce needs at least one answered request, so it cannot be faster than one delay.
    assert!(
        started.elapsed() >= delay,
        "produce took only {:?}",
        started.elapsed()
    );
}

#[test]
fn unknown_brokers_and_bad_topics_are_rejected_by_name() {
    let cluster = MockKafkaCluster::start(2).expect("mock cluster starts");
    let err = cluster.broker_down(3).expect_err("broker 3 does not exist");
    assert!(err.to_string().contains("mock broker 3"), "{err}");
    let err = cluster
        .create_topic("t", 1, 3)
        .expect_err("replication above broker count");
    assert!(err.to_string().contains("replication 3"), "{err}");
    let err = MockKafkaCluster::start(0).expect_err("no brokers");
    assert!(err.to_string().contains("at least one broker"), "{err}");
}
