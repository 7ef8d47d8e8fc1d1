//! The recent replication rate and lag of each task, for the page's chart.
//!
//! Kept in memory only: one sample per metrics report an executor sends,
//! for the last [`WINDOW_MS`]. A restarted scheduler starts with an empty chart.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use mmm_core::model::{Cluster, ServerId};
use serde::Serialize;
use tokio::sync::watch;

use super::reading::Reading;

/// How far back the chart looks.
pub const WINDOW_MS: u64 = 10 * 60 * 1000;
/// A bound on each task's ring, whatever the executors' report interval.
pub const MAX_SAMPLES: usize = 1200;

/// One metrics report of one task.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// When the report arrived (ms since the epoch).
    pub at_ms: u64,
    pub records_in_per_sec: Option<f64>,
    pub records_out_per_sec: Option<f64>,
    pub lag: Option<f64>,
}

#[derive(Debug, Default)]
struct Ring {
    last_report_ms: u64,
    samples: VecDeque<Sample>,
}

/// The samples of every task.
#[derive(Debug, Default)]
pub struct RateHistory {
    rings: Mutex<BTreeMap<ServerId, Ring>>,
}

impl RateHistory {
    fn rings(&self) -> MutexGuard<'_, BTreeMap<ServerId, Ring>> {
        // A panic elsewhere leaves the rings consistent: every update is one push.
        self.rings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a sample of every task whose executor reported since the last
    /// call, and forgets deleted tasks and samples older than the window.
    pub fn observe(&self, cluster: &Cluster, now_ms: u64) {
        let mut rings = self.rings();
        rings.retain(|id, _| cluster.servers.contains_key(id));
        for server in cluster.servers.values() {
            let Some(metrics) = &server.metrics else {
                continue;
            };
            let ring = rings.entry(server.id).or_default();
            if metrics.received_ms <= ring.last_report_ms {
                continue;
            }
            ring.last_report_ms = metrics.received_ms;
            let reading = Reading::of(&metrics.document);
            ring.samples.push_back(Sample {
                at_ms: metrics.received_ms,
                records_in_per_sec: reading.records_in_per_sec,
                records_out_per_sec: reading.records_out_per_sec,
                lag: reading.lag,
            });
            while ring.samples.len() > MAX_SAMPLES {
                ring.samples.pop_front();
            }
        }
        let oldest = now_ms.saturating_sub(WINDOW_MS);
        for ring in rings.values_mut() {
            while ring.samples.front().is_some_and(|s| s.at_ms < oldest) {
                ring.samples.pop_front();
            }
        }
    }

    /// The samples within the window ending at `now_ms`, oldest first.
    pub fn snapshot(&self, now_ms: u64) -> BTreeMap<ServerId, Vec<Sample>> {
        let oldest = now_ms.saturating_sub(WINDOW_MS);
        self.rings()
            .iter()
            .map(|(id, ring)| {
                let recent = ring.samples.iter().filter(|s| s.at_ms >= oldest);
                (*id, recent.copied().collect())
            })
            .collect()
    }
}

/// Samples every new cluster view until the scheduler stops publishing them.
/// Each executor report changes the view, so no report is missed unless two
/// arrive within one wake-up of this task.
pub async fn record(mut view: watch::Receiver<Arc<Cluster>>, history: Arc<RateHistory>) {
    loop {
        let cluster = view.borrow_and_update().clone();
        history.observe(&cluster, crate::driver::now_ms());
        if view.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmm_core::model::{Metrics, TaskConfig};
    use serde_json::json;

    fn cluster_with(n: usize) -> Cluster {
        let mut cluster = Cluster::new();
        for _ in 0..n {
            let task = TaskConfig {
                cpus: 0.1,
                mem: 64.0,
                topics: vec!["t".into()],
                topics_regex: None,
                consumer: Default::default(),
                producer: Default::default(),
            };
            cluster.add(None, task, 0).expect("add");
        }
        cluster
    }

    fn report(cluster: &mut Cluster, id: ServerId, at_ms: u64, rate: f64) {
        cluster.get_mut(id).expect("server").metrics = Some(Metrics {
            received_ms: at_ms,
            document: json!({"produce_rate": rate, "consume_rate": rate + 1.0, "lag": {"t-0": 5}}),
        });
    }

    #[test]
    fn one_sample_per_report_and_none_for_an_unchanged_view() {
        let history = RateHistory::default();
        let mut cluster = cluster_with(2);
        history.observe(&cluster, 1_000);
        assert!(history.snapshot(1_000).is_empty(), "no report yet");
        report(&mut cluster, 1, 2_000, 10.0);
        history.observe(&cluster, 2_000);
        history.observe(&cluster, 2_500);
        report(&mut cluster, 1, 3_000, 20.0);
        report(&mut cluster, 2, 3_000, 7.0);
        history.observe(&cluster, 3_000);
        let snap = history.snapshot(3_000);
        let one: Vec<_> = snap[&1].iter().map(|s| s.records_out_per_sec).collect();
        assert_eq!(one, vec![Some(10.0), Some(20.0)]);
        assert_eq!(snap[&1][0].records_in_per_sec, Some(11.0));
        assert_eq!(snap[&1][0].lag, Some(5.0));
        assert_eq!(snap[&2].len(), 1);
    }

    #[test]
    fn old_samples_and_deleted_tasks_are_forgotten() {
        let history = RateHistory::default();
        let mut cluster = cluster_with(2);
        report(&mut cluster, 1, 1_000, 1.0);
        report(&mut cluster, 2, 1_000, 1.0);
        history.observe(&cluster, 1_000);
        report(&mut cluster, 1, 1_000 + WINDOW_MS, 2.0);
        cluster.servers.remove(&2);
        history.observe(&cluster, 1_001 + WINDOW_MS);
        let snap = history.snapshot(1_001 + WINDOW_MS);
        assert_eq!(snap.keys().copied().collect::<Vec<_>>(), vec![1]);
        assert_eq!(snap[&1].len(), 1);
        assert_eq!(snap[&1][0].records_out_per_sec, Some(2.0));
    }

    #[test]
    fn a_ring_never_grows_past_its_bound() {
        let history = RateHistory::default();
        let mut cluster = cluster_with(1);
        for i in 1..=(MAX_SAMPLES as u64 + 50) {
            report(&mut cluster, 1, i, i as f64);
            history.observe(&cluster, i);
        }
        let snap = history.snapshot(MAX_SAMPLES as u64 + 50);
        assert_eq!(snap[&1].len(), MAX_SAMPLES);
        assert_eq!(snap[&1][0].at_ms, 51);
    }
}
