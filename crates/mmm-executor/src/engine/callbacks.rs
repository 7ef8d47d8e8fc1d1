//! librdkafka's callbacks: delivery reports feed the offset trackers;
//! rebalances drain and commit revoked partitions.

use super::state::Shared;
use super::worker::{OFFSET_BITS, OFFSET_MASK};
use super::EngineError;
use rdkafka::config::RDKafkaLogLevel;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::TopicPartitionList;

use crate::metrics::Metrics;

pub(super) struct DeliveryContext {
    pub(super) shared: Arc<Shared>,
}

/// librdkafka's own log lines, into the executor's log.
pub(super) fn forward_log(
    client: &'static str,
    level: RDKafkaLogLevel,
    facility: &str,
    message: &str,
) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => tracing::error!(client, facility, "librdkafka: {message}"),
        RDKafkaLogLevel::Warning => tracing::warn!(client, facility, "librdkafka: {message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(client, facility, "librdkafka: {message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(client, facility, "librdkafka: {message}"),
    }
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        forward_log("producer", level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Transient (broker down, retried by librdkafka); failures that matter
        // arrive as delivery reports.
        tracing::warn!(client = "producer", %error, "librdkafka: {reason}");
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let slot_index = opaque >> OFFSET_BITS;
        let offset = (opaque & OFFSET_MASK) as i64;
        let message = match result {
            Ok(m) => m,
            Err((_, m)) => m,
        };
        let bytes = message.key().map_or(0, <[u8]>::len) + message.payload().map_or(0, <[u8]>::len);
        let mut state = self.shared.lock();
        state.in_flight_records = state.in_flight_records.saturating_sub(1);
        state.in_flight_bytes = state.in_flight_bytes.saturating_sub(bytes);
        match result {
            Ok(m) => {
                let map_offsets = state.map_offsets;
                if let Some(slot) = state.slots.get_mut(slot_index) {
                    if slot.tracker.delivered(offset) && map_offsets {
                        slot.map.record(offset, m.offset());
                    }
                }
                state.settle_retiring(slot_index);
                Metrics::add(&self.shared.metrics.records_produced, 1);
                Metrics::add(&self.shared.metrics.bytes_produced, bytes as u64);
            }
            Err((
                KafkaError::MessageProduction(
                    RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight,
                ),
                _,
            )) => {
                // Records dropped when the producer closes after the drain
                // deadline: they were never committed, so the next owner copies them.
            }
            Err((err, _)) => {
                Metrics::add(&self.shared.metrics.produce_errors, 1);
                let Some(slot) = state.slots.get_mut(slot_index) else {
                    return;
                };
                slot.tracker.failed(offset);
                let topic = slot.topic.clone();
                let partition = slot.partition;
                let target_topic = slot.target_topic.clone();
                state.settle_retiring(slot_index);
                let failure = EngineError::Delivery {
                    topic,
                    partition,
                    offset,
                    target_topic,
                    source: Box::new(err.clone()),
                };
                if state.failure.is_none() {
                    tracing::error!(error = %failure, "delivery failed");
                    state.failure = Some(failure);
                }
            }
        }
    }
}

pub(super) struct RebalanceContext {
    pub(super) shared: Arc<Shared>,
    pub(super) producers: Arc<super::producers::Producers>,
    /// How long a revoke waits for the revoked partitions' deliveries: the
    /// group's session timeout, after which their new owner reads them anyway.
    pub(super) drain_timeout: Duration,
    /// The fetch-only consumers the member shares its partitions with.
    pub(super) fetchers: Arc<super::fetchers::Fetchers>,
}

impl ClientContext for RebalanceContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        forward_log("consumer", level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Counted where the loop receives the same error from `poll`.
        tracing::warn!(client = "consumer", %error, "librdkafka: {reason}");
    }

    /// librdkafka's statistics carry each partition's cached watermarks,
    /// position and committed offset, so the lag costs no request.
    fn stats(&self, statistics: Statistics) {
        // Partitions handed to a fetcher are paused here: their figures come from the fetcher.
        let fetchers = &self.fetchers;
        record_statistics(&self.shared, 0, &statistics, |topic, partition| {
            !fetchers.handed_off(topic, partition)
        });
    }
}

/// What one source consumer's statistics say about the partitions it reads.
#[derive(Debug, Default)]
pub(super) struct PartitionFigures {
    lag: BTreeMap<String, i64>,
    caught_up: HashSet<(String, i32)>,
    low_watermarks: HashMap<(String, i32), i64>,
}

/// Takes the figures of the partitions source consumer `index` reads (those `reads` accepts)
/// from its statistics, and publishes those of every consumer together.
pub(super) fn record_statistics(
    shared: &Shared,
    index: usize,
    statistics: &Statistics,
    reads: impl Fn(&str, i32) -> bool,
) {
    let mut figures = PartitionFigures::default();
    let mut state = shared.lock();
    for (name, topic) in &statistics.topics {
        for (id, p) in &topic.partitions {
            if *id < 0 || !p.desired || !reads(name, *id) {
                continue;
            }
            if p.lo_offset >= 0 {
                figures
                    .low_watermarks
                    .insert((name.clone(), *id), p.lo_offset);
            }
            let Some(end) = readable_end(p.ls_offset, p.hi_offset) else {
                continue;
            };
            let position = if p.app_offset >= 0 {
                p.app_offset
            } else {
                p.lo_offset
            };
            if position >= end {
                figures.caught_up.insert((name.clone(), *id));
            }
            // The engine's own commits: a fetcher never commits, so its statistics only know
            // the offset it started from.
            let committed = state
                .find_slot(name, *id)
                .and_then(|i| state.slots.get(i))
                .and_then(|s| s.last_committed)
                .unwrap_or(p.committed_offset);
            if let Some(lag_records) = committed_lag(end, committed, p.lo_offset) {
                figures.lag.insert(format!("{name}-{id}"), lag_records);
            }
        }
    }
    if state.figures.len() <= index {
        state
            .figures
            .resize_with(index + 1, PartitionFigures::default);
    }
    state.figures[index] = figures;
    let mut lag = BTreeMap::new();
    let mut caught_up = HashSet::new();
    let mut low_watermarks = HashMap::new();
    for f in &state.figures {
        lag.extend(f.lag.iter().map(|(k, v)| (k.clone(), *v)));
        caught_up.extend(f.caught_up.iter().cloned());
        low_watermarks.extend(f.low_watermarks.iter().map(|(k, v)| (k.clone(), *v)));
    }
    state.caught_up = caught_up;
    state.low_watermarks = low_watermarks;
    drop(state);
    shared.metrics.set_lag(lag);
}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        // Nothing more is read of them before their offsets are committed.
        self.fetchers.take_back(tpl);
        let revoked: Vec<usize> = {
            let mut state = self.shared.lock();
            for e in tpl.elements() {
                state
                    .assigned
                    .remove(&(e.topic().to_owned(), e.partition()));
            }
            tpl.elements()
                .iter()
                .filter_map(|e| state.find_slot(e.topic(), e.partition()))
                .collect()
        };
        tracing::info!(
            partitions = tpl.count(),
            "partitions revoked: draining them"
        );
        // Only the revoked partitions' records must reach the target before
        // their offsets move to another member.
        let deadline = Instant::now() + self.drain_timeout;
        loop {
            let pending: usize = {
                let state = self.shared.lock();
                revoked
                    .iter()
                    .filter_map(|&i| state.slots.get(i))
                    .map(|s| s.tracker.in_flight())
                    .sum()
            };
            if pending == 0 {
                break;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    pending,
                    "revoked partitions still had records in flight at the deadline: \
                     the next owner will copy them again"
                );
                break;
            }
            self.producers
                .serve_or_sleep(&self.shared, super::worker::DELIVERY_WAIT);
        }
        let (list, marks) = self.shared.lock().commit_list(Some(&revoked));
        let _ = self
            .shared
            .commit(consumer, &list, &marks, CommitMode::Sync);
        let mut state = self.shared.lock();
        for &i in &revoked {
            state.release(i);
        }
        state.rebalances += 1;
        self.shared.generation.fetch_add(1, Ordering::Release);
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.fetchers.hand_out(consumer, tpl);
                let mut state = self.shared.lock();
                for e in tpl.elements() {
                    state.assigned.insert((e.topic().to_owned(), e.partition()));
                    if let Some(i) = state.find_slot(e.topic(), e.partition()) {
                        let slot = &mut state.slots[i];
                        slot.assigned = true;
                        slot.tracker.reset();
                        slot.map.close();
                        slot.last_committed = None;
                    }
                }
                state.rebalances += 1;
                tracing::info!(partitions = tpl.count(), "partitions assigned");
                self.shared.metrics.consuming.store(true, Ordering::Release);
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(err) => {
                Metrics::add(&self.shared.metrics.consume_errors, 1);
                tracing::warn!(error = %err, "rebalance error");
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => self.shared.metrics.committed_now(),
            Err(err) => {
                Metrics::add(&self.shared.metrics.commit_errors, 1);
                tracing::warn!(error = %err, "asynchronous commit failed");
                // Commit these partitions again at the next interval.
                let mut state = self.shared.lock();
                for e in offsets.elements() {
                    if let Some(i) = state.find_slot(e.topic(), e.partition()) {
                        state.slots[i].last_committed = None;
                    }
                }
            }
        }
    }
}

/// The end of what the consumer may read: under read_committed, records past
/// the last stable offset cannot be read yet, so the lag counts to it.
fn readable_end(last_stable: i64, high_watermark: i64) -> Option<i64> {
    let end = if last_stable >= 0 {
        last_stable
    } else {
        high_watermark
    };
    (end >= 0).then_some(end)
}

/// The committed lag: what a restart would read again or for the first
/// time, counted from the committed offset (the log start when the group
/// has committed nothing), never below zero.
fn committed_lag(end: i64, committed: i64, log_start: i64) -> Option<i64> {
    let from = if committed >= 0 { committed } else { log_start };
    (from >= 0).then(|| (end - from).max(0))
}

#[cfg(test)]
mod lag_tests {
    use super::{committed_lag, readable_end};

    #[test]
    fn lag_counts_from_the_committed_offset_to_the_last_stable_offset() {
        // An open transaction holds the last stable offset below the high
        // watermark: its records are not lag yet.
        assert_eq!(readable_end(90, 100), Some(90));
        assert_eq!(readable_end(-1, 100), Some(100));
        assert_eq!(readable_end(-1, -1), None);
        assert_eq!(committed_lag(90, 40, 0), Some(50));
        // Nothing committed: everything from the log start.
        assert_eq!(committed_lag(90, -1001, 10), Some(80));
        // A commit past the end (the watermark cache is older) is no lag.
        assert_eq!(committed_lag(90, 95, 0), Some(0));
        assert_eq!(committed_lag(90, -1, -1), None);
    }
}
