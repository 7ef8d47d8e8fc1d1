//! The bookkeeping shared by the loop and librdkafka's callbacks.

use super::EngineError;
use std::sync::{Arc, Mutex, MutexGuard};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::{Offset, TopicPartitionList};

use crate::metrics::Metrics;
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
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) slots: Vec<Slot>,
    pub(super) in_flight_records: usize,
    pub(super) in_flight_bytes: usize,
    pub(super) failure: Option<EngineError>,
    /// Bumped on every rebalance, so the loop re-applies a pause.
    pub(super) rebalances: u64,
}

impl State {
    pub(super) fn find_slot(&self, topic: &str, partition: i32) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.partition == partition && s.topic == topic)
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
