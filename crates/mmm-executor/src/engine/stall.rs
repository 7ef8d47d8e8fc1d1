//! No silent stall: a partition that makes no progress while the consumer
//! keeps reporting an error (a batch it cannot decompress, a topic it may
//! not read, an unknown partition) is reported at once in the task's health
//! and fails the task after the stall timeout.
//!
//! librdkafka reports such errors without their partition, and once rather
//! than on every failed fetch, so a partition counts as stuck when it has
//! records left to read (by the statistics' watermarks; unknown counts as
//! left) and delivered nothing to the loop since the latest error.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// An error stops being reported once every partition progresses and the
/// consumer reported nothing for this long.
pub(super) const ERROR_QUIET: Duration = Duration::from_secs(15);

/// The task's health as the metrics report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Health {
    /// No consumer error lately.
    Ok,
    /// The consumer reports errors, every partition still progresses.
    Degraded(String),
    /// A partition makes no progress while the consumer reports errors.
    Stalled {
        topic: String,
        partition: i32,
        stuck_for: Duration,
        error: String,
    },
}

impl Health {
    /// The report's `health` value.
    pub(super) fn status(&self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Degraded(_) => "degraded",
            Health::Stalled { .. } => "stalled",
        }
    }

    /// The report's `error` text.
    pub(super) fn error(&self) -> Option<String> {
        match self {
            Health::Ok => None,
            Health::Degraded(error) => Some(error.clone()),
            Health::Stalled {
                topic,
                partition,
                stuck_for,
                error,
            } => Some(format!(
                "source partition {topic}-{partition} has made no progress for {} s: {error}",
                stuck_for.as_secs()
            )),
        }
    }
}

#[derive(Debug)]
struct Streak {
    first: Instant,
    last: Instant,
    error: String,
}

#[derive(Debug)]
struct Progress {
    offset: Option<i64>,
    /// When a record of the partition last reached the loop; `None`: not
    /// since it was assigned.
    at: Option<Instant>,
    /// When the partition was first seen assigned.
    since: Instant,
}

/// One assigned partition as the loop sees it at a check.
#[derive(Debug, Clone)]
pub(super) struct PartitionView {
    pub(super) topic: String,
    pub(super) partition: i32,
    /// The last offset handed to the producer.
    pub(super) last_offset: Option<i64>,
    /// Whether the statistics show nothing left to read.
    pub(super) caught_up: bool,
}

/// Watches the assigned partitions' progress against consumer errors.
#[derive(Debug, Default)]
pub(super) struct StallWatch {
    streak: Option<Streak>,
    progress: HashMap<(String, i32), Progress>,
}

impl StallWatch {
    /// Notes an error the consumer reported. librdkafka reports a
    /// partition's error once, not on every failed fetch, so an error stands
    /// until every partition it may concern has progressed.
    pub(super) fn consumer_error(&mut self, error: String, now: Instant) {
        match &mut self.streak {
            Some(streak) => {
                streak.last = now;
                streak.error = error;
            }
            None => {
                self.streak = Some(Streak {
                    first: now,
                    last: now,
                    error,
                })
            }
        }
    }

    /// The health at `now` of the `assigned` partitions.
    pub(super) fn check(&mut self, now: Instant, assigned: &[PartitionView]) -> Health {
        let keep: HashSet<(&str, i32)> = assigned
            .iter()
            .map(|p| (p.topic.as_str(), p.partition))
            .collect();
        self.progress
            .retain(|(t, p), _| keep.contains(&(t.as_str(), *p)));
        for view in assigned {
            let entry = self
                .progress
                .entry((view.topic.clone(), view.partition))
                .or_insert(Progress {
                    offset: view.last_offset,
                    at: None,
                    since: now,
                });
            if entry.offset != view.last_offset {
                entry.offset = view.last_offset;
                entry.at = Some(now);
            }
        }
        let Some(streak) = &self.streak else {
            return Health::Ok;
        };
        let stuck = assigned
            .iter()
            .filter(|view| !view.caught_up)
            .filter_map(|view| {
                let progress = self.progress.get(&(view.topic.clone(), view.partition))?;
                // Progress since the latest error clears the partition.
                if progress.at.is_some_and(|at| at >= streak.last) {
                    return None;
                }
                let since = progress.at.unwrap_or(progress.since).max(streak.first);
                Some((view, now.saturating_duration_since(since)))
            })
            .max_by_key(|(_, stuck_for)| *stuck_for);
        match stuck {
            Some((view, stuck_for)) => Health::Stalled {
                topic: view.topic.clone(),
                partition: view.partition,
                stuck_for,
                error: streak.error.clone(),
            },
            None if now.saturating_duration_since(streak.last) >= ERROR_QUIET => {
                self.streak = None;
                Health::Ok
            }
            None => Health::Degraded(streak.error.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(partition: i32, last_offset: Option<i64>, caught_up: bool) -> PartitionView {
        PartitionView {
            topic: "t".into(),
            partition,
            last_offset,
            caught_up,
        }
    }

    #[test]
    fn no_error_is_ok() {
        let mut w = StallWatch::default();
        let t0 = Instant::now();
        assert_eq!(w.check(t0, &[view(0, None, false)]), Health::Ok);
        assert_eq!(
            w.check(t0 + Duration::from_secs(600), &[view(0, None, false)]),
            Health::Ok
        );
    }

    #[test]
    fn a_partition_stuck_on_a_persistent_error_stalls() {
        let mut w = StallWatch::default();
        let t0 = Instant::now();
        let s = Duration::from_secs;
        w.check(t0, &[view(0, Some(5), false), view(1, Some(9), false)]);
        w.consumer_error("Unsupported compression codec".into(), t0 + s(1));
        let mut health = Health::Ok;
        for i in 2..=40 {
            // Partition 1 goes on; partition 0 never moves.
            w.consumer_error("Unsupported compression codec".into(), t0 + s(i));
            health = w.check(
                t0 + s(i),
                &[view(0, Some(5), false), view(1, Some(9 + i as i64), false)],
            );
        }
        match &health {
            Health::Stalled {
                partition,
                stuck_for,
                error,
                ..
            } => {
                assert_eq!(*partition, 0);
                assert_eq!(*stuck_for, s(39));
                assert!(error.contains("compression"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(health.status(), "stalled");
        let text = health.error().expect("error text");
        assert!(text.contains("t-0") && text.contains("39 s"), "{text}");
    }

    #[test]
    fn an_error_reported_once_stands_until_the_partition_progresses() {
        let mut w = StallWatch::default();
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // The error comes before the partition was ever seen.
        w.consumer_error("Topic authorization failed".into(), t0);
        let h = w.check(t0 + s(1), &[view(0, None, false)]);
        assert_eq!(h.status(), "stalled");
        let h = w.check(t0 + s(600), &[view(0, None, false)]);
        match h {
            // Counted from when the partition was first seen.
            Health::Stalled { stuck_for, .. } => assert_eq!(stuck_for, s(599)),
            other => panic!("{other:?}"),
        }
        // It progresses, long after the error: healthy again.
        let h = w.check(t0 + s(601), &[view(0, Some(3), false)]);
        assert_eq!(h, Health::Ok);
    }

    #[test]
    fn errors_while_every_partition_progresses_are_only_degraded() {
        let mut w = StallWatch::default();
        let t0 = Instant::now();
        let s = Duration::from_secs;
        w.check(t0, &[view(0, Some(1), false), view(1, None, true)]);
        for i in 1..10 {
            w.consumer_error("broker transport failure".into(), t0 + s(i));
            let h = w.check(
                t0 + s(i),
                &[view(0, Some(1 + i as i64), false), view(1, None, true)],
            );
            assert_eq!(h, Health::Degraded("broker transport failure".into()));
            assert_eq!(h.status(), "degraded");
        }
        // Quiet for long enough: healthy again.
        let h = w.check(
            t0 + s(9) + ERROR_QUIET,
            &[view(0, Some(20), false), view(1, None, true)],
        );
        assert_eq!(h, Health::Ok);
    }
}
