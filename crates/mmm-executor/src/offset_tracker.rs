//! Which source offset of one partition may be committed.
//!
//! Records are produced in offset order but their deliveries can come back in
//! any order (retries, several target partitions with "hash"). The tracker
//! keeps the offsets still in flight, in order; everything below the lowest of
//! them has reached the target, so that offset is what the group may commit.

use std::collections::VecDeque;

/// The delivery state of the records of one source partition.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    /// Offsets sent and not yet popped, ascending (an offset appears twice
    /// after a rewind while its first copy is still in flight); `true` once
    /// its delivery is settled (acknowledged or failed).
    in_flight: VecDeque<(i64, bool)>,
    /// Number of entries in `in_flight` not settled yet.
    pending: usize,
    /// The first offset whose delivery failed for good: nothing at or past it is committable.
    failed_at: Option<i64>,
    /// The offset last handed to `track`: the consumer's position is one past it.
    last_tracked: Option<i64>,
}

/// Why the tracker refused an offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackError {
    /// The consumer handed back an offset at or below one already tracked.
    #[error("offset {offset} is not above the last tracked offset {last}")]
    NotAscending {
        /// The offset refused.
        offset: i64,
        /// The last offset tracked.
        last: i64,
    },
}

impl OffsetTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes that the record at `offset` was handed to the producer. An
    /// offset at or below the last one is a rewind (an offset reset or a
    /// truncated log): it is tracked too, the records still in flight are
    /// kept, and the rewind is reported so that it can be logged.
    pub fn track(&mut self, offset: i64) -> Result<(), TrackError> {
        let rewind = self.last_tracked.filter(|&last| offset <= last);
        self.last_tracked = Some(offset);
        self.pending += 1;
        if self.in_flight.back().is_none_or(|&(o, _)| o <= offset) {
            self.in_flight.push_back((offset, false));
        } else {
            // Only after a rewind, while records of before it are in flight.
            let at = self.in_flight.partition_point(|&(o, _)| o <= offset);
            self.in_flight.insert(at, (offset, false));
        }
        match rewind {
            None => Ok(()),
            Some(last) => Err(TrackError::NotAscending { offset, last }),
        }
    }

    /// The index of an unsettled entry for `offset`.
    fn position(&self, offset: i64) -> Option<usize> {
        let start = self.in_flight.partition_point(|&(o, _)| o < offset);
        (start..self.in_flight.len())
            .take_while(|&i| self.in_flight[i].0 == offset)
            .find(|&i| !self.in_flight[i].1)
    }

    fn settle(&mut self, i: usize) {
        self.in_flight[i].1 = true;
        self.pending -= 1;
        while let Some(&(front, true)) = self.in_flight.front() {
            if self.failed_at.is_some_and(|f| front >= f) {
                break;
            }
            self.in_flight.pop_front();
        }
    }

    /// Notes that the target acknowledged the record at `offset`. Returns
    /// false for an offset not in flight (a late report after a reset).
    pub fn delivered(&mut self, offset: i64) -> bool {
        let Some(i) = self.position(offset) else {
            return false;
        };
        self.settle(i);
        true
    }

    /// Notes that the record at `offset` will never reach the target: it no
    /// longer counts as in flight, and nothing at or past it is committable.
    /// Returns false for an offset not in flight.
    pub fn failed(&mut self, offset: i64) -> bool {
        let Some(i) = self.position(offset) else {
            return false;
        };
        self.failed_at = Some(self.failed_at.map_or(offset, |f| f.min(offset)));
        self.settle(i);
        true
    }

    /// The offset the group may commit: the lowest offset not delivered, or
    /// one past the last tracked when everything was; never past the
    /// consumer's position (after a rewind, records above it may be new).
    /// `None` before the first record.
    pub fn committable(&self) -> Option<i64> {
        let position = self.last_tracked?.checked_add(1)?;
        let bound = match self.in_flight.front() {
            Some(&(lowest, _)) => lowest.min(position),
            None => position,
        };
        Some(self.failed_at.map_or(bound, |f| bound.min(f)))
    }

    /// Records sent and not yet settled.
    pub fn in_flight(&self) -> usize {
        self.pending
    }

    /// Whether a delivery failed for good.
    pub fn has_failed(&self) -> bool {
        self.failed_at.is_some()
    }

    /// The offset last handed to the producer.
    pub fn last_tracked(&self) -> Option<i64> {
        self.last_tracked
    }

    /// Forgets everything: the partition was revoked (or assigned afresh) and
    /// the consumer restarts from the committed offset.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nothing_committable_before_a_delivery() {
        let mut t = OffsetTracker::new();
        assert_eq!(t.committable(), None);
        t.track(5).expect("ascending");
        assert_eq!(t.committable(), Some(5));
        assert_eq!(t.in_flight(), 1);
    }

    #[test]
    fn committable_is_the_lowest_in_flight_offset() {
        let mut t = OffsetTracker::new();
        for o in [10, 11, 12, 15] {
            t.track(o).expect("ascending");
        }
        assert!(t.delivered(11));
        assert_eq!(t.committable(), Some(10));
        assert!(t.delivered(10));
        assert_eq!(t.committable(), Some(12));
        assert!(t.delivered(15));
        assert_eq!(t.committable(), Some(12));
        assert!(t.delivered(12));
        assert_eq!(t.committable(), Some(16));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn unknown_and_repeated_deliveries_are_ignored() {
        let mut t = OffsetTracker::new();
        t.track(1).expect("ascending");
        assert!(!t.delivered(7));
        assert!(t.delivered(1));
        assert!(!t.delivered(1));
        assert_eq!(t.committable(), Some(2));
    }

    #[test]
    fn a_rewind_is_reported_and_keeps_the_records_in_flight() {
        let mut t = OffsetTracker::new();
        for o in 100..110 {
            t.track(o).expect("ascending");
        }
        assert!(t.delivered(100));
        // The position is reset to 50 (or the log was truncated there).
        assert_eq!(
            t.track(50),
            Err(TrackError::NotAscending {
                offset: 50,
                last: 109
            })
        );
        assert_eq!(t.in_flight(), 10);
        assert_eq!(t.committable(), Some(50));
        assert!(t.delivered(50));
        // Records 101..110 of before the rewind are still in flight, and the
        // consumer stands at 51: nothing past either is committable.
        assert_eq!(t.committable(), Some(51));
        for o in 51..=105 {
            let _ = t.track(o);
        }
        for o in 51..=105 {
            assert!(t.delivered(o), "new copy of {o}");
        }
        assert_eq!(
            t.committable(),
            Some(101),
            "old copies 101.. still in flight"
        );
        for o in 101..110 {
            assert!(t.delivered(o), "old copy of {o}");
        }
        assert_eq!(t.committable(), Some(106), "the consumer stands at 106");
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn a_failed_delivery_is_no_longer_in_flight() {
        let mut t = OffsetTracker::new();
        t.track(1).expect("ascending");
        t.track(2).expect("ascending");
        assert!(t.failed(1));
        assert_eq!(t.in_flight(), 1);
        assert!(t.delivered(2));
        assert_eq!(t.in_flight(), 0);
        assert_eq!(t.committable(), Some(1));
    }

    #[test]
    fn a_failed_delivery_pins_the_committable_offset() {
        let mut t = OffsetTracker::new();
        for o in 0..5 {
            t.track(o).expect("ascending");
        }
        assert!(t.delivered(0));
        assert!(t.failed(1));
        for o in 2..5 {
            assert!(t.delivered(o));
        }
        assert_eq!(t.committable(), Some(1));
        assert!(t.has_failed());
    }

    #[test]
    fn reset_forgets_everything() {
        let mut t = OffsetTracker::new();
        t.track(3).expect("ascending");
        t.reset();
        assert_eq!(t.committable(), None);
        t.track(0).expect("ascending after reset");
    }

    proptest! {
        /// Whatever the delivery order, the committable offset never passes a
        /// record that has not been delivered, and reaches the end once all are.
        #[test]
        fn never_commits_past_an_undelivered_record(
            gaps in proptest::collection::vec(1i64..4, 1..60),
            order in proptest::collection::vec(any::<prop::sample::Index>(), 1..60),
        ) {
            let mut offsets = Vec::new();
            let mut o = 100;
            for g in gaps { o += g; offsets.push(o); }
            let mut t = OffsetTracker::new();
            for &o in &offsets { t.track(o).expect("ascending"); }
            let mut remaining = offsets.clone();
            for idx in order {
                if remaining.is_empty() { break; }
                let o = remaining.remove(idx.index(remaining.len()));
                prop_assert!(t.delivered(o));
                let lowest_undelivered = remaining.iter().min().copied();
                let c = t.committable().expect("something delivered");
                if let Some(low) = lowest_undelivered {
                    prop_assert!(c <= low);
                }
            }
            if remaining.is_empty() {
                prop_assert_eq!(t.committable(), offsets.last().map(|l| l + 1));
            }
        }
    }
}
