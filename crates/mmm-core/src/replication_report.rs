//! The disaster-recovery part of the metrics document an executor sends the
//! scheduler: how far offset translation reaches, and when each synced
//! consumer group was last written on the target. One definition, used by
//! the executor that writes it and the scheduler, CLI and web page that show it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The offset syncs an executor publishes to `offset_sync_topic`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetSyncReport {
    /// The compacted target topic the syncs go to.
    pub topic: String,
    /// Per source `topic-partition`: the mirror's committed source offset
    /// minus the highest source offset the published syncs translate
    /// exactly (0: every committed offset is covered).
    #[serde(default)]
    pub translation_lag: BTreeMap<String, i64>,
    /// When syncs were last written successfully (ms since the epoch; 0: never).
    #[serde(default)]
    pub last_sync_unix_ms: u64,
    /// Sync records written since the executor started.
    #[serde(default)]
    pub syncs_written: u64,
    /// The last error writing syncs, if the latest attempt failed.
    #[serde(default)]
    pub error: Option<String>,
}

/// One consumer group whose source offsets are translated onto the target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSyncReport {
    /// When the group's translated offsets were last written on the target
    /// (ms since the epoch; 0: never).
    #[serde(default)]
    pub last_sync_unix_ms: u64,
    /// Partitions written in that sync.
    #[serde(default)]
    pub partitions: u64,
    /// Why the latest round wrote nothing, when it did not: the group has
    /// active members on the target, or an error.
    #[serde(default)]
    pub skipped: Option<String>,
}

/// The two parts, as they appear (flattened) in the metrics document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationReport {
    /// Absent when the task writes no offset syncs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_syncs: Option<OffsetSyncReport>,
    /// Per group id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub group_syncs: BTreeMap<String, GroupSyncReport>,
}

impl ReplicationReport {
    /// Reads the parts out of a whole metrics document; what is absent or
    /// malformed comes back empty (a report from an older executor).
    pub fn from_metrics(document: &serde_json::Value) -> Self {
        serde_json::from_value(document.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_from_a_flattened_document_and_tolerates_old_ones() {
        let mut report = ReplicationReport {
            offset_syncs: Some(OffsetSyncReport {
                topic: "mmm-offset-syncs".into(),
                translation_lag: [("t-0".to_string(), 3)].into(),
                last_sync_unix_ms: 42,
                syncs_written: 7,
                error: None,
            }),
            ..ReplicationReport::default()
        };
        report.group_syncs.insert(
            "billing".into(),
            GroupSyncReport {
                last_sync_unix_ms: 43,
                partitions: 2,
                skipped: None,
            },
        );
        let mut doc = serde_json::json!({"kind": "metrics", "records_consumed": 5});
        let parts = serde_json::to_value(&report).expect("serializes");
        for (k, v) in parts.as_object().expect("object") {
            doc[k] = v.clone();
        }
        assert_eq!(ReplicationReport::from_metrics(&doc), report);
        let old = serde_json::json!({"kind": "metrics", "records_consumed": 5});
        assert_eq!(
            ReplicationReport::from_metrics(&old),
            ReplicationReport::default()
        );
    }
}
