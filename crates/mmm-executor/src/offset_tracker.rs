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
    /// Offsets sent and not yet popped, ascending; `true` once delivered.
    in_flight: VecDeque<(i64, bool)>,
    /// Number of entries in `in_flight` not delivered yet.
    pending: usize,
    /// One past the highest offset known delivered with nothing below it in flight.
    delivered_up_to: Option<i64>,
    /// The first offset whose delivery failed for good: nothing at or past it is committable.
    failed_at: Option<i64>,
    /// The highest offset handed to `track`.
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

    /// Notes that the record at `offset` was handed to the producer.
    pub fn track(&mut self, offset: i64) -> Result<(), TrackError> {
        if let Some(last) = self.last_tracked {
            if offset <= last {
                return Err(TrackError::NotAscending { offset, last });
            }
        }
        self.last_tracked = Some(offset);
        self.in_flight.push_back((offset, false));
        self.pending += 1;
        Ok(())
    }

    fn position(&self, offset: i64) -> Option<usize> {
        self.in_flight
            .binary_search_by_key(&offset, |&(o, _)| o)
            .ok()
    }

    /// Notes that the target acknowledged the record at `offset`. Returns
    /// false for an offset not in flight (a late report after a reset).
    pub fn delivered(&mut self, offset: i64) -> bool {
        let Some(i) = self.position(offset) else {
            return false;
        };
        if self.in_flight[i].1 {
            return false;
        }
        self.in_flight[i].1 = true;
        self.pending -= 1;
        while let Some(&(front, true)) = self.in_flight.front() {
            if self.failed_at.is_some_and(|f| front >= f) {
                break;
            }
            self.in_flight.pop_front();
            self.delivered_up_to = Some(front + 1);
        }
        true
    }

    /// Notes that the record at `offset` will never reach the target.
    /// Returns false for an offset not in flight.
    pub fn failed(&mut self, offset: i64) -> bool {
        if self.position(offset).is_none() {
            return false;
        }
        self.failed_at = Some(self.failed_at.map_or(offset, |f| f.min(offset)));
        true
    }

    /// The offset the group may commit: the lowest offset not delivered, or one
    /// past the last delivered when nothing is in flight. `None` before the
    /// first delivery.
    pub fn committable(&self) -> Option<i64> {
        let bound = match self.in_flight.front() {
            Some(&(lowest, _)) => Some(lowest),
            None => self.delivered_up_to,
        };
        match (bound, self.failed_at) {
            (Some(b), Some(f)) => Some(b.min(f)),
            (b, _) => b,
        }
    }

    /// Records sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.pending
    }

    /// Whether a delivery failed for good.
    pub fn has_failed(&self) -> bool {
        self.failed_at.is_some()
    }

    /// The highest offset handed to the producer.
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
    fn offsets_must_ascend() {
        let mut t = OffsetTracker::new();
        t.track(3).expect("ascending");
        assert_eq!(
            t.track(3),
            Err(TrackError::NotAscending { offset: 3, last: 3 })
        );
        assert_eq!(t.in_flight(), 1);
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
