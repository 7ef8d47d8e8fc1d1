//! Consumer group offset sync: every `sync_groups_interval_ms`, the selected
//! groups' committed source offsets of the partitions this engine owns are
//! translated through its offset mapping and written for the same group id
//! on the target, unless that group has members there, and never moving a
//! target offset backwards (docs/disaster-recovery.md). It runs on a thread
//! of its own, off the replication loop, with bounded timeouts.

use super::state::Shared;
use super::Control;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mmm_core::replication_report::GroupSyncReport;
use mmm_core::task_data::{GroupMatcher, TaskData};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaResult;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::kafka_config::admin_config;
use crate::offset_sync::target_client_config;

/// A source partition this engine owns and its target topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Owned {
    pub(super) topic: String,
    pub(super) partition: i32,
    pub(super) target_topic: String,
}

/// The offsets to write on the target for one group: for each owned
/// partition the group committed on the source, the translated offset,
/// unless the target already stands there or further.
pub(super) fn plan(
    owned: &[Owned],
    source_committed: &BTreeMap<(String, i32), i64>,
    translate: impl Fn(&str, i32, i64) -> Option<i64>,
    target_committed: &BTreeMap<(String, i32), i64>,
) -> Vec<((String, i32), i64)> {
    owned
        .iter()
        .filter_map(|o| {
            let committed = *source_committed.get(&(o.topic.clone(), o.partition))?;
            let translated = translate(&o.topic, o.partition, committed)?;
            let key = (o.target_topic.clone(), o.partition);
            match target_committed.get(&key) {
                Some(&current) if current >= translated => None,
                _ => Some((key, translated)),
            }
        })
        .collect()
}

/// Whether a group described on the target may have its offsets written:
/// no members and no rebalance under way.
pub(super) fn inactive(state: &str, members: usize) -> bool {
    members == 0
        && !matches!(
            state,
            "Stable" | "PreparingRebalance" | "CompletingRebalance"
        )
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The committed offsets (≥ 0) of `tpl`'s partitions for `consumer`'s group.
fn committed(
    consumer: &BaseConsumer,
    tpl: TopicPartitionList,
    timeout: Duration,
) -> KafkaResult<BTreeMap<(String, i32), i64>> {
    let got = consumer.committed_offsets(tpl, timeout)?;
    Ok(got
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) if o >= 0 => Some(((e.topic().to_owned(), e.partition()), o)),
            _ => None,
        })
        .collect())
}

pub(super) struct GroupSync {
    matcher: GroupMatcher,
    own_group: String,
    interval: Duration,
    timeout: Duration,
    source_config: ClientConfig,
    target_config: ClientConfig,
    shared: Arc<Shared>,
    control: Arc<Control>,
    /// Non-member handles per group id: (source, target).
    handles: HashMap<String, (BaseConsumer, BaseConsumer)>,
}

impl GroupSync {
    /// The group sync of `task`; `None` when it selects no group.
    pub(super) fn new(
        task: &TaskData,
        shared: Arc<Shared>,
        control: Arc<Control>,
        timeout: Duration,
    ) -> Option<GroupSync> {
        if task.sync_groups.is_none() {
            return None;
        }
        let matcher = task.sync_groups.matcher()?;
        Some(GroupSync {
            matcher,
            own_group: task.consumer.get("group.id").cloned().unwrap_or_default(),
            interval: Duration::from_millis(task.sync_groups_interval_ms.max(100)),
            timeout,
            source_config: admin_config(&task.consumer),
            target_config: target_client_config(task),
            shared,
            control,
            handles: HashMap::new(),
        })
    }

    fn stopped(&self) -> bool {
        self.control.stop.load(Ordering::Acquire)
    }

    /// Runs a round every interval until the engine stops.
    pub(super) fn run(mut self) {
        let lister = |config: &ClientConfig| -> Option<BaseConsumer> {
            let mut config = config.clone();
            config.set("group.id", "mmm-group-sync-lister");
            config
                .create()
                .map_err(|e| tracing::warn!(error = %e, "group sync: no client"))
                .ok()
        };
        let (Some(source), Some(target)) =
            (lister(&self.source_config), lister(&self.target_config))
        else {
            return;
        };
        let mut next = Instant::now() + self.interval;
        while !self.stopped() {
            if Instant::now() < next {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            self.round(&source, &target);
            next = Instant::now() + self.interval;
        }
    }

    /// The assigned partitions with a mapping: copied by this run, or by an
    /// earlier one (read back) and idle since.
    fn owned(&self) -> Vec<Owned> {
        let state = self.shared.lock();
        state
            .assigned
            .iter()
            .filter_map(|(topic, partition)| {
                let target_topic = match state.find_slot(topic, *partition) {
                    Some(i) => {
                        let slot = state.slots.get(i)?;
                        (!slot.map.is_empty()).then(|| slot.target_topic.clone())?
                    }
                    None => state.known.get(&(topic.clone(), *partition))?.0.clone(),
                };
                Some(Owned {
                    topic: topic.clone(),
                    partition: *partition,
                    target_topic,
                })
            })
            .collect()
    }

    /// One pass over the selected groups.
    pub(super) fn round(&mut self, source: &BaseConsumer, target: &BaseConsumer) {
        let owned = self.owned();
        if owned.is_empty() {
            return;
        }
        let groups: Vec<String> = match source.fetch_group_list(None, self.timeout) {
            Ok(list) => list
                .groups()
                .iter()
                .map(|g| g.name().to_owned())
                .filter(|g| *g != self.own_group && self.matcher.matches(g))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "group sync: listing the source's groups failed");
                return;
            }
        };
        for group in groups {
            if self.stopped() {
                return;
            }
            let outcome = self.sync_group(&group, &owned, target);
            let update = |change: &dyn Fn(&mut GroupSyncReport)| {
                self.shared.metrics.update_group_sync(&group, |r| change(r));
            };
            match outcome {
                Ok(0) => update(&|r| {
                    r.skipped = Some(
                        "up to date: the target offsets are at or past the translated ones,                          or nothing is translatable yet"
                            .into(),
                    )
                }),
                Ok(n) => update(&|r| {
                    r.last_sync_unix_ms = now_unix_ms();
                    r.partitions = n;
                    r.skipped = None;
                }),
                Err(reason) => {
                    tracing::info!(group, %reason, "group sync skipped");
                    update(&|r| r.skipped = Some(reason.clone()));
                }
            }
        }
    }

    fn handles(&mut self, group: &str) -> Result<&(BaseConsumer, BaseConsumer), String> {
        if !self.handles.contains_key(group) {
            let make = |config: &ClientConfig| -> Result<BaseConsumer, String> {
                let mut config = config.clone();
                config
                    .set("group.id", group)
                    .set("enable.auto.commit", "false");
                config.create().map_err(|e| e.to_string())
            };
            let pair = (make(&self.source_config)?, make(&self.target_config)?);
            self.handles.insert(group.to_owned(), pair);
        }
        self.handles
            .get(group)
            .ok_or_else(|| "no client for the group".to_owned())
    }

    /// Writes `group`'s translated offsets on the target; the number of
    /// partitions written, or why nothing was.
    fn sync_group(
        &mut self,
        group: &str,
        owned: &[Owned],
        target: &BaseConsumer,
    ) -> Result<u64, String> {
        let timeout = self.timeout;
        let described = target
            .fetch_group_list(Some(group), timeout)
            .map_err(|e| format!("describing the group on the target: {e}"))?;
        if let Some(g) = described.groups().iter().find(|g| g.name() == group) {
            if !inactive(g.state(), g.members().len()) {
                return Err(format!(
                    "the group has {} active member(s) on the target (state {})",
                    g.members().len(),
                    g.state()
                ));
            }
        }
        let shared = self.shared.clone();
        let (source_handle, target_handle) = self.handles(group)?;
        let mut source_tpl = TopicPartitionList::new();
        let mut target_tpl = TopicPartitionList::new();
        for o in owned {
            source_tpl.add_partition(&o.topic, o.partition);
            target_tpl.add_partition(&o.target_topic, o.partition);
        }
        let source_committed = committed(source_handle, source_tpl, timeout)
            .map_err(|e| format!("reading the group's offsets on the source: {e}"))?;
        let target_committed = committed(target_handle, target_tpl, timeout)
            .map_err(|e| format!("reading the group's offsets on the target: {e}"))?;
        let writes = {
            let state = shared.lock();
            plan(
                owned,
                &source_committed,
                |t, p, o| state.translate(t, p, o),
                &target_committed,
            )
        };
        if writes.is_empty() {
            return Ok(0);
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in &writes {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .map_err(|e| e.to_string())?;
        }
        // A non-member commit: the broker refuses it once the group has
        // members, so a consumer that joined meanwhile is never moved.
        target_handle
            .commit(&tpl, CommitMode::Sync)
            .map_err(|e| format!("writing the group's offsets on the target: {e}"))?;
        tracing::info!(group, partitions = writes.len(), "group offsets synced");
        Ok(writes.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(topic: &str, partition: i32) -> Owned {
        Owned {
            topic: topic.into(),
            partition,
            target_topic: format!("{topic}.copy"),
        }
    }

    #[test]
    fn plans_forward_moves_of_translatable_offsets_only() {
        let owned = vec![owned("t", 0), owned("t", 1), owned("t", 2), owned("t", 3)];
        let source: BTreeMap<_, _> = [
            (("t".to_string(), 0), 100),
            (("t".to_string(), 1), 50),
            (("t".to_string(), 2), 5),
        ]
        .into();
        // Partition 2's committed offset is before anything mirrored.
        let translate = |_: &str, p: i32, o: i64| (p != 2).then_some(o + 1000);
        let target: BTreeMap<_, _> = [
            (("t.copy".to_string(), 0), 900),
            (("t.copy".to_string(), 1), 2000),
        ]
        .into();
        assert_eq!(
            plan(&owned, &source, translate, &target),
            vec![(("t.copy".to_string(), 0), 1100)],
            "1 would move backwards, 2 is not translatable, 3 has no source offset"
        );
    }

    #[test]
    fn only_groups_without_members_are_written() {
        assert!(inactive("Empty", 0));
        assert!(inactive("Dead", 0));
        assert!(inactive("", 0));
        assert!(!inactive("Stable", 1));
        assert!(!inactive("Stable", 0));
        assert!(!inactive("PreparingRebalance", 0));
        assert!(!inactive("Empty", 2));
    }
}
