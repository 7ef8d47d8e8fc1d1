//! The source → target offset mapping of one source partition, built from
//! delivery reports, and the translation of a consumer's committed offset.
//!
//! A segment is a run of consecutive source offsets that landed at
//! consecutive target offsets. A gap in the source (a compacted log,
//! transaction markers), a gap in the target (another writer) or a regress
//! (a mirror restarted from an earlier offset, copying records again) starts
//! a new segment. Each segment is a fact read from the target's
//! acknowledgements, so the translation below is exact over what is known.

/// One run of consecutive offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// The first source offset.
    pub source_start: i64,
    /// The target offset of the record at `source_start`.
    pub target_start: i64,
    /// Records in the run (at least 1).
    pub count: i64,
}

impl Segment {
    /// One past the last source offset.
    pub fn source_end(&self) -> i64 {
        self.source_start + self.count
    }

    /// One past the last target offset.
    pub fn target_end(&self) -> i64 {
        self.target_start + self.count
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    segment: Segment,
    /// The count last published (0: never).
    published: i64,
}

/// The segments of one source partition, in the order they were started.
#[derive(Debug, Clone, Default)]
pub struct PartitionMap {
    entries: Vec<Entry>,
    /// The segment that deliveries extend.
    open: Option<usize>,
}

impl PartitionMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes that the target acknowledged the record at source offset
    /// `source` at target offset `target`. O(1): extends the segment the
    /// previous report extended or started, else starts one.
    pub fn record(&mut self, source: i64, target: i64) {
        if let Some(entry) = self.open.and_then(|i| self.entries.get_mut(i)) {
            let s = &mut entry.segment;
            if source == s.source_end() && target == s.target_end() {
                s.count += 1;
                return;
            }
        }
        self.entries.push(Entry {
            segment: Segment {
                source_start: source,
                target_start: target,
                count: 1,
            },
            published: 0,
        });
        self.open = Some(self.entries.len() - 1);
    }

    /// Adds a segment read back from the sync topic, as published. A
    /// segment with the same starts keeps the longer count.
    pub fn load(&mut self, segment: Segment) {
        if let Some(entry) = self.entries.iter_mut().find(|e| {
            e.segment.source_start == segment.source_start
                && e.segment.target_start == segment.target_start
        }) {
            if segment.count > entry.segment.count {
                entry.segment.count = segment.count;
            }
            entry.published = entry.published.max(segment.count);
            return;
        }
        self.entries.push(Entry {
            segment,
            published: segment.count,
        });
    }

    /// Stops extending the open segment: the next report starts a new one
    /// (after a rebalance, the partition may have been copied elsewhere meanwhile).
    pub fn close(&mut self) {
        self.open = None;
    }

    /// Every segment.
    pub fn segments(&self) -> impl Iterator<Item = Segment> + '_ {
        self.entries.iter().map(|e| e.segment)
    }

    /// Whether no record is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The segments grown since they were last published, with a handle for
    /// [`PartitionMap::mark_published`].
    pub fn changed(&self) -> Vec<(usize, Segment)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.segment.count != e.published)
            .map(|(i, e)| (i, e.segment))
            .collect()
    }

    /// Notes that `segment` (as returned by [`PartitionMap::changed`] under
    /// `handle`) reached the sync topic.
    pub fn mark_published(&mut self, handle: usize, segment: Segment) {
        if let Some(entry) = self.entries.get_mut(handle) {
            if entry.segment.source_start == segment.source_start
                && entry.segment.target_start == segment.target_start
            {
                entry.published = entry.published.max(segment.count);
            }
        }
    }

    /// One past the highest source offset the published segments cover
    /// (`None`: nothing published).
    pub fn published_end(&self) -> Option<i64> {
        self.entries
            .iter()
            .filter(|e| e.published > 0)
            .map(|e| e.segment.source_start + e.published)
            .max()
    }

    /// Drops the segments whose records all lie below the source's log start
    /// `low_watermark` (no group can commit an offset there and still read
    /// them), except the one ending highest in the target, which bounds where
    /// the next record lands. Returns the dropped segments that were
    /// published, to be tombstoned.
    pub fn prune_below(&mut self, low_watermark: i64) -> Vec<Segment> {
        let Some(keep) = self
            .entries
            .iter()
            .enumerate()
            .max_by_key(|(_, e)| e.segment.target_end())
            .map(|(i, _)| i)
        else {
            return Vec::new();
        };
        let open = self.open.map(|i| self.entries[i].segment);
        let mut dropped = Vec::new();
        let mut i = 0;
        self.entries.retain(|e| {
            let drop = i != keep && e.segment.source_end() <= low_watermark;
            i += 1;
            if drop && e.published > 0 {
                dropped.push(e.segment);
            }
            !drop
        });
        self.open = open.and_then(|o| self.entries.iter().position(|e| e.segment == o));
        dropped
    }

    /// The target offset from which a consumer that committed source offset
    /// `committed` (the next record it would read) resumes without skipping
    /// a record: the earliest target position of any record at or past
    /// `committed`; past every known record, one past the highest target
    /// offset known (where the next mirrored record lands, or later).
    /// `None` when `committed` lies before every known record: what the
    /// target holds of it is unknown.
    pub fn translate(&self, committed: i64) -> Option<i64> {
        let mut known_before = false;
        let mut earliest: Option<i64> = None;
        let mut end: Option<i64> = None;
        for e in &self.entries {
            let s = e.segment;
            known_before |= s.source_start <= committed;
            if committed < s.source_end() {
                let at = s.target_start + (committed - s.source_start).max(0);
                earliest = Some(earliest.map_or(at, |x| x.min(at)));
            }
            end = Some(end.map_or(s.target_end(), |x| x.max(s.target_end())));
        }
        if !known_before {
            return None;
        }
        earliest.or(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seg(source_start: i64, target_start: i64, count: i64) -> Segment {
        Segment {
            source_start,
            target_start,
            count,
        }
    }

    #[test]
    fn consecutive_reports_extend_one_segment_and_gaps_start_new_ones() {
        let mut m = PartitionMap::new();
        for o in 0..10 {
            m.record(o, 100 + o);
        }
        // A source gap (compaction, a transaction marker at 10).
        m.record(11, 110);
        m.record(12, 111);
        // A target gap (another writer).
        m.record(13, 120);
        // A restart from 5: copies again.
        m.record(5, 121);
        m.record(6, 122);
        let got: Vec<_> = m.segments().collect();
        assert_eq!(
            got,
            vec![
                seg(0, 100, 10),
                seg(11, 110, 2),
                seg(13, 120, 1),
                seg(5, 121, 2)
            ]
        );
    }

    #[test]
    fn translation_inside_in_gaps_past_the_end_and_before_everything() {
        let mut m = PartitionMap::new();
        for o in 10..20 {
            m.record(o, o - 10);
        }
        for o in 25..30 {
            m.record(o, o - 15);
        }
        assert_eq!(m.translate(9), None, "before everything known");
        assert_eq!(m.translate(10), Some(0));
        assert_eq!(m.translate(15), Some(5));
        assert_eq!(m.translate(20), Some(10), "gap: the next segment's start");
        assert_eq!(m.translate(24), Some(10));
        assert_eq!(m.translate(29), Some(14));
        assert_eq!(m.translate(30), Some(15), "past the end");
        assert_eq!(m.translate(1000), Some(15));
    }

    #[test]
    fn duplicates_translate_to_the_earliest_copy() {
        let mut m = PartitionMap::new();
        for o in 0..100 {
            m.record(o, o);
        }
        // Restarted from 50: 50..120 again at 100..170.
        for o in 50..120 {
            m.record(o, o + 50);
        }
        assert_eq!(m.translate(60), Some(60));
        assert_eq!(m.translate(100), Some(150));
        assert_eq!(m.translate(120), Some(170));
    }

    #[test]
    fn publishing_tracks_growth_and_pruning_keeps_the_last_segment() {
        let mut m = PartitionMap::new();
        for o in 0..5 {
            m.record(o, o);
        }
        let changed = m.changed();
        assert_eq!(changed, vec![(0, seg(0, 0, 5))]);
        m.record(5, 5);
        m.mark_published(0, seg(0, 0, 5));
        assert_eq!(m.published_end(), Some(5));
        assert_eq!(m.changed(), vec![(0, seg(0, 0, 6))], "grew after the send");
        m.mark_published(0, seg(0, 0, 6));
        assert!(m.changed().is_empty());
        m.record(10, 6);
        m.record(11, 7);
        // Everything below 20 is gone from the source: the first segment is
        // dropped (and was published), the last one stays.
        assert_eq!(m.prune_below(20), vec![seg(0, 0, 6)]);
        assert_eq!(m.segments().collect::<Vec<_>>(), vec![seg(10, 6, 2)]);
        m.record(12, 8);
        assert_eq!(m.segments().collect::<Vec<_>>(), vec![seg(10, 6, 3)]);
    }

    #[test]
    fn loaded_segments_count_as_published_and_keep_the_longer_version() {
        let mut m = PartitionMap::new();
        m.load(seg(0, 0, 5));
        m.load(seg(0, 0, 9));
        m.load(seg(0, 0, 7));
        m.load(seg(0, 20, 3));
        assert!(m.changed().is_empty());
        assert_eq!(m.published_end(), Some(9));
        assert_eq!(m.translate(4), Some(4));
        assert_eq!(
            m.translate(9),
            Some(23),
            "past the end: after the restart's copy"
        );
    }

    /// One event of a mirrored stream.
    #[derive(Debug, Clone)]
    enum Event {
        /// Copy `n` more records (source offsets skip by `gaps[i]`).
        Copy(Vec<i64>),
        /// The mirror restarts `back` records earlier than where it stands.
        Restart(usize),
        /// Another writer puts `n` records in the target partition.
        Foreign(i64),
    }

    fn events() -> impl Strategy<Value = Vec<Event>> {
        let event = prop_oneof![
            4 => proptest::collection::vec(prop_oneof![3 => Just(1i64), 1 => 2i64..5], 1..30)
                .prop_map(Event::Copy),
            1 => (0usize..40).prop_map(Event::Restart),
            1 => (1i64..4).prop_map(Event::Foreign),
        ];
        proptest::collection::vec(event, 1..20)
    }

    proptest! {
        /// For any stream with gaps, restarts and foreign writes, the
        /// translation of any committed offset is the target position of the
        /// first target record whose source offset is at or past it (so it
        /// never skips one), or where the next record lands.
        #[test]
        fn translation_never_skips_a_record(events in events(), probes in proptest::collection::vec(0i64..400, 1..20)) {
            // The source log (offsets with gaps) and the target partition
            // (source offset per target position; None: foreign).
            let mut source: Vec<i64> = Vec::new();
            let mut target: Vec<Option<i64>> = Vec::new();
            let mut position = 0usize; // index into `source` of the next record to copy
            let mut next_source = 0i64;
            let mut m = PartitionMap::new();
            for event in events {
                match event {
                    Event::Copy(steps) => for step in steps {
                        if position == source.len() {
                            next_source += step;
                            source.push(next_source);
                        }
                        let s = source[position];
                        position += 1;
                        m.record(s, target.len() as i64);
                        target.push(Some(s));
                    },
                    Event::Restart(back) => position = position.saturating_sub(back),
                    Event::Foreign(n) => for _ in 0..n { target.push(None) },
                }
            }
            let first_known = target.iter().flatten().min().copied();
            for x in probes {
                let got = m.translate(x);
                match first_known {
                    Some(first) if x >= first => {
                        let t = got.expect("translatable at or past the first known record");
                        let exact = target.iter().position(|s| s.is_some_and(|s| s >= x));
                        match exact {
                            Some(f) => {
                                prop_assert_eq!(t, f as i64, "x {}", x);
                                prop_assert!(target[f].is_some_and(|s| s >= x));
                            }
                            None => {
                                // Past every mirrored record: one past the
                                // last of them; the next one lands there or later.
                                let last = target.iter().rposition(Option::is_some);
                                prop_assert_eq!(Some(t), last.map(|l| l as i64 + 1));
                            }
                        }
                    }
                    _ => prop_assert_eq!(got, None),
                }
            }
        }
    }
}
