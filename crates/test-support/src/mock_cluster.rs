//! librdkafka's built-in mock cluster, wrapped for fault injection.
//!
//! The mock brokers run inside the test process (threads of librdkafka), speak enough of the
//! Kafka protocol for producers, consumers and consumer groups, and can be told to fail: take a
//! broker down, answer requests of one API with errors, or delay every answer. Use it for faults
//! a real broker cannot be made to produce on demand; use [`crate::KafkaBroker`] for everything
//! else. Topic creation through the admin API is not supported by the mock: use
//! [`MockKafkaCluster::create_topic`].

use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

pub use rdkafka::types::{RDKafkaApiKey as ApiKey, RDKafkaRespErr as ResponseError};

use crate::error::{Error, Result};

/// How many errors [`MockKafkaCluster::fail_until_cleared`] queues: librdkafka has no "always
/// fail" switch, only a queue of errors consumed one per request.
pub const UNTIL_CLEARED: usize = 100_000;

/// A librdkafka mock cluster with N brokers (ids `1..=N`) on 127.0.0.1.
///
/// Stops when dropped. Not `Send`: keep it on the thread that created it (clients connecting to
/// it may live anywhere).
pub struct MockKafkaCluster {
    inner: MockCluster<'static, DefaultProducerContext>,
    brokers: i32,
}

impl std::fmt::Debug for MockKafkaCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockKafkaCluster")
            .field("bootstrap", &self.bootstrap())
            .field("brokers", &self.brokers)
            .finish()
    }
}

impl MockKafkaCluster {
    /// Starts a mock cluster of `brokers` brokers.
    pub fn start(brokers: i32) -> Result<MockKafkaCluster> {
        if brokers < 1 {
            return Err(Error::InvalidArgument(format!(
                "a mock cluster needs at least one broker, got {brokers}"
            )));
        }
        let inner = MockCluster::new(brokers).map_err(|source| {
            Error::kafka(
                format!("starting a mock cluster of {brokers} brokers"),
                source,
            )
        })?;
        Ok(MockKafkaCluster { inner, brokers })
    }

    /// The brokers' addresses, comma separated, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.inner.bootstrap_servers()
    }

    /// The broker ids: `1..=N`.
    pub fn broker_ids(&self) -> std::ops::RangeInclusive<i32> {
        1..=self.brokers
    }

    /// Creates a topic (the mock does not support the CreateTopics admin request).
    pub fn create_topic(&self, topic: &str, partitions: i32, replication: i32) -> Result<()> {
        if partitions < 1 || replication < 1 || replication > self.brokers {
            return Err(Error::InvalidArgument(format!(
                "topic {topic}: {partitions} partitions and replication {replication} on a \
                 {}-broker mock cluster",
                self.brokers
            )));
        }
        self.inner
            .create_topic(topic, partitions, replication)
            .map_err(|source| Error::kafka(format!("creating mock topic {topic}"), source))
    }

    /// Takes a broker down: its listener closes connections and refuses new ones.
    pub fn broker_down(&self, broker: i32) -> Result<()> {
        self.check_broker(broker)?;
        self.inner
            .broker_down(broker)
            .map_err(|source| Error::kafka(format!("taking mock broker {broker} down"), source))
    }

    /// Brings a broker taken down with [`MockKafkaCluster::broker_down`] back.
    pub fn broker_up(&self, broker: i32) -> Result<()> {
        self.check_broker(broker)?;
        self.inner
            .broker_up(broker)
            .map_err(|source| Error::kafka(format!("bringing mock broker {broker} up"), source))
    }

    /// Delays every answer of `broker` by `delay` (round-trip time).
    pub fn set_latency(&self, broker: i32, delay: Duration) -> Result<()> {
        self.check_broker(broker)?;
        self.inner
            .broker_round_trip_time(broker, delay)
            .map_err(|source| {
                Error::kafka(format!("setting latency of mock broker {broker}"), source)
            })
    }

    /// Makes the next `times` requests of `api` (on any broker) fail with `error`.
    ///
    /// `ResponseError::RD_KAFKA_RESP_ERR__TRANSPORT` makes the broker drop the connection
    /// instead of answering.
    pub fn fail_requests(&self, api: ApiKey, error: ResponseError, times: usize) {
        self.inner.request_errors(api, &vec![error; times]);
    }

    /// Makes requests of `api` fail with `error` until [`MockKafkaCluster::clear_failures`]
    /// (at most [`UNTIL_CLEARED`] requests).
    pub fn fail_until_cleared(&self, api: ApiKey, error: ResponseError) {
        self.fail_requests(api, error, UNTIL_CLEARED);
    }

    /// Drops every queued error for `api`.
    pub fn clear_failures(&self, api: ApiKey) {
        self.inner.clear_request_errors(api);
    }

    /// The wrapped librdkafka mock cluster, for anything this wrapper does not cover.
    pub fn inner(&self) -> &MockCluster<'static, DefaultProducerContext> {
        &self.inner
    }

    fn check_broker(&self, broker: i32) -> Result<()> {
        if self.broker_ids().contains(&broker) {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "mock broker {broker} does not exist: ids are 1..={}",
                self.brokers
            )))
        }
    }
}
