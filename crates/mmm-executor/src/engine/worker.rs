//! The replication loop and the forwarding of one record.

use super::callbacks::{DeliveryContext, RebalanceContext};
use super::fetchers::{Fetchers, Turn};
use super::producers::Producers;
use super::provenance::{NameError, Provenance, Verdict};
use super::stall::{PartitionView, StallWatch};
use super::state::Shared;
use super::{Control, EngineError, EngineResult, Limits, Summary};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mmm_core::task_data::TaskData;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::BaseRecord;
use rdkafka::Timestamp;

use crate::metrics::Metrics;
use crate::target_topics::{self, Clusters, Route};

/// Source offsets travel to the delivery report packed with their partition
/// slot in the producer's opaque pointer, which saves an allocation per record.
pub(super) const OFFSET_BITS: u32 = 48;
pub(super) const OFFSET_MASK: usize = (1 << OFFSET_BITS) - 1;
pub(super) const MAX_SLOTS: usize = 1 << (usize::BITS - OFFSET_BITS);

/// How long the in-flight bound may stop consumption before the partitions
/// are paused.
pub(super) const PAUSE_AFTER: Duration = Duration::from_secs(1);

/// How often the loop hands deliveries to the tracker while records stream in.
pub(super) const DELIVERY_POLL_EVERY: u32 = 512;

/// How long the loop sleeps when it waits for deliveries and none are ready.
pub(super) const DELIVERY_WAIT: Duration = Duration::from_millis(1);

/// How often the loop checks the partitions' progress against consumer errors.
pub(super) const STALL_CHECK_EVERY: Duration = Duration::from_secs(1);

/// How long one attempt to learn a cluster's id may take; librdkafka goes on
/// connecting in the background between attempts.
const CLUSTER_ID_ATTEMPT: Duration = Duration::from_secs(2);

/// A topic's route plus the slot of each of its partitions.
pub(super) struct TopicRoute {
    pub(super) source: String,
    pub(super) route: Route,
    pub(super) slots: Vec<Option<usize>>,
}

/// The routes of the topics seen so far. Consecutive records mostly come
/// from the same topic, so the last one is checked before hashing.
#[derive(Default)]
pub(super) struct Routes {
    pub(super) list: Vec<TopicRoute>,
    pub(super) index: HashMap<String, usize>,
    pub(super) last: usize,
    /// The revoke generation the cached slot numbers belong to.
    pub(super) generation: u64,
    /// Routes by the address of the consumer's topic handle, so that a record
    /// needs neither its topic's name nor a lookup by name. librdkafka keeps a
    /// handle while records of its topic can arrive, and a topic only goes
    /// away through a rebalance, which clears these.
    handles: Vec<(usize, usize)>,
    last_handle: Option<(usize, usize)>,
}

impl Routes {
    pub(super) fn by_handle(&mut self, handle: usize) -> Option<usize> {
        if let Some((h, i)) = self.last_handle {
            if h == handle {
                return Some(i);
            }
        }
        let (_, i) = *self.handles.iter().find(|(h, _)| *h == handle)?;
        self.last_handle = Some((handle, i));
        Some(i)
    }

    pub(super) fn remember_handle(&mut self, handle: usize, route: usize) {
        self.handles.retain(|(h, _)| *h != handle);
        self.handles.push((handle, route));
        self.last_handle = Some((handle, route));
    }

    pub(super) fn forget_handles(&mut self) {
        self.handles.clear();
        self.last_handle = None;
    }

    pub(super) fn find(&mut self, topic: &str) -> Option<usize> {
        if self.list.get(self.last).is_some_and(|r| r.source == topic) {
            return Some(self.last);
        }
        let i = *self.index.get(topic)?;
        self.last = i;
        Some(i)
    }

    pub(super) fn add(&mut self, route: TopicRoute) -> usize {
        let i = self.list.len();
        self.index.insert(route.source.clone(), i);
        self.list.push(route);
        self.last = i;
        i
    }
}

pub(super) struct Worker {
    pub(super) task: TaskData,
    pub(super) limits: Limits,
    pub(super) consumer: BaseConsumer<RebalanceContext>,
    /// The fetch-only consumers the member shares its partitions with (none on a LAN).
    pub(super) fetchers: Arc<Fetchers>,
    pub(super) turn: Turn,
    pub(super) producers: Arc<Producers>,
    pub(super) admin: AdminClient<DefaultClientContext>,
    pub(super) source_admin: AdminClient<DefaultClientContext>,
    pub(super) shared: Arc<Shared>,
    pub(super) control: Arc<Control>,
    pub(super) routes: Routes,
    pub(super) stall: StallWatch,
    /// The cluster names of the provenance headers, once known; `None`
    /// while unknown or with `provenance = false`.
    pub(super) provenance: Option<Provenance>,
}

impl Worker {
    pub(super) fn run(mut self) -> EngineResult {
        let outcome = self.replicate();
        let committed = match &outcome {
            Ok(()) => self.drain_and_commit(),
            Err(_) => {
                // Commit what did arrive: the failed partition's tracker stops at
                // the failed offset, so nothing past it is committed.
                self.commit_all(CommitMode::Sync);
                self.committed()
            }
        };
        // A delivery that failed while draining is as fatal as one before.
        let outcome = match (outcome, self.shared.lock().failure.take()) {
            (Ok(()), Some(failure)) => Err(failure),
            (outcome, _) => outcome,
        };
        let undelivered = self.shared.lock().in_flight_records;
        // Leaving the group runs the revoke callback, which needs the producer:
        // the consumer goes first.
        let Worker {
            consumer,
            fetchers,
            producers,
            ..
        } = self;
        drop(consumer);
        drop(fetchers);
        drop(producers);
        outcome.map(|()| Summary {
            committed,
            undelivered,
        })
    }

    pub(super) fn stop_requested(&self) -> bool {
        self.control.stop.load(Ordering::Acquire)
    }

    pub(super) fn drain_deadline(&self) -> Instant {
        let started = self.control.started.unwrap_or_else(Instant::now);
        started + Duration::from_millis(self.control.drain_deadline_ms.load(Ordering::Acquire))
    }

    /// Learns the two clusters' names, retrying while a cluster does not
    /// answer; `None` when a stop came first.
    fn resolve_provenance(&self) -> Result<Option<Provenance>, EngineError> {
        let attempt = self.limits.metadata_timeout.min(CLUSTER_ID_ATTEMPT);
        let mut failed = false;
        loop {
            if self.stop_requested() {
                return Ok(None);
            }
            match Provenance::resolve(
                &self.task,
                self.consumer.client(),
                self.producers.client(),
                attempt,
            ) {
                Ok(provenance) => {
                    tracing::info!(
                        source = provenance.source(),
                        target = provenance.target(),
                        "provenance: records get the source's name; records naming the target are not mirrored"
                    );
                    if failed {
                        self.shared.metrics.set_health("ok", None);
                    }
                    return Ok(Some(provenance));
                }
                Err(NameError::Permanent(err)) => return Err(err),
                Err(NameError::Unreachable(reason)) => {
                    // Nothing is consumed before the names are known: a
                    // record must not be mirrored without its verdict.
                    tracing::warn!(%reason, "waiting for a cluster's id");
                    self.shared.metrics.set_health("degraded", Some(reason));
                    failed = true;
                }
            }
        }
    }

    pub(super) fn replicate(&mut self) -> Result<(), EngineError> {
        if self.task.provenance && self.provenance.is_none() {
            match self.resolve_provenance()? {
                Some(provenance) => self.provenance = Some(provenance),
                None => return Ok(()),
            }
        }
        let commit_interval = Duration::from_millis(self.task.offset_commit_interval_ms);
        let mut next_commit = Instant::now() + commit_interval;
        let mut paused = false;
        let mut blocked_since: Option<Instant> = None;
        let mut paused_at_rebalance = 0u64;
        let mut since_delivery_poll = 0u32;
        let stall_timeout = Duration::from_millis(self.task.stall_timeout_ms);
        let mut next_stall_check = Instant::now() + STALL_CHECK_EVERY;
        let mut routed_at_rebalance = 0u64;
        loop {
            if self.stop_requested() {
                return Ok(());
            }
            let (in_flight, bytes, rebalances) = {
                let mut state = self.shared.lock();
                if let Some(failure) = state.failure.take() {
                    return Err(failure);
                }
                (
                    state.in_flight_records,
                    state.in_flight_bytes,
                    state.rebalances,
                )
            };
            if rebalances != routed_at_rebalance {
                self.routes.forget_handles();
                routed_at_rebalance = rebalances;
            }
            let now = Instant::now();
            if now >= next_commit {
                // Synchronous: one round trip per interval costs nothing at
                // this rate, and the outcome (and the last commit time the
                // metrics report) is known when it returns.
                self.commit_all(CommitMode::Sync);
                next_commit = now + commit_interval;
            }
            if now >= next_stall_check {
                self.check_progress(now, stall_timeout)?;
                next_stall_check = now + STALL_CHECK_EVERY;
            }

            let over = in_flight >= self.limits.max_in_flight_records
                || bytes >= self.limits.max_in_flight_bytes;
            if over {
                // Wait for deliveries without consuming. Pausing would drop
                // the prefetched records, so it is kept for long stalls (a
                // target that is down), where it lets the consumer be polled
                // for rebalances without taking records.
                let since = *blocked_since.get_or_insert(now);
                self.producers.serve_or_sleep(&self.shared, DELIVERY_WAIT);
                if !paused && since.elapsed() >= PAUSE_AFTER {
                    self.set_paused(true);
                    Metrics::add(&self.shared.metrics.backpressure_pauses, 1);
                    paused = true;
                    paused_at_rebalance = rebalances;
                } else if paused && paused_at_rebalance != rebalances {
                    self.set_paused(true);
                    paused_at_rebalance = rebalances;
                }
                if !paused {
                    continue;
                }
            } else {
                if let Some(since) = blocked_since.take() {
                    let ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
                    Metrics::add(&self.shared.metrics.window_full_ms, ms);
                }
                if paused
                    && in_flight <= self.limits.max_in_flight_records / 2
                    && bytes <= self.limits.max_in_flight_bytes / 2
                {
                    self.set_paused(false);
                    paused = false;
                }
            }

            // Waiting in the consumer wakes up as soon as records arrive;
            // deliveries are picked up right after.
            let timeout = if in_flight > 0 {
                Duration::ZERO
            } else {
                Duration::from_millis(50)
            };
            match self.fetchers.poll(&self.consumer, &mut self.turn, timeout) {
                Some(Ok(message)) => {
                    let clusters = Clusters {
                        source: self.consumer.client(),
                        target: self.producers.client(),
                        source_admin: &self.source_admin,
                        target_admin: &self.admin,
                    };
                    forward(
                        &self.task,
                        &self.limits,
                        &clusters,
                        &self.producers,
                        &self.shared,
                        &mut self.routes,
                        self.provenance.as_ref(),
                        &message,
                    )?;
                    since_delivery_poll += 1;
                    if since_delivery_poll >= DELIVERY_POLL_EVERY {
                        self.producers.serve_ready(&self.shared);
                        since_delivery_poll = 0;
                    }
                }
                Some(Err(err)) => {
                    Metrics::add(&self.shared.metrics.consume_errors, 1);
                    match err.rdkafka_error_code() {
                        Some(RDKafkaErrorCode::Fatal) => {
                            return Err(EngineError::Consumer(Box::new(err)))
                        }
                        Some(RDKafkaErrorCode::AutoOffsetReset) => {
                            return Err(self.no_offset(err.to_string()))
                        }
                        _ => {}
                    }
                    tracing::warn!(error = %err, "consumer error");
                    // Reported at once; the stall timeout is checked every second.
                    let now = Instant::now();
                    self.stall.consumer_error(err.to_string(), now);
                    let views = self.assigned_views();
                    let health = self.stall.check(now, &views);
                    self.report_health(health);
                    self.producers.serve_ready(&self.shared);
                }
                None => {
                    if in_flight > 0 && !over {
                        self.producers.serve_or_sleep(&self.shared, DELIVERY_WAIT);
                    } else {
                        self.producers.serve_ready(&self.shared);
                    }
                    since_delivery_poll = 0;
                }
            }
        }
    }

    /// The assigned partitions with their last forwarded offset.
    fn assigned_views(&self) -> Vec<PartitionView> {
        let Ok(assignment) = self.consumer.assignment() else {
            return Vec::new();
        };
        let state = self.shared.lock();
        assignment
            .elements()
            .iter()
            .map(|e| {
                let key = (e.topic().to_owned(), e.partition());
                PartitionView {
                    last_offset: state
                        .find_slot(e.topic(), e.partition())
                        .and_then(|i| state.slots.get(i))
                        .and_then(|s| s.tracker.last_tracked()),
                    caught_up: state.caught_up.contains(&key),
                    topic: key.0,
                    partition: key.1,
                }
            })
            .collect()
    }

    fn report_health(&self, health: super::stall::Health) {
        self.shared
            .metrics
            .set_health(health.status(), health.error());
    }

    /// Updates the task's health; fails once a partition is stuck for the stall timeout.
    fn check_progress(&mut self, now: Instant, timeout: Duration) -> Result<(), EngineError> {
        let views = self.assigned_views();
        let health = self.stall.check(now, &views);
        self.report_health(health.clone());
        match health {
            super::stall::Health::Stalled {
                topic,
                partition,
                stuck_for,
                error,
            } if stuck_for >= timeout => Err(EngineError::Stalled {
                topic,
                partition,
                seconds: stuck_for.as_secs(),
                error,
            }),
            _ => Ok(()),
        }
    }

    /// The error of `auto.offset.reset=error` (Java's `none`), naming the
    /// assigned partitions without a committed offset (librdkafka's error
    /// does not say which), else those that never yielded a record.
    fn no_offset(&self, reason: String) -> EngineError {
        let mut names = Vec::new();
        if let Ok(committed) = self.consumer.committed(self.limits.metadata_timeout) {
            for e in committed.elements() {
                if !matches!(e.offset(), rdkafka::Offset::Offset(o) if o >= 0) {
                    names.push(format!("{}-{}", e.topic(), e.partition()));
                }
            }
        }
        if names.is_empty() {
            names = self
                .assigned_views()
                .into_iter()
                .filter(|v| v.last_offset.is_none())
                .map(|v| format!("{}-{}", v.topic, v.partition))
                .collect();
        }
        if names.is_empty() {
            names.push("(unknown)".into());
        }
        EngineError::NoOffset {
            partitions: names.join(", "),
            reason,
        }
    }

    pub(super) fn set_paused(&self, pause: bool) {
        match self.fetchers.set_paused(&self.consumer, pause) {
            Ok(()) => tracing::debug!(pause, "backpressure"),
            Err(err) => tracing::warn!(error = %err, pause, "pausing or resuming failed"),
        }
    }

    pub(super) fn commit_all(&self, mode: CommitMode) {
        let (list, marks) = self.shared.lock().commit_list(None);
        let _ = self.shared.commit(&self.consumer, &list, &marks, mode);
    }

    pub(super) fn committed(&self) -> BTreeMap<(String, i32), i64> {
        self.shared
            .lock()
            .slots
            .iter()
            .filter_map(|s| Some(((s.topic.clone(), s.partition), s.last_committed?)))
            .collect()
    }

    /// Waits for the records in flight until the stop deadline, then commits.
    pub(super) fn drain_and_commit(&mut self) -> BTreeMap<(String, i32), i64> {
        let deadline = self.drain_deadline();
        // Keep a little of the grace period for the commit and leaving the group.
        let drain_until = deadline
            .checked_sub(Duration::from_millis(500))
            .unwrap_or(deadline);
        loop {
            let in_flight = self.shared.lock().in_flight_records;
            if in_flight == 0 {
                break;
            }
            if Instant::now() >= drain_until {
                tracing::warn!(in_flight, "stopping with records in flight");
                break;
            }
            self.producers.serve_or_sleep(&self.shared, DELIVERY_WAIT);
        }
        self.commit_all(CommitMode::Sync);
        let metrics = &self.shared.metrics;
        tracing::info!(
            records = metrics.records_produced.load(Ordering::Relaxed),
            window_full_ms = metrics.window_full_ms.load(Ordering::Relaxed),
            "drained and committed"
        );
        self.committed()
    }
}

/// Hands one consumed record to the producer and tracks it.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward(
    task: &TaskData,
    limits: &Limits,
    clusters: &Clusters<'_, RebalanceContext, DeliveryContext>,
    producers: &Producers,
    shared: &Shared,
    routes: &mut Routes,
    provenance: Option<&Provenance>,
    message: &BorrowedMessage<'_>,
) -> Result<(), EngineError> {
    let partition = message.partition();
    let offset = message.offset();
    let generation = shared.generation.load(Ordering::Acquire);
    if routes.generation != generation {
        // Revoked partitions' slots were freed and may serve others now, and a
        // revoked topic's handle may be freed and its address reused: a poll that
        // ran the revoke may return a record of another consumer in the same call.
        for route in &mut routes.list {
            route.slots.clear();
        }
        routes.forget_handles();
        routes.generation = generation;
    }
    // Only the address is used, never what it points to.
    let handle = message.topic_ptr() as usize;
    let route_index = match routes.by_handle(handle) {
        Some(i) => i,
        None => {
            let topic = message.topic();
            let i = match routes.find(topic) {
                Some(i) => i,
                None => {
                    let route =
                        target_topics::prepare(task, clusters, topic, limits.metadata_timeout)?;
                    routes.add(TopicRoute {
                        source: topic.to_owned(),
                        route,
                        slots: Vec::new(),
                    })
                }
            };
            routes.remember_handle(handle, i);
            i
        }
    };
    if partition >= routes.list[route_index].route.source_partitions {
        // The source topic grew: the target grows with it before anything
        // is routed to a partition it may not have.
        let TopicRoute { source, route, .. } = &mut routes.list[route_index];
        let timeout = limits.metadata_timeout;
        target_topics::cover_partition(task, clusters, route, source, partition, timeout)?;
    }
    let entry = &mut routes.list[route_index];
    let topic = entry.source.as_str();
    let tracking_error = |reason: String| EngineError::Tracking {
        topic: topic.to_owned(),
        partition,
        offset,
        reason,
    };
    let p = usize::try_from(partition).map_err(|_| tracking_error("negative partition".into()))?;
    if entry.slots.len() <= p {
        entry.slots.resize(p + 1, None);
    }
    let slot_index = match entry.slots[p] {
        Some(i) => i,
        None => {
            let i = shared
                .lock()
                .slot_for(topic, &entry.route.target, partition);
            entry.slots[p] = Some(i);
            i
        }
    };
    if slot_index >= MAX_SLOTS || !(0..=OFFSET_MASK as i64).contains(&offset) {
        return Err(tracking_error("offset or partition count too large".into()));
    }
    let opaque = (slot_index << OFFSET_BITS) | offset as usize;

    let key = message.key();
    let payload = message.payload();
    let bytes = key.map_or(0, <[u8]>::len) + payload.map_or(0, <[u8]>::len);
    let verdict = provenance.map(|p| (p, p.judge(message.headers())));
    if let Some((_, Verdict::Skip)) = verdict {
        skip(shared, slot_index, topic, partition, offset, bytes);
        return Ok(());
    }
    let producer = producers.for_partition(route_index, partition);
    let mut record: BaseRecord<'_, [u8], [u8], usize> =
        BaseRecord::with_opaque_to(&entry.route.target, opaque);
    if entry.route.preserve {
        record = record.partition(partition);
    }
    if let Some(key) = key {
        record = record.key(key);
    }
    if let Some(payload) = payload {
        record = record.payload(payload);
    }
    match message.timestamp() {
        Timestamp::CreateTime(ms) | Timestamp::LogAppendTime(ms) => {
            record = record.timestamp(ms);
        }
        Timestamp::NotAvailable => {}
    }
    let headers = match verdict {
        Some((p, verdict)) => p.headers(message.headers(), verdict),
        None => message
            .headers()
            .filter(|h| h.count() > 0)
            .map(|h| h.detach()),
    };
    if let Some(headers) = headers {
        record = record.headers(headers);
    }
    loop {
        match producer.send(record) {
            Ok(()) => break,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                // The in-flight bound normally stops consumption first; if the
                // producer's own queue fills anyway, wait for deliveries.
                record = back;
                producers.serve_or_sleep(shared, DELIVERY_WAIT);
                if let Some(failure) = shared.lock().failure.take() {
                    return Err(failure);
                }
            }
            Err((source, _)) => {
                return Err(EngineError::Produce {
                    topic: topic.to_owned(),
                    partition,
                    offset,
                    target_topic: entry.route.target.clone(),
                    source: Box::new(source),
                })
            }
        }
    }
    let mut state = shared.lock();
    state.in_flight_records += 1;
    state.in_flight_bytes += bytes;
    if let Some(slot) = state.slots.get_mut(slot_index) {
        if let Err(e) = slot.tracker.track(offset) {
            // A rewind (an offset reset, a truncated log): records still in
            // flight stay tracked, so nothing is committed past them.
            tracing::info!(error = %e, topic, partition, "source partition rewound");
        }
    }
    drop(state);
    Metrics::add(&shared.metrics.records_consumed, 1);
    Metrics::add(&shared.metrics.bytes_consumed, bytes as u64);
    Ok(())
}

/// Passes over a record that came from the target cluster: it counts as
/// delivered at once, so that the partition's commits move past it.
fn skip(
    shared: &Shared,
    slot_index: usize,
    topic: &str,
    partition: i32,
    offset: i64,
    bytes: usize,
) {
    let mut state = shared.lock();
    if let Some(slot) = state.slots.get_mut(slot_index) {
        if let Err(e) = slot.tracker.track(offset) {
            tracing::info!(error = %e, topic, partition, "source partition rewound");
        }
        slot.tracker.delivered(offset);
    }
    drop(state);
    Metrics::add(&shared.metrics.records_consumed, 1);
    Metrics::add(&shared.metrics.bytes_consumed, bytes as u64);
    Metrics::add(&shared.metrics.records_skipped_loop, 1);
}
