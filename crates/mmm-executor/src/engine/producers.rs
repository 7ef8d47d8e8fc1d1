//! The target producers: one on a LAN, several across a long link.
//!
//! librdkafka sends one partition's batch per produce request and keeps at most
//! `max.in.flight.requests.per.connection` requests (5 with idempotence) on its one connection
//! to a broker, so one producer has at most 5 × `batch.size` on the way to each target broker:
//! at 100 ms that is about 27 MB/s of 200-byte records, a third of the LAN rate. Batches
//! cannot simply grow: a batch is refused whole when its compressed size passes the target
//! topic's `max.message.bytes` (1 MB by default), and librdkafka does not split it. More
//! producers, each with its own connections, multiply the window instead
//! ([`crate::windows::target_producers`]).
//!
//! Every record of a source partition goes through the same producer, so records that must
//! stay in order (those of one source partition, whatever target partition they land in)
//! share a producer, and idempotence keeps their order within it.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::client::Client;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, Producer};

use super::callbacks::DeliveryContext;
use super::state::Shared;

/// At most this many delivery events are served per producer in one go (each holds one batch of
/// reports), so that consuming goes on under a flood of them.
const MAX_DELIVERY_EVENTS: usize = 1024;

/// The producers records are spread over, by source partition.
pub(super) struct Producers {
    list: Vec<BaseProducer<DeliveryContext>>,
}

impl Producers {
    /// Creates `count` producers (at least one) from the same configuration.
    pub(super) fn create(
        config: &ClientConfig,
        count: usize,
        shared: &Arc<Shared>,
    ) -> Result<Producers, KafkaError> {
        let list = (0..count.max(1))
            .map(|_| {
                config.create_with_context(DeliveryContext {
                    shared: shared.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Producers { list })
    }

    /// How many there are.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.list.len()
    }

    /// The producer of a source partition: `route` is the index of the partition's topic among
    /// the routes (stable for the engine's life), so that the partitions of several topics
    /// spread over the producers too.
    pub(super) fn for_partition(
        &self,
        route: usize,
        partition: i32,
    ) -> &BaseProducer<DeliveryContext> {
        let n = self.list.len();
        let i = route.wrapping_add(usize::try_from(partition).unwrap_or(0)) % n;
        &self.list[i]
    }

    /// The first producer's client, for metadata about the target cluster.
    pub(super) fn client(&self) -> &Client<DeliveryContext> {
        self.list[0].client()
    }

    /// Serves every delivery report that is ready, without waiting; whether any record was
    /// acknowledged (or failed). One `poll` serves a single event (one batch of reports), so it
    /// is repeated while events keep settling records, up to a bound that lets consuming go on
    /// under a flood of them.
    pub(super) fn serve_ready(&self, shared: &Shared) -> bool {
        let before = shared.lock().in_flight_records;
        for producer in &self.list {
            let mut in_flight = shared.lock().in_flight_records;
            for _ in 0..MAX_DELIVERY_EVENTS {
                if in_flight == 0 {
                    break;
                }
                producer.poll(Duration::ZERO);
                let now = shared.lock().in_flight_records;
                if now == in_flight {
                    break;
                }
                in_flight = now;
            }
        }
        shared.lock().in_flight_records != before
    }

    /// Serves the delivery reports that are ready; when there were none, sleeps `pause` and
    /// serves those that came meanwhile.
    ///
    /// Not `poll(pause)`: rdkafka hands librdkafka the time left in whole milliseconds, rounded
    /// down, so the last millisecond of every wait is spent polling without a pause. A loop of
    /// 1 ms polls, as the engine's while its window is full, kept a core busy doing nothing.
    pub(super) fn serve_or_sleep(&self, shared: &Shared, pause: Duration) {
        if !self.serve_ready(shared) {
            std::thread::sleep(pause);
            self.serve_ready(shared);
        }
    }

    /// Each producer in turn.
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = &BaseProducer<DeliveryContext>> {
        self.list.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::state::State;
    use crate::metrics::Metrics;
    use std::collections::HashSet;
    use std::sync::atomic::AtomicU64;
    use std::sync::Mutex;

    fn shared() -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State::default()),
            metrics: Arc::new(Metrics::default()),
            generation: AtomicU64::new(0),
            syncs: None,
        })
    }

    fn producers(count: usize) -> Producers {
        let mut config = ClientConfig::new();
        // Never contacted: creating a producer only starts its threads.
        config.set("bootstrap.servers", "127.0.0.1:9");
        Producers::create(&config, count, &shared()).expect("producers")
    }

    fn index(p: &Producers, route: usize, partition: i32) -> usize {
        let chosen = p.for_partition(route, partition) as *const _;
        p.iter()
            .position(|q| std::ptr::eq(q, chosen))
            .expect("one of the list")
    }

    #[test]
    fn at_least_one_producer_exists() {
        assert_eq!(producers(0).len(), 1);
        assert_eq!(producers(3).len(), 3);
    }

    #[test]
    fn a_partition_always_gets_the_same_producer_and_partitions_spread() {
        let p = producers(3);
        for partition in 0..12 {
            assert_eq!(index(&p, 0, partition), index(&p, 0, partition));
        }
        let used: HashSet<usize> = (0..12).map(|partition| index(&p, 0, partition)).collect();
        assert_eq!(used.len(), 3, "twelve partitions use every producer");
        // Topics of one partition each spread too.
        let used: HashSet<usize> = (0..6).map(|route| index(&p, route, 0)).collect();
        assert_eq!(used.len(), 3);
    }
}
