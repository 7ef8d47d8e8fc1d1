//! Counters the replication engine keeps and the executor reports.
//!
//! The engine thread is the only writer of the counters; relaxed atomics make
//! them cheap on the hot path and readable from the executor's reporting task.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mmm_core::replication_report::{GroupSyncReport, OffsetSyncReport, ReplicationReport};
use serde::Serialize;

/// The engine's counters, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Records taken from the source.
    pub records_consumed: AtomicU64,
    /// Key and value bytes taken from the source.
    pub bytes_consumed: AtomicU64,
    /// Records the target acknowledged.
    pub records_produced: AtomicU64,
    /// Key and value bytes the target acknowledged.
    pub bytes_produced: AtomicU64,
    /// Deliveries that failed after the producer's retries.
    pub produce_errors: AtomicU64,
    /// Errors the consumer reported (fetch errors, broker down).
    pub consume_errors: AtomicU64,
    /// Commits the broker refused.
    pub commit_errors: AtomicU64,
    /// Commits sent.
    pub commits: AtomicU64,
    /// Milliseconds since the epoch of the last successful commit (0: none yet).
    pub last_commit_unix_ms: AtomicU64,
    /// Times the engine stopped consuming because too much was in flight.
    pub backpressure_pauses: AtomicU64,
    /// Milliseconds in all that the in-flight bounds held consumption back: near the
    /// replication's whole time, a window (or the target) is the bound.
    pub window_full_ms: AtomicU64,
    /// Records not mirrored because their provenance names the target cluster.
    pub records_skipped_loop: AtomicU64,
    /// Set once the consumer has joined its group and got an assignment.
    pub consuming: AtomicBool,
    /// Assigned partitions a fetch-only consumer reads rather than the group member
    /// (`engine::fetchers`; 0 with one source consumer).
    pub partitions_handed_off: AtomicU64,
    /// Lag per source partition, refreshed about once a second.
    lag: Mutex<BTreeMap<String, i64>>,
    /// The task's health ("ok", "degraded", "stalled"; empty: not checked
    /// yet) and the error behind it.
    health: Mutex<(&'static str, Option<String>)>,
    /// Offset syncs and group syncs.
    replication: Mutex<ReplicationReport>,
}

impl Metrics {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Notes a successful commit now.
    pub fn committed_now(&self) {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.last_commit_unix_ms.store(ms, Ordering::Relaxed);
    }

    /// Replaces the lag table (`topic-partition` → high watermark − position).
    pub fn set_lag(&self, lag: BTreeMap<String, i64>) {
        if let Ok(mut guard) = self.lag.lock() {
            *guard = lag;
        }
    }

    /// Sets the task's health and the error behind it.
    pub fn set_health(&self, status: &'static str, error: Option<String>) {
        if let Ok(mut guard) = self.health.lock() {
            *guard = (status, error);
        }
    }

    /// The task's health ("ok" until a check says otherwise) and its error.
    pub fn health(&self) -> (&'static str, Option<String>) {
        match self.health.lock() {
            Ok(guard) if !guard.0.is_empty() => guard.clone(),
            _ => ("ok", None),
        }
    }

    /// Whether the consumer has joined its group.
    pub fn is_consuming(&self) -> bool {
        self.consuming.load(Ordering::Acquire)
    }

    /// A consistent-enough copy of every counter.
    pub fn snapshot(&self) -> Counters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counters {
            records_consumed: get(&self.records_consumed),
            bytes_consumed: get(&self.bytes_consumed),
            records_produced: get(&self.records_produced),
            bytes_produced: get(&self.bytes_produced),
            produce_errors: get(&self.produce_errors),
            consume_errors: get(&self.consume_errors),
            commit_errors: get(&self.commit_errors),
            commits: get(&self.commits),
            last_commit_unix_ms: get(&self.last_commit_unix_ms),
            backpressure_pauses: get(&self.backpressure_pauses),
            records_skipped_loop: get(&self.records_skipped_loop),
        }
    }

    /// Changes the offset sync part of the replication report.
    pub fn update_offset_syncs(&self, change: impl FnOnce(&mut OffsetSyncReport)) {
        if let Ok(mut guard) = self.replication.lock() {
            change(guard.offset_syncs.get_or_insert_with(Default::default));
        }
    }

    /// Changes the report of consumer group `group`'s offset sync.
    pub fn update_group_sync(&self, group: &str, change: impl FnOnce(&mut GroupSyncReport)) {
        if let Ok(mut guard) = self.replication.lock() {
            change(guard.group_syncs.entry(group.to_owned()).or_default());
        }
    }

    /// The offset and group syncs.
    pub fn replication(&self) -> ReplicationReport {
        self.replication
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default()
    }

    /// The lag table.
    pub fn lag(&self) -> BTreeMap<String, i64> {
        self.lag.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

/// Plain copies of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub records_consumed: u64,
    pub bytes_consumed: u64,
    pub records_produced: u64,
    pub bytes_produced: u64,
    pub produce_errors: u64,
    pub consume_errors: u64,
    pub commit_errors: u64,
    pub commits: u64,
    pub last_commit_unix_ms: u64,
    pub backpressure_pauses: u64,
    pub records_skipped_loop: u64,
}

/// The JSON document the executor sends the scheduler in a MESSAGE.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsReport {
    /// Always "metrics", so a scheduler can tell the kinds of message apart.
    pub kind: &'static str,
    pub task_id: String,
    pub server_id: u64,
    #[serde(flatten)]
    pub counters: Counters,
    /// Records per second consumed since the previous report.
    pub consume_rate: f64,
    /// Records per second produced since the previous report.
    pub produce_rate: f64,
    /// Bytes per second consumed since the previous report.
    pub consume_bytes_rate: f64,
    /// Bytes per second produced since the previous report.
    pub produce_bytes_rate: f64,
    /// Records not yet committed, per `topic-partition`: the last stable
    /// offset (the high watermark without transactions) minus the committed offset.
    pub lag: BTreeMap<String, i64>,
    /// "ok", "degraded" (the consumer reports errors, every partition
    /// progresses) or "stalled" (a partition makes no progress because of them).
    pub health: &'static str,
    /// The error behind a health other than "ok".
    pub error: Option<String>,
    /// Offset translation and group syncs (docs/disaster-recovery.md).
    #[serde(flatten)]
    pub replication: ReplicationReport,
}

/// Turns successive snapshots into reports with rates.
#[derive(Debug)]
pub struct RateReporter {
    previous: Counters,
    at: Instant,
}

impl RateReporter {
    /// Starts measuring from `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            previous: Counters::default(),
            at: now,
        }
    }

    /// The report for the interval since the previous call.
    pub fn report(
        &mut self,
        metrics: &Metrics,
        task_id: &str,
        server_id: u64,
        now: Instant,
    ) -> MetricsReport {
        let counters = metrics.snapshot();
        let secs = now.duration_since(self.at).as_secs_f64().max(1e-3);
        let rate = |cur: u64, prev: u64| cur.saturating_sub(prev) as f64 / secs;
        let (health, error) = metrics.health();
        let report = MetricsReport {
            kind: "metrics",
            task_id: task_id.to_owned(),
            server_id,
            counters,
            consume_rate: rate(counters.records_consumed, self.previous.records_consumed),
            produce_rate: rate(counters.records_produced, self.previous.records_produced),
            consume_bytes_rate: rate(counters.bytes_consumed, self.previous.bytes_consumed),
            produce_bytes_rate: rate(counters.bytes_produced, self.previous.bytes_produced),
            lag: metrics.lag(),
            health,
            error,
            replication: metrics.replication(),
        };
        self.previous = counters;
        self.at = now;
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rates_cover_the_interval_since_the_previous_report() {
        let m = Metrics::default();
        let t0 = Instant::now();
        let mut r = RateReporter::new(t0);
        Metrics::add(&m.records_consumed, 100);
        Metrics::add(&m.bytes_produced, 4000);
        let first = r.report(&m, "task", 3, t0 + Duration::from_secs(2));
        assert_eq!(first.consume_rate, 50.0);
        assert_eq!(first.produce_bytes_rate, 2000.0);
        Metrics::add(&m.records_consumed, 10);
        let second = r.report(&m, "task", 3, t0 + Duration::from_secs(3));
        assert_eq!(second.consume_rate, 10.0);
        assert_eq!(second.counters.records_consumed, 110);
        let json = serde_json::to_value(&second).expect("serializes");
        assert_eq!(json["records_consumed"], 110);
        assert_eq!(json["task_id"], "task");
        assert_eq!(json["server_id"], 3);
        assert_eq!(json["health"], "ok");
        assert_eq!(json["error"], serde_json::Value::Null);
        m.set_health("stalled", Some("t-0 has made no progress".into()));
        let third = r.report(&m, "task", 3, t0 + Duration::from_secs(4));
        let json = serde_json::to_value(&third).expect("serializes");
        assert_eq!(json["health"], "stalled");
        assert_eq!(json["error"], "t-0 has made no progress");
        assert!(
            json.get("offset_syncs").is_none(),
            "absent until syncs are on"
        );
    }

    #[test]
    fn the_replication_report_is_flattened_into_the_document() {
        let m = Metrics::default();
        m.update_offset_syncs(|r| {
            r.topic = "mmm-offset-syncs".into();
            r.translation_lag.insert("t-0".into(), 0);
            r.syncs_written = 4;
        });
        m.update_group_sync("billing", |r| r.partitions = 2);
        let report = RateReporter::new(Instant::now()).report(&m, "task", 1, Instant::now());
        let json = serde_json::to_value(&report).expect("serializes");
        assert_eq!(json["offset_syncs"]["syncs_written"], 4);
        assert_eq!(json["offset_syncs"]["translation_lag"]["t-0"], 0);
        assert_eq!(json["group_syncs"]["billing"]["partitions"], 2);
        assert_eq!(
            ReplicationReport::from_metrics(&json),
            m.replication(),
            "the scheduler reads back what the executor wrote"
        );
    }
}
