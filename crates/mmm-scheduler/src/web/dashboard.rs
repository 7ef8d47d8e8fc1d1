//! Everything the status page shows, gathered once per request: served as
//! JSON at `/api/dashboard` and rendered as HTML by [`super::page`].

use std::collections::BTreeMap;

use mmm_core::model::{Cluster, Server, ServerId, StateChange};
use mmm_core::replication_report::{GroupSyncReport, ReplicationReport};
use serde::Serialize;

use super::reading::Reading;
use super::samples::Sample;
use crate::mesos::connection::SubscriptionState;

/// How many of a task's latest state changes the page lists.
pub const CHANGES_SHOWN: usize = 5;

#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    pub now_ms: u64,
    pub framework: FrameworkView,
    /// Whether the mutating API calls need a bearer token.
    pub protected: bool,
    /// Whether the API listens beyond loopback without a token (`[api] insecure`).
    pub insecure: bool,
    pub tasks: Vec<TaskView>,
    /// The chart's samples per task id, oldest first.
    pub samples: BTreeMap<ServerId, Vec<Sample>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FrameworkView {
    pub name: String,
    /// The id Mesos gave, once known (also while disconnected).
    pub id: Option<String>,
    /// The master subscribed to.
    pub master: Option<String>,
    /// `connecting`, `subscribed` or `disconnected`.
    pub subscription: &'static str,
    /// Why it is disconnected.
    pub reason: Option<String>,
    pub started_ms: u64,
    pub uptime_secs: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskView {
    pub id: ServerId,
    pub state: &'static str,
    pub goal: String,
    pub task_id: Option<String>,
    pub host: Option<String>,
    pub topics: Vec<String>,
    pub topics_regex: Option<String>,
    pub records_in_per_sec: Option<f64>,
    pub records_out_per_sec: Option<f64>,
    pub lag: Option<f64>,
    pub last_commit_ms: Option<u64>,
    /// When the executor last reported.
    pub metrics_at_ms: Option<u64>,
    pub message: Option<String>,
    /// The executor's health ("ok", "degraded", "stalled") and its error text.
    pub health: Option<String>,
    pub health_error: Option<String>,
    /// The latest state changes, newest first.
    pub changes: Vec<StateChange>,
    /// The largest offset translation lag over the task's partitions, and
    /// that partition; absent when the task writes no offset syncs.
    pub translation_lag: Option<i64>,
    pub translation_lag_partition: Option<String>,
    /// Per synced consumer group: its latest sync on the target.
    pub group_syncs: BTreeMap<String, GroupSyncReport>,
}

impl TaskView {
    fn of(server: &Server) -> TaskView {
        let reading = server
            .metrics
            .as_ref()
            .map(|m| Reading::of(&m.document))
            .unwrap_or_default();
        let report = server
            .metrics
            .as_ref()
            .map(|m| ReplicationReport::from_metrics(&m.document))
            .unwrap_or_default();
        let widest = report
            .offset_syncs
            .as_ref()
            .and_then(|s| s.translation_lag.iter().max_by_key(|(_, lag)| **lag));
        TaskView {
            id: server.id,
            state: server.state.as_str(),
            goal: format!("{:?}", server.goal),
            task_id: server.task_id.clone(),
            host: server.hostname.clone(),
            topics: server.task.topics.clone(),
            topics_regex: server.task.topics_regex.clone(),
            records_in_per_sec: reading.records_in_per_sec,
            records_out_per_sec: reading.records_out_per_sec,
            lag: reading.lag,
            last_commit_ms: reading.last_commit_ms,
            metrics_at_ms: server.metrics.as_ref().map(|m| m.received_ms),
            message: server.message.clone(),
            health: metric_text(server, "health"),
            health_error: metric_text(server, "error"),
            changes: server
                .history
                .iter()
                .rev()
                .take(CHANGES_SHOWN)
                .cloned()
                .collect(),
            translation_lag: widest.map(|(_, lag)| *lag),
            translation_lag_partition: widest.map(|(partition, _)| partition.clone()),
            group_syncs: report.group_syncs,
        }
    }
}

/// A text field of the executor's latest metrics document.
fn metric_text(server: &Server, key: &str) -> Option<String> {
    let value = server.metrics.as_ref()?.document.get(key)?;
    value.as_str().map(str::to_owned)
}

/// What the dashboard is made of.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    pub framework_name: &'a str,
    pub cluster: &'a Cluster,
    pub subscription: &'a SubscriptionState,
    pub samples: &'a BTreeMap<ServerId, Vec<Sample>>,
    pub started_ms: u64,
    pub protected: bool,
    pub insecure: bool,
}

impl Dashboard {
    pub fn build(sources: Sources<'_>, now_ms: u64) -> Dashboard {
        let stored_id = sources.cluster.framework_id.clone();
        let (subscription, id, master, reason) = match sources.subscription {
            SubscriptionState::Connecting => ("connecting", stored_id, None, None),
            SubscriptionState::Subscribed {
                framework_id,
                master,
            } => (
                "subscribed",
                Some(framework_id.clone()),
                Some(master.clone()),
                None,
            ),
            SubscriptionState::Disconnected { reason } => {
                ("disconnected", stored_id, None, Some(reason.clone()))
            }
        };
        Dashboard {
            now_ms,
            framework: FrameworkView {
                name: sources.framework_name.to_string(),
                id,
                master,
                subscription,
                reason,
                started_ms: sources.started_ms,
                uptime_secs: now_ms.saturating_sub(sources.started_ms) / 1000,
            },
            protected: sources.protected,
            insecure: sources.insecure,
            tasks: sources.cluster.servers.values().map(TaskView::of).collect(),
            samples: sources.samples.clone(),
        }
    }
}
