//! `/metrics` in the Prometheus text format.
//!
//! Counters of what happened (offers) live here; everything derived from
//! the cluster (tasks by state, per-task rates and lag) is read from the
//! latest snapshot at scrape time, so that it can never drift from it.

use std::sync::atomic::AtomicU64;

use mmm_core::model::{Cluster, ServerState};
use mmm_core::replication_report::ReplicationReport;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::mesos::connection::SubscriptionState;

/// The scheduler's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    pub offers_received: Counter,
    pub offers_declined: Counter,
}

type Labels = Vec<(String, String)>;

/// The executor's metrics document (`"kind": "metrics"`): records per
/// second produced and consumed since its previous report, its counters,
/// and the lag per `topic-partition`.
const PRODUCE_RATE: &str = "produce_rate";
const CONSUME_RATE: &str = "consume_rate";
const RECORDS_PRODUCED: &str = "records_produced";
const RECORDS_SKIPPED_LOOP: &str = "records_skipped_loop";
const LAG: &str = "lag";

fn number_at(doc: &serde_json::Value, key: &str) -> Option<f64> {
    doc.get(key).and_then(serde_json::Value::as_f64)
}

/// The most partition series one task may add to /metrics.
pub const MAX_PARTITION_LABELS: usize = 4096;

/// Whether `label` is a `topic-partition` (`[A-Za-z0-9._-]+-[0-9]+`): the
/// document comes from an executor, and a label must not carry anything else
/// into the exposition.
pub fn valid_partition_label(label: &str) -> bool {
    let Some((topic, partition)) = label.rsplit_once('-') else {
        return false;
    };
    !topic.is_empty()
        && topic.len() <= 249
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !partition.is_empty()
        && partition.len() <= 10
        && partition.bytes().all(|b| b.is_ascii_digit())
}

/// The lag per partition (valid labels only, at most
/// [`MAX_PARTITION_LABELS`]), and its total.
fn lag_of(doc: &serde_json::Value) -> Option<(Vec<(String, f64)>, f64)> {
    match doc.get(LAG)? {
        serde_json::Value::Object(parts) => {
            let parts: Vec<(String, f64)> = parts
                .iter()
                .filter(|(k, _)| valid_partition_label(k))
                .filter_map(|(k, v)| v.as_f64().map(|n| (k.clone(), n)))
                .take(MAX_PARTITION_LABELS)
                .collect();
            let total = parts.iter().map(|(_, n)| n).sum();
            Some((parts, total))
        }
        other => other.as_f64().map(|n| (Vec::new(), n)),
    }
}

/// The most consumer-group series one task may add to /metrics.
pub const MAX_GROUP_LABELS: usize = 1024;

/// A label value as the text format needs it: backslash, double quote and
/// line feed escaped (the encoder writes values as given, and a group id
/// is anything its owner chose).
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

impl Metrics {
    /// The text exposition of every metric.
    pub fn render(&self, cluster: &Cluster, subscription: &SubscriptionState) -> String {
        let mut registry = Registry::with_prefix("mmm");
        registry.register(
            "offers_received",
            "Resource offers received from Mesos",
            self.offers_received.clone(),
        );
        registry.register(
            "offers_declined",
            "Resource offers declined",
            self.offers_declined.clone(),
        );

        let subscribed = Gauge::<i64>::default();
        subscribed.set(i64::from(subscription.is_subscribed()));
        registry.register(
            "subscribed",
            "1 while the framework is subscribed to a Mesos master",
            subscribed,
        );

        let by_state = Family::<Labels, Gauge<i64>>::default();
        for state in ServerState::ALL {
            let n = cluster
                .servers
                .values()
                .filter(|s| s.state == state)
                .count();
            by_state
                .get_or_create(&vec![("state".to_string(), state.as_str().to_string())])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        registry.register("tasks", "Servers by state", by_state);

        let rate = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        let consume_rate = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        let produced = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        let skipped_loop = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        let lag = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        let partition_lag = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        let translation_lag = Family::<Labels, Gauge<i64>>::default();
        let group_sync = Family::<Labels, Gauge<i64>>::default();
        for server in cluster.servers.values() {
            let Some(m) = &server.metrics else { continue };
            let id = server.id.to_string();
            let report = ReplicationReport::from_metrics(&m.document);
            let syncs = report.offset_syncs.unwrap_or_default();
            let partitions = syncs.translation_lag.into_iter();
            for (partition, n) in partitions
                .filter(|(k, _)| valid_partition_label(k))
                .take(MAX_PARTITION_LABELS)
            {
                translation_lag
                    .get_or_create(&vec![
                        ("server".to_string(), id.clone()),
                        ("partition".to_string(), partition),
                    ])
                    .set(n);
            }
            for (group, sync) in report.group_syncs.into_iter().take(MAX_GROUP_LABELS) {
                group_sync
                    .get_or_create(&vec![
                        ("server".to_string(), id.clone()),
                        ("group".to_string(), escape_label_value(&group)),
                    ])
                    .set(i64::try_from(sync.last_sync_unix_ms).unwrap_or(i64::MAX));
            }
            let labels = vec![("id".to_string(), id.clone())];
            if let Some(r) = number_at(&m.document, PRODUCE_RATE) {
                rate.get_or_create(&labels).set(r);
            }
            if let Some(r) = number_at(&m.document, CONSUME_RATE) {
                consume_rate.get_or_create(&labels).set(r);
            }
            if let Some(n) = number_at(&m.document, RECORDS_PRODUCED) {
                produced.get_or_create(&labels).set(n);
            }
            if let Some(n) = number_at(&m.document, RECORDS_SKIPPED_LOOP) {
                skipped_loop.get_or_create(&labels).set(n);
            }
            if let Some((parts, total)) = lag_of(&m.document) {
                lag.get_or_create(&labels).set(total);
                for (partition, n) in parts {
                    partition_lag
                        .get_or_create(&vec![
                            ("id".to_string(), id.clone()),
                            ("partition".to_string(), partition),
                        ])
                        .set(n);
                }
            }
        }
        registry.register(
            "task_records_per_second",
            "Records mirrored (produced to the target) per second, as the task's executor last reported",
            rate,
        );
        registry.register(
            "task_consumed_records_per_second",
            "Records consumed from the source per second, as the task's executor last reported",
            consume_rate,
        );
        registry.register(
            "task_records_produced",
            "Records the task's current executor has produced since it started",
            produced,
        );
        registry.register(
            "task_records_skipped_loop",
            "Records the task's current executor did not mirror because their provenance names its target cluster",
            skipped_loop,
        );
        registry.register(
            "task_lag_records",
            "Consumer lag in records over all partitions, as the task's executor last reported",
            lag,
        );
        registry.register(
            "task_partition_lag_records",
            "Consumer lag in records per source topic-partition",
            partition_lag,
        );

        registry.register(
            "offset_translation_lag",
            "Per source topic-partition: records between the task's committed offset and the last offset its offset syncs translate exactly",
            translation_lag,
        );
        registry.register(
            "group_sync_last_unix_ms",
            "When the consumer group's translated offsets were last written on the target (ms since the epoch; 0: never)",
            group_sync,
        );

        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmm_core::model::{Metrics as TaskMetrics, ServerId, TaskConfig};

    /// Adds a server whose executor last reported `document`.
    fn add_reporting(cluster: &mut Cluster, document: serde_json::Value) -> ServerId {
        let task = TaskConfig {
            cpus: 0.2,
            mem: 256.0,
            topics: vec!["t".into()],
            topics_regex: None,
            consumer: Default::default(),
            producer: Default::default(),
        };
        let id = cluster.add(None, task, 1).expect("add");
        cluster.get_mut(id).expect("server").metrics = Some(TaskMetrics {
            received_ms: 2,
            document,
        });
        id
    }

    #[test]
    fn renders_states_offers_subscription_and_task_metrics() {
        let mut cluster = Cluster::new();
        add_reporting(
            &mut cluster,
            serde_json::json!({"kind": "metrics", "produce_rate": 1500.5,
                "consume_rate": 1600.0, "records_produced": 9000, "records_skipped_loop": 12,
                "lag": {"t-0": 40, "t-1": 2}}),
        );
        let m = Metrics::default();
        m.offers_received.inc_by(3);
        m.offers_declined.inc();
        let text = m.render(
            &cluster,
            &SubscriptionState::Subscribed {
                framework_id: "f".into(),
                master: "m".into(),
            },
        );
        for line in [
            "mmm_offers_received_total 3",
            "mmm_offers_declined_total 1",
            "mmm_subscribed 1",
            "mmm_tasks{state=\"Added\"} 1",
            "mmm_tasks{state=\"Running\"} 0",
            "mmm_task_records_per_second{id=\"1\"} 1500.5",
            "mmm_task_lag_records{id=\"1\"} 42.0",
            "mmm_task_consumed_records_per_second{id=\"1\"} 1600.0",
            "mmm_task_records_produced{id=\"1\"} 9000.0",
            "mmm_task_records_skipped_loop{id=\"1\"} 12.0",
            "mmm_task_partition_lag_records{id=\"1\",partition=\"t-0\"} 40.0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn translation_lag_and_group_syncs_are_exposed_and_old_documents_add_nothing() {
        let mut cluster = Cluster::new();
        add_reporting(
            &mut cluster,
            serde_json::json!({"kind": "metrics", "lag": {"t-0": 1},
                "offset_syncs": {"topic": "mmm-offset-syncs",
                    "translation_lag": {"t-0": 0, "t-1": 17, "bad\"}label-1": 5}},
                "group_syncs": {"billing": {"last_sync_unix_ms": 1_795_000_000_000u64,
                        "partitions": 2, "skipped": null},
                    "odd \"group\"\nx": {"last_sync_unix_ms": 5, "partitions": 1}}}),
        );
        // An executor from before offset syncs.
        add_reporting(
            &mut cluster,
            serde_json::json!({"kind": "metrics", "lag": {"t-0": 1}}),
        );
        let text = Metrics::default().render(&cluster, &SubscriptionState::Connecting);
        for line in [
            "mmm_offset_translation_lag{server=\"1\",partition=\"t-0\"} 0",
            "mmm_offset_translation_lag{server=\"1\",partition=\"t-1\"} 17",
            "mmm_group_sync_last_unix_ms{server=\"1\",group=\"billing\"} 1795000000000",
            "mmm_group_sync_last_unix_ms{server=\"1\",group=\"odd \\\"group\\\"\\nx\"} 5",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("bad"), "{text}");
        assert!(!text.contains("server=\"2\""), "{text}");
        // Every line is one sample or one comment: nothing broke out of a label.
        for line in text.lines() {
            assert!(
                line.starts_with("mmm_") || line.starts_with('#'),
                "{line:?}"
            );
        }
    }

    #[test]
    fn forged_partition_labels_never_reach_the_exposition() {
        let mut cluster = Cluster::new();
        let mut lag = serde_json::Map::new();
        lag.insert("a-0".into(), 1.into());
        lag.insert("x\"} 1\nmmm_subscribed{a=\"b-1".into(), 5.into());
        lag.insert("no-number-x".into(), 5.into());
        lag.insert("-1".into(), 5.into());
        for i in 0..(MAX_PARTITION_LABELS + 10) {
            lag.insert(format!("many-{i}"), 0.into());
        }
        add_reporting(&mut cluster, serde_json::json!({"lag": lag}));
        let text = Metrics::default().render(&cluster, &SubscriptionState::Connecting);
        assert!(!text.contains("mmm_subscribed{"), "{text}");
        assert!(!text.contains("no-number-x") && !text.contains("partition=\"-1\""));
        assert!(text.contains("partition=\"a-0\""), "{text}");
        let series = text
            .lines()
            .filter(|l| l.starts_with("mmm_task_partition_lag_records{"))
            .count();
        assert_eq!(series, MAX_PARTITION_LABELS);
        assert!(valid_partition_label("orders.eu_1-12"));
        assert!(!valid_partition_label("orders"));
    }
}
