//! The records of the offset sync topic (`offset_sync_topic`, compacted, on
//! the target): one per mapping segment, a run of consecutive source offsets
//! of one source partition that landed at consecutive offsets of one target
//! partition. One definition, for the executor that writes them and any tool
//! that reads them (docs/disaster-recovery.md describes the format).
//!
//! Key: `<source topic>/<source partition>/<source_start>/<target_start>`
//! (UTF-8; Kafka topic names hold no `/`). A segment only grows while it is
//! written, so compaction keeps its longest version; the target start is part
//! of the key because a restarted mirror can copy the same source offsets
//! again from the same place, and that second copy must not replace the first.
//! A tombstone (no value) removes a segment whose source records are gone.
//!
//! Value: JSON [`OffsetSync`].

use serde::{Deserialize, Serialize};

/// One mapping segment: source offsets `source_start..source_start + count`
/// of the keyed source partition are at target offsets
/// `target_start..target_start + count` of `target_topic`/`target_partition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetSync {
    /// The first source offset of the segment.
    pub source_start: i64,
    /// The target offset of the record at `source_start`.
    pub target_start: i64,
    /// Records in the segment (at least 1).
    pub count: i64,
    /// The target topic the records went to.
    pub target_topic: String,
    /// The target partition the records went to.
    pub target_partition: i32,
}

/// The key of an [`OffsetSync`] record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SyncKey {
    /// The source topic.
    pub topic: String,
    /// The source partition.
    pub partition: i32,
    /// The segment's first source offset.
    pub source_start: i64,
    /// The segment's first target offset.
    pub target_start: i64,
}

/// A sync record that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncRecordError {
    /// The key is not `<topic>/<partition>/<source_start>/<target_start>`.
    #[error("offset sync key {key:?} is not <topic>/<partition>/<source_start>/<target_start>")]
    Key {
        /// The key as read (lossy UTF-8).
        key: String,
    },
    /// The value is not the JSON of an offset sync.
    #[error("offset sync value of {key:?} is not valid: {reason}")]
    Value {
        /// The key of the record.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl SyncKey {
    /// The key's bytes as written.
    pub fn encode(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.topic, self.partition, self.source_start, self.target_start
        )
    }

    /// Reads a key written by [`SyncKey::encode`].
    pub fn parse(bytes: &[u8]) -> Result<SyncKey, SyncRecordError> {
        let fail = || SyncRecordError::Key {
            key: String::from_utf8_lossy(bytes).into_owned(),
        };
        let text = std::str::from_utf8(bytes).map_err(|_| fail())?;
        let mut parts = text.rsplitn(4, '/');
        let target_start = parts.next().and_then(|s| s.parse().ok()).ok_or_else(fail)?;
        let source_start = parts.next().and_then(|s| s.parse().ok()).ok_or_else(fail)?;
        let partition = parts.next().and_then(|s| s.parse().ok()).ok_or_else(fail)?;
        let topic = parts.next().filter(|t| !t.is_empty()).ok_or_else(fail)?;
        Ok(SyncKey {
            topic: topic.to_owned(),
            partition,
            source_start,
            target_start,
        })
    }
}

impl OffsetSync {
    /// The value's bytes as written.
    pub fn encode(&self) -> Vec<u8> {
        // A struct of numbers and a string always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a value written by [`OffsetSync::encode`] for `key`; the
    /// segment must be non-empty and start where its key says.
    pub fn parse(key: &SyncKey, bytes: &[u8]) -> Result<OffsetSync, SyncRecordError> {
        let fail = |reason: String| SyncRecordError::Value {
            key: key.encode(),
            reason,
        };
        let sync: OffsetSync = serde_json::from_slice(bytes).map_err(|e| fail(e.to_string()))?;
        if sync.count < 1 || sync.source_start < 0 || sync.target_start < 0 {
            return Err(fail(format!(
                "count {} and starts {}/{} must be positive",
                sync.count, sync.source_start, sync.target_start
            )));
        }
        if sync.source_start != key.source_start || sync.target_start != key.target_start {
            return Err(fail("the starts differ from the key's".into()));
        }
        Ok(sync)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_read_back() {
        let key = SyncKey {
            topic: "orders.eu-1".into(),
            partition: 3,
            source_start: 1200,
            target_start: 77,
        };
        assert_eq!(key.encode(), "orders.eu-1/3/1200/77");
        assert_eq!(SyncKey::parse(key.encode().as_bytes()), Ok(key.clone()));
        let sync = OffsetSync {
            source_start: 1200,
            target_start: 77,
            count: 5,
            target_topic: "orders.eu-1".into(),
            target_partition: 3,
        };
        let json: serde_json::Value = serde_json::from_slice(&sync.encode()).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"source_start": 1200, "target_start": 77, "count": 5,
                               "target_topic": "orders.eu-1", "target_partition": 3})
        );
        assert_eq!(OffsetSync::parse(&key, &sync.encode()), Ok(sync));
    }

    #[test]
    fn malformed_records_name_the_problem() {
        for bad in ["", "t/0/1", "/0/1/2", "t/x/1/2", "t/0/1/y"] {
            let err = SyncKey::parse(bad.as_bytes()).expect_err(bad);
            assert!(err.to_string().contains("is not <topic>"), "{err}");
        }
        let key = SyncKey::parse(b"t/0/10/20").expect("key");
        let err = OffsetSync::parse(&key, b"{}").expect_err("missing fields");
        assert!(err.to_string().contains("t/0/10/20"), "{err}");
        let other = br#"{"source_start":11,"target_start":20,"count":1,"target_topic":"t","target_partition":0}"#;
        let err = OffsetSync::parse(&key, other).expect_err("starts differ");
        assert!(err.to_string().contains("differ"), "{err}");
        let empty = br#"{"source_start":10,"target_start":20,"count":0,"target_topic":"t","target_partition":0}"#;
        assert!(OffsetSync::parse(&key, empty).is_err());
    }
}
