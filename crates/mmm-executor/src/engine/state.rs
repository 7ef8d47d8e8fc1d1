//! The bookkeeping shared by the loop and librdkafka's callbacks.

use super::EngineError;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::{Offset, TopicPartitionList};

use super::syncs::SyncPublisher;
use crate::metrics::Metrics;
use crate::offset_sync::segments::PartitionMap;
use crate::offset_sync::KnownMaps;
use crate::offset_tracker::OffsetTracker;

/// One source partition's bookkeeping.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) topic: String,
    pub(super) target_topic: String,
    pub(super) partition: i32,
    pub(super) tracker: OffsetTracker,
    pub(super) assigned: bool,
    pub(super) last_committed: Option<i64>,
    /// Revoked with records still in flight: freed once their reports are in.
    pub(super) retiring: bool,
    /// Where the partition's records landed in the target.
    pub(super) map: PartitionMap,
}

#[derive(Debug, Default)]
pub(super) struct State {
    /// Indexed by the slot number the delivery opaque carries.
    pub(super) slots: Vec<Slot>,
    /// The slot of each (topic, partition) that has one.
    index: HashMap<String, HashMap<i32, usize>>,
    /// Slots free for reuse.
    free: Vec<usize>,
    pub(super) in_flight_records: usize,
    pub(super) in_flight_bytes: usize,
    pub(super) failure: Option<EngineError>,
    /// Bumped on every rebalance, so the loop re-applies a pause.
    pub(super) rebalances: u64,
    /// Assigned partitions the latest statistics show with nothing left to read.
    pub(super) caught_up: std::collections::HashSet<(String, i32)>,
    /// Whether deliveries feed the offset mapping (syncs on, partitions preserved).
    pub(super) map_offsets: bool,
    /// The mapping of partitions without a slot (read back from the sync
    /// topic, or revoked), with their target topic.
    pub(super) known: KnownMaps,
    /// The source partitions assigned to this member (for the group sync:
    /// also those that have not yielded a record yet).
    pub(super) assigned: std::collections::BTreeSet<(String, i32)>,
    /// The source partitions' log start offsets, from the latest statistics.
    pub(super) low_watermarks: HashMap<(String, i32), i64>,
    /// The latest statistics' figures of each source consumer (the member first).
    pub(super) figures: Vec<super::callbacks::PartitionFigures>,
}

impl State {
    pub(super) fn find_slot(&self, topic: &str, partition: i32) -> Option<usize> {
        self.index.get(topic)?.get(&partition).copied()
    }

    /// The slot of (`topic`, `partition`), taken from the free ones or added.
    pub(super) fn slot_for(&mut self, topic: &str, target_topic: &str, partition: i32) -> usize {
        if let Some(i) = self.find_slot(topic, partition) {
            self.slots[i].assigned = true;
            return i;
        }
        let map = self
            .known
            .remove(&(topic.to_owned(), partition))
            .map(|(_, map)| map)
            .unwrap_or_default();
        let slot = Slot {
            topic: topic.to_owned(),
            target_topic: target_topic.to_owned(),
            partition,
            tracker: OffsetTracker::new(),
            assigned: true,
            last_committed: None,
            retiring: false,
            map,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        self.index
            .entry(topic.to_owned())
            .or_default()
            .insert(partition, i);
        i
    }

    /// Lets go of a revoked partition's slot: at once when nothing of it is in
    /// flight, else once the last delivery report is in (a report must never
    /// reach a slot that serves another partition by then).
    pub(super) fn release(&mut self, i: usize) {
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        if let Some(parts) = self.index.get_mut(&slot.topic) {
            if parts.get(&slot.partition) == Some(&i) {
                parts.remove(&slot.partition);
            }
            if parts.is_empty() {
                self.index.remove(&slot.topic);
            }
        }
        slot.assigned = false;
        slot.last_committed = None;
        if slot.tracker.in_flight() == 0 {
            slot.retiring = false;
            self.free_slot(i);
        } else {
            slot.retiring = true;
        }
    }

    /// Puts slot `i` up for reuse, keeping its mapping for a later owner.
    fn free_slot(&mut self, i: usize) {
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        slot.tracker.reset();
        let mut map = std::mem::take(&mut slot.map);
        if !map.is_empty() {
            map.close();
            self.known.insert(
                (slot.topic.clone(), slot.partition),
                (slot.target_topic.clone(), map),
            );
        }
        self.free.push(i);
    }

    /// Adds segments read back from the sync topic to the partitions' mappings.
    pub(super) fn merge_known(&mut self, maps: KnownMaps) {
        for ((topic, partition), (target_topic, map)) in maps {
            let into = match self.find_slot(&topic, partition) {
                Some(i) => &mut self.slots[i].map,
                None => {
                    &mut self
                        .known
                        .entry((topic, partition))
                        .or_insert_with(|| (target_topic, PartitionMap::new()))
                        .1
                }
            };
            for segment in map.segments() {
                into.load(segment);
            }
        }
    }

    /// The target offset where a group that committed `offset` of source
    /// partition (`topic`, `partition`) resumes ([`PartitionMap::translate`]).
    pub(super) fn translate(&self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        match self.find_slot(topic, partition) {
            Some(i) => self.slots.get(i)?.map.translate(offset),
            None => self
                .known
                .get(&(topic.to_owned(), partition))?
                .1
                .translate(offset),
        }
    }

    /// Frees a retiring slot whose last delivery report came in.
    pub(super) fn settle_retiring(&mut self, i: usize) {
        if let Some(slot) = self.slots.get_mut(i) {
            if slot.retiring && slot.tracker.in_flight() == 0 {
                slot.retiring = false;
                self.free_slot(i);
            }
        }
    }

    /// Offsets that changed since the last commit, for assigned partitions
    /// (all of them, or those `only` names).
    pub(super) fn commit_list(
        &self,
        only: Option<&[usize]>,
    ) -> (TopicPartitionList, Vec<(usize, i64)>) {
        let mut tpl = TopicPartitionList::new();
        let mut marks = Vec::new();
        let mut add = |i: usize, slot: &Slot| {
            if let Some(offset) = slot.tracker.committable() {
                if slot.last_committed != Some(offset)
                    && tpl
                        .add_partition_offset(&slot.topic, slot.partition, Offset::Offset(offset))
                        .is_ok()
                {
                    marks.push((i, offset));
                }
            }
        };
        match only {
            Some(indices) => {
                for &i in indices {
                    if let Some(slot) = self.slots.get(i) {
                        add(i, slot);
                    }
                }
            }
            None => {
                for (i, slot) in self.slots.iter().enumerate() {
                    if slot.assigned {
                        add(i, slot);
                    }
                }
            }
        }
        (tpl, marks)
    }

    pub(super) fn mark_committed(&mut self, marks: &[(usize, i64)]) {
        for &(i, offset) in marks {
            if let Some(slot) = self.slots.get_mut(i) {
                slot.last_committed = Some(offset);
            }
        }
    }
}

pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    pub(super) metrics: Arc<Metrics>,
    /// Bumped when partitions are revoked, so that the loop drops the slot
    /// numbers it cached (a freed slot may serve another partition next).
    pub(super) generation: AtomicU64,
    /// Publishes the offset mapping before each commit (`None`: no sync topic).
    pub(super) syncs: Option<SyncPublisher>,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock ends the engine anyway; the state
        // is still the best record of what was delivered.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Commits `tpl` and records the outcome.
    pub(super) fn commit<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
        marks: &[(usize, i64)],
        mode: CommitMode,
    ) -> KafkaResult<()> {
        if let Some(syncs) = &self.syncs {
            // First, so that a committed offset is always covered by a sync.
            syncs.publish(&self.state);
        }
        if tpl.count() == 0 {
            return Ok(());
        }
        Metrics::add(&self.metrics.commits, 1);
        match consumer.commit(tpl, mode) {
            Ok(()) => {
                self.lock().mark_committed(marks);
                if matches!(mode, CommitMode::Sync) {
                    self.metrics.committed_now();
                }
                tracing::debug!(partitions = tpl.count(), ?mode, "committed offsets");
                Ok(())
            }
            Err(err) => {
                Metrics::add(&self.metrics.commit_errors, 1);
                tracing::warn!(error = %err, "commit failed");
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_found_by_name_and_reused_after_release() {
        let mut state = State::default();
        let a = state.slot_for("t", "t", 0);
        let b = state.slot_for("t", "t", 1);
        assert_ne!(a, b);
        assert_eq!(state.slot_for("t", "t", 0), a);
        assert_eq!(state.find_slot("t", 1), Some(b));
        assert_eq!(state.find_slot("u", 0), None);

        state.release(a);
        assert_eq!(state.find_slot("t", 0), None);
        assert!(!state.slots[a].assigned);
        // A regex subscription over churning topics reuses freed slots.
        let c = state.slot_for("other", "other", 5);
        assert_eq!(c, a);
        assert_eq!(state.slots.len(), 2);
        assert_eq!(state.slots[c].topic, "other");
    }

    #[test]
    fn read_back_segments_join_the_slot_or_wait_for_one_and_revoked_maps_are_kept() {
        use crate::offset_sync::segments::Segment;
        let mut state = State::default();
        let a = state.slot_for("t", "t", 0);
        state.slots[a].map.record(100, 50);
        let old = |source_start, target_start, count| {
            let mut map = PartitionMap::new();
            map.load(Segment {
                source_start,
                target_start,
                count,
            });
            map
        };
        let mut read = KnownMaps::new();
        read.insert(("t".into(), 0), ("t".into(), old(0, 0, 100)));
        read.insert(("t".into(), 1), ("t".into(), old(0, 0, 10)));
        state.merge_known(read);
        assert_eq!(
            state.translate("t", 0, 40),
            Some(40),
            "the earlier run's copy"
        );
        assert_eq!(state.translate("t", 0, 100), Some(50), "this run's copy");
        assert!(
            state.slots[a].map.changed().len() == 1,
            "only this run's segment to publish"
        );
        assert_eq!(state.translate("t", 1, 5), Some(5), "kept for a later slot");
        let b = state.slot_for("t", "t", 1);
        assert_eq!(state.slots[b].map.translate(5), Some(5));
        state.release(a);
        assert_eq!(
            state.translate("t", 0, 100),
            Some(50),
            "kept after the revoke"
        );
    }

    #[test]
    fn a_slot_with_records_in_flight_is_freed_after_its_last_report() {
        let mut state = State::default();
        let a = state.slot_for("t", "t", 0);
        state.slots[a].tracker.track(7).expect("ascending");
        state.release(a);
        assert!(state.slots[a].retiring);
        // Not reused while a report may still come.
        let b = state.slot_for("t", "t", 1);
        assert_ne!(a, b);
        assert!(state.slots[a].tracker.delivered(7));
        state.settle_retiring(a);
        assert!(!state.slots[a].retiring);
        assert_eq!(state.slot_for("t", "t", 2), a);
    }
}
