//! Publishing the offset mapping to the compacted sync topic on the target,
//! right before each commit of source offsets, so that every committed offset
//! is covered by a published segment (docs/disaster-recovery.md).

use super::state::State;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mmm_core::offset_sync::{OffsetSync, SyncKey};
use mmm_core::task_data::TaskData;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

use crate::kafka_config::producer_config;
use crate::metrics::Metrics;
use crate::offset_sync::segments::{PartitionMap, Segment};

/// How long a commit waits for its syncs: a target that does not answer
/// must not hold up the commit (above all the last one, within the kill
/// grace period); the syncs then go out with the next commit.
const WRITE_TIMEOUT: Duration = Duration::from_secs(3);

/// After a failed write, syncs wait this long before the next attempt,
/// doubling per failure up to [`MAX_RETRY_PAUSE`]: a target that refuses the
/// sync topic (no CreateTopics or Write permission, say) must not cost the
/// replication loop a [`WRITE_TIMEOUT`] at every commit.
const FIRST_RETRY_PAUSE: Duration = Duration::from_secs(5);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(300);

/// When the next write may be tried after `failures` failures in a row.
fn retry_pause(failures: u32) -> Duration {
    FIRST_RETRY_PAUSE
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX_RETRY_PAUSE)
}

/// Counts the sync producer's failed deliveries.
#[derive(Default)]
pub(super) struct SyncContext {
    failures: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl ClientContext for SyncContext {}

impl ProducerContext for SyncContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((err, _)) = result {
            self.failures.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut last) = self.last_error.lock() {
                *last = Some(err.to_string());
            }
        }
    }
}

/// One record to write: a segment, or a tombstone for one.
struct Pending {
    slot: Option<usize>,
    handle: usize,
    key: SyncKey,
    value: Option<OffsetSync>,
    segment: Segment,
}

/// Writes the changed segments of every partition to the sync topic.
pub(super) struct SyncPublisher {
    topic: String,
    producer: BaseProducer<SyncContext>,
    admin: AdminClient<DefaultClientContext>,
    replication_factor: Option<u16>,
    timeout: Duration,
    metrics: Arc<Metrics>,
    topic_ready: AtomicBool,
    /// Failures in a row, and no write before this instant.
    backoff: Mutex<(u32, Option<Instant>)>,
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl SyncPublisher {
    /// A publisher for `task`'s sync topic; `None` when it has none.
    pub(super) fn new(
        task: &TaskData,
        metrics: Arc<Metrics>,
        timeout: Duration,
    ) -> Result<Option<SyncPublisher>, KafkaError> {
        if task.offset_sync_topic.is_empty() {
            return Ok(None);
        }
        let config = producer_config(&task.producer);
        let producer = config.create_with_context(SyncContext::default())?;
        let admin = config.create()?;
        metrics.update_offset_syncs(|r| r.topic = task.offset_sync_topic.clone());
        Ok(Some(SyncPublisher {
            topic: task.offset_sync_topic.clone(),
            producer,
            admin,
            replication_factor: task.replication_factor,
            timeout,
            metrics,
            topic_ready: AtomicBool::new(false),
            backoff: Mutex::new((0, None)),
        }))
    }

    /// The sync topic's name.
    pub(super) fn topic(&self) -> &str {
        &self.topic
    }

    /// Creates the sync topic unless it exists: compacted, one partition
    /// (syncs are few and read back whole), the task's replication factor.
    pub(super) fn ensure_topic(&self) -> Result<(), String> {
        if self.topic_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let replication = self.replication_factor.map_or(-1, i32::from);
        let new_topic = NewTopic::new(&self.topic, 1, TopicReplication::Fixed(replication))
            .set("cleanup.policy", "compact");
        let bound = self.timeout.min(WRITE_TIMEOUT);
        let options = AdminOptions::new()
            .operation_timeout(Some(bound))
            .request_timeout(Some(bound));
        let results = futures::executor::block_on(self.admin.create_topics([&new_topic], &options))
            .map_err(|e| format!("creating offset sync topic {}: {e}", self.topic))?;
        match results.into_iter().next() {
            Some(Ok(_)) | Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => {
                self.topic_ready.store(true, Ordering::Release);
                Ok(())
            }
            Some(Err((_, code))) => Err(format!(
                "creating offset sync topic {} (compacted, replication factor {}): {code}",
                self.topic,
                self.replication_factor
                    .map_or("the broker's default".to_owned(), |rf| rf.to_string())
            )),
            None => Err(format!(
                "creating offset sync topic {}: the broker returned no result",
                self.topic
            )),
        }
    }

    /// Publishes every segment that grew since it was last published and
    /// tombstones those below their partition's log start, waiting for the
    /// target's acknowledgements (acks=all); then updates the report. A
    /// failure is reported, never fatal: the mirror goes on, and a failover
    /// meanwhile would only translate conservatively.
    pub(super) fn publish(&self, state: &Mutex<State>) {
        let paused = {
            let backoff = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
            backoff.1.is_some_and(|until| Instant::now() < until)
        };
        // While paused nothing is collected: segments stay unpublished (and
        // unpruned) until a later attempt.
        let pending = if paused {
            Vec::new()
        } else {
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            collect(&mut state)
        };
        if !pending.is_empty() {
            match self.write(&pending) {
                Ok(()) => {
                    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
                    for p in pending.iter().filter(|p| p.value.is_some()) {
                        let map = match p.slot {
                            Some(i) => state.slots.get_mut(i).map(|s| &mut s.map),
                            None => state
                                .known
                                .get_mut(&(p.key.topic.clone(), p.key.partition))
                                .map(|(_, m)| m),
                        };
                        if let Some(map) = map {
                            map.mark_published(p.handle, p.segment);
                        }
                    }
                    *self.backoff.lock().unwrap_or_else(|e| e.into_inner()) = (0, None);
                    let written = pending.len() as u64;
                    self.metrics.update_offset_syncs(|r| {
                        r.syncs_written += written;
                        r.last_sync_unix_ms = now_unix_ms();
                        r.error = None;
                    });
                }
                Err(error) => {
                    let pause = {
                        let mut backoff = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
                        backoff.0 = backoff.0.saturating_add(1);
                        let pause = retry_pause(backoff.0);
                        backoff.1 = Some(Instant::now() + pause);
                        pause
                    };
                    tracing::warn!(topic = %self.topic, %error, retry_in = ?pause, "offset syncs not written");
                    self.metrics.update_offset_syncs(|r| r.error = Some(error));
                }
            }
        }
        let lag = {
            let state = state.lock().unwrap_or_else(|e| e.into_inner());
            translation_lag(&state)
        };
        self.metrics
            .update_offset_syncs(|r| r.translation_lag = lag);
    }

    fn write(&self, pending: &[Pending]) -> Result<(), String> {
        self.ensure_topic()?;
        let failures_before = self.producer.context().failures.load(Ordering::Relaxed);
        let deadline = Instant::now() + self.timeout.min(WRITE_TIMEOUT);
        for p in pending {
            let key = p.key.encode();
            let value = p.value.as_ref().map(OffsetSync::encode);
            let mut record: BaseRecord<'_, str, [u8], ()> =
                BaseRecord::to(&self.topic).key(key.as_str());
            if let Some(value) = &value {
                record = record.payload(value.as_slice());
            }
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                        if Instant::now() < deadline =>
                    {
                        record = back;
                        self.producer.poll(Duration::from_millis(10));
                    }
                    Err((e, _)) => return Err(format!("sending to {}: {e}", self.topic)),
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        self.producer
            .flush(left)
            .map_err(|e| format!("waiting for {}: {e}", self.topic))?;
        let context = self.producer.context();
        if context.failures.load(Ordering::Relaxed) != failures_before {
            let last = context
                .last_error
                .lock()
                .ok()
                .and_then(|g| g.clone())
                .unwrap_or_default();
            return Err(format!("writing to {}: {last}", self.topic));
        }
        Ok(())
    }
}

/// Creates the sync topic if needed and reads back what earlier runs
/// published, so that translation covers their records too. On a thread of
/// its own: a target that does not answer must not hold up the replication
/// loop (or a kill).
pub(super) fn load_in_background(
    task: &TaskData,
    shared: &Arc<super::state::Shared>,
    timeout: Duration,
) {
    if shared.syncs.is_none() {
        return;
    }
    let task = task.clone();
    let shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("offset-sync-load".into())
        .spawn(move || {
            let Some(syncs) = &shared.syncs else {
                return;
            };
            if let Err(error) = syncs.ensure_topic() {
                // Tried again before each commit; an existing topic may still be readable.
                tracing::warn!(%error, "offset sync topic not ready");
                shared
                    .metrics
                    .update_offset_syncs(|r| r.error = Some(error));
            }
            let selected = crate::offset_sync::topic_filter(&task);
            let config = crate::offset_sync::target_client_config(&task);
            match crate::offset_sync::read_back(
                &config,
                syncs.topic(),
                timeout,
                |source, target| selected(source) && task.target_topic(source) == target,
            ) {
                Ok(known) => shared.lock().merge_known(known),
                Err(error) => {
                    tracing::warn!(%error, "earlier offset syncs not read back");
                    shared
                        .metrics
                        .update_offset_syncs(|r| r.error = Some(error.to_string()));
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "earlier offset syncs not read back");
    }
}

fn sync_record(
    topic: &str,
    partition: i32,
    target_topic: &str,
    segment: Segment,
) -> (SyncKey, OffsetSync) {
    (
        SyncKey {
            topic: topic.to_owned(),
            partition,
            source_start: segment.source_start,
            target_start: segment.target_start,
        },
        OffsetSync {
            source_start: segment.source_start,
            target_start: segment.target_start,
            count: segment.count,
            target_topic: target_topic.to_owned(),
            // Segments are only recorded with partitions preserved.
            target_partition: partition,
        },
    )
}

/// The records that bring the sync topic up to date, pruning what lies
/// below each partition's log start.
fn collect(state: &mut State) -> Vec<Pending> {
    let mut pending = Vec::new();
    let State {
        slots,
        known,
        low_watermarks,
        ..
    } = state;
    let mut visit = |slot: Option<usize>,
                     topic: &str,
                     partition: i32,
                     target_topic: &str,
                     map: &mut PartitionMap| {
        if let Some(&low) = low_watermarks.get(&(topic.to_owned(), partition)) {
            for segment in map.prune_below(low) {
                let (key, _) = sync_record(topic, partition, target_topic, segment);
                pending.push(Pending {
                    slot,
                    handle: 0,
                    key,
                    value: None,
                    segment,
                });
            }
        }
        for (handle, segment) in map.changed() {
            let (key, value) = sync_record(topic, partition, target_topic, segment);
            pending.push(Pending {
                slot,
                handle,
                key,
                value: Some(value),
                segment,
            });
        }
    };
    for (i, slot) in slots.iter_mut().enumerate() {
        if slot.map.is_empty() {
            continue;
        }
        visit(
            Some(i),
            &slot.topic,
            slot.partition,
            &slot.target_topic,
            &mut slot.map,
        );
    }
    for ((topic, partition), (target_topic, map)) in known.iter_mut() {
        visit(None, topic, *partition, target_topic, map);
    }
    pending
}

/// Per assigned `topic-partition`: the offset about to be committed minus
/// one past the highest source offset the published segments cover.
fn translation_lag(state: &State) -> BTreeMap<String, i64> {
    state
        .slots
        .iter()
        .filter(|s| s.assigned)
        .filter_map(|s| {
            let committed = s.tracker.committable().or(s.last_committed)?;
            let covered = s
                .map
                .published_end()
                .or_else(|| s.map.segments().map(|g| g.source_start).min())?;
            Some((
                format!("{}-{}", s.topic, s.partition),
                (committed - covered).max(0),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_segments_are_written_and_those_below_the_log_start_tombstoned() {
        let mut state = State::default();
        let i = state.slot_for("t", "t.copy", 2);
        for o in 0..10 {
            state.slots[i].map.record(o, o);
        }
        let first = collect(&mut state);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].key.encode(), "t/2/0/0");
        let value = first[0].value.clone().expect("a segment");
        assert_eq!(
            (
                value.count,
                value.target_topic.as_str(),
                value.target_partition
            ),
            (10, "t.copy", 2)
        );
        state.slots[i]
            .map
            .mark_published(first[0].handle, first[0].segment);
        assert!(collect(&mut state).is_empty(), "nothing changed since");

        // A restart from 20 (the log start moved past the first segment).
        for o in 20..25 {
            state.slots[i].map.record(o, o - 10);
        }
        state.low_watermarks.insert(("t".into(), 2), 20);
        let second = collect(&mut state);
        let keys: Vec<_> = second
            .iter()
            .map(|p| (p.key.encode(), p.value.is_some()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("t/2/0/0".to_string(), false),
                ("t/2/20/10".to_string(), true)
            ]
        );
    }

    #[test]
    fn failed_writes_pause_doubling_up_to_five_minutes() {
        assert_eq!(retry_pause(1), Duration::from_secs(5));
        assert_eq!(retry_pause(2), Duration::from_secs(10));
        assert_eq!(retry_pause(4), Duration::from_secs(40));
        assert_eq!(retry_pause(7), MAX_RETRY_PAUSE);
        assert_eq!(retry_pause(u32::MAX), MAX_RETRY_PAUSE);
    }

    #[test]
    fn the_translation_lag_counts_from_the_published_end() {
        let mut state = State::default();
        let i = state.slot_for("t", "t", 0);
        for o in 0..10 {
            state.slots[i].tracker.track(o).expect("ascending");
            state.slots[i].tracker.delivered(o);
            state.slots[i].map.record(o, o);
        }
        state.slots[i].map.mark_published(
            0,
            Segment {
                source_start: 0,
                target_start: 0,
                count: 6,
            },
        );
        assert_eq!(translation_lag(&state), [("t-0".to_string(), 4)].into());
    }
}
