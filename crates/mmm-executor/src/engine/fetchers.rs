//! The source consumers: the group member alone on a LAN; the member and fetch-only consumers
//! across a long link.
//!
//! librdkafka keeps one fetch in flight per broker connection, so a consumer gets at most one
//! broker answer per round trip, and a broker that caps its answers (Tansu at 5 MiB whatever it
//! is asked) bounds it at that answer ÷ round trip: 46 MB/s at 100 ms. Several consumers have
//! several fetches in flight ([`crate::windows::source_consumers_for`]).
//!
//! Only the group member joins the group: it keeps the membership, the assignment and every
//! commit, so the group sees one member per executor and nothing else changes in how offsets
//! move. It hands a share of each assignment to fetch-only consumers (`incremental_assign`, never
//! `subscribe`, so they join no group) and pauses that share itself. A fetcher starts a partition
//! at the group's committed offset (it reads it with the same `group.id`), else where
//! `auto.offset.reset` says, exactly where the member would have started. Revoked partitions
//! leave their fetcher before they are drained and committed, so nothing is read past a revoke.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};

use super::callbacks::{forward_log, record_statistics};
use super::state::Shared;

/// Records taken from one consumer before the next one's turn, so that every consumer's
/// prefetch queue keeps draining (a full queue stops its fetches).
const RECORDS_PER_TURN: u32 = 1_000;

/// How long an idle loop waits in the member's queue when other consumers may get records
/// meanwhile (a wait in one consumer does not wake up for another's records).
const IDLE_WAIT: Duration = Duration::from_millis(2);

/// A fetch-only consumer's callbacks: its log and its statistics (the lag of its partitions).
pub(super) struct FetchContext {
    shared: Arc<Shared>,
    /// Its index among the source consumers (the member is 0).
    index: usize,
}

impl ClientContext for FetchContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        forward_log("fetcher", level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Counted where the loop receives the same error from `poll`.
        tracing::warn!(client = "fetcher", index = self.index, %error, "librdkafka: {reason}");
    }

    fn stats(&self, statistics: Statistics) {
        // A fetcher's assignment is exactly the partitions handed to it.
        record_statistics(&self.shared, self.index, &statistics, |_, _| true);
    }
}

impl ConsumerContext for FetchContext {}

/// Which consumer reads each assigned partition (0: the member).
#[derive(Debug, Default)]
struct Owners {
    by_topic: HashMap<String, HashMap<i32, usize>>,
    /// Partitions per consumer, the member first.
    load: Vec<usize>,
}

impl Owners {
    fn owner(&self, topic: &str, partition: i32) -> Option<usize> {
        self.by_topic.get(topic)?.get(&partition).copied()
    }

    /// The least loaded consumer (the member on a tie) takes the partition.
    fn take(&mut self, topic: &str, partition: i32) -> usize {
        if let Some(owner) = self.owner(topic, partition) {
            return owner;
        }
        let owner = (0..self.load.len())
            .min_by_key(|&i| (self.load[i], i))
            .unwrap_or(0);
        self.give(topic, partition, owner);
        owner
    }

    fn give(&mut self, topic: &str, partition: i32, owner: usize) {
        if let Some(load) = self.load.get_mut(owner) {
            *load += 1;
        }
        self.by_topic
            .entry(topic.to_owned())
            .or_default()
            .insert(partition, owner);
    }

    /// The member reads the partition itself: a partition must be read by someone.
    fn back_to_member(&mut self, topic: &str, partition: i32) {
        self.release(topic, partition);
        self.give(topic, partition, 0);
    }

    fn release(&mut self, topic: &str, partition: i32) -> Option<usize> {
        let owners = self.by_topic.get_mut(topic)?;
        let owner = owners.remove(&partition)?;
        if owners.is_empty() {
            self.by_topic.remove(topic);
        }
        if let Some(load) = self.load.get_mut(owner) {
            *load = load.saturating_sub(1);
        }
        Some(owner)
    }
}

/// Whose turn it is to be polled.
#[derive(Debug, Default)]
pub(super) struct Turn {
    index: usize,
    taken: u32,
}

/// The fetch-only consumers and who reads what.
pub(super) struct Fetchers {
    extra: Vec<BaseConsumer<FetchContext>>,
    owners: Mutex<Owners>,
    shared: Arc<Shared>,
}

impl Fetchers {
    /// `consumers` source consumers in all: the member (created elsewhere) and `consumers - 1`
    /// fetchers configured like it.
    pub(super) fn create(
        member_config: &ClientConfig,
        consumers: usize,
        shared: &Arc<Shared>,
    ) -> KafkaResult<Fetchers> {
        let mut config = member_config.clone();
        // A fetcher never joins the group; a static member's id belongs to the member alone.
        config.remove("group.instance.id");
        let extra = (1..consumers.max(1))
            .map(|index| {
                config.create_with_context(FetchContext {
                    shared: shared.clone(),
                    index,
                })
            })
            .collect::<KafkaResult<Vec<_>>>()?;
        let owners = Owners {
            load: vec![0; extra.len() + 1],
            ..Owners::default()
        };
        Ok(Fetchers {
            extra,
            owners: Mutex::new(owners),
            shared: shared.clone(),
        })
    }

    /// The source consumers, the member included.
    pub(super) fn consumers(&self) -> usize {
        self.extra.len() + 1
    }

    fn owners(&self) -> MutexGuard<'_, Owners> {
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count_handed_off(&self, owners: &Owners) {
        let handed: usize = owners.load.iter().skip(1).sum();
        self.shared
            .metrics
            .partitions_handed_off
            .store(handed as u64, Ordering::Relaxed);
    }

    /// Whether a fetcher, not the member, reads this partition.
    pub(super) fn handed_off(&self, topic: &str, partition: i32) -> bool {
        !self.extra.is_empty() && self.owners().owner(topic, partition).is_some_and(|o| o > 0)
    }

    /// Shares newly assigned partitions out: the member pauses those a fetcher reads, and
    /// resumes its own (a pause outlives an assignment in librdkafka).
    pub(super) fn hand_out<C: ConsumerContext>(
        &self,
        member: &BaseConsumer<C>,
        assigned: &TopicPartitionList,
    ) {
        if self.extra.is_empty() {
            return;
        }
        let mut lists: Vec<TopicPartitionList> = (0..self.consumers())
            .map(|_| TopicPartitionList::new())
            .collect();
        {
            let mut owners = self.owners();
            for e in assigned.elements() {
                let owner = owners.take(e.topic(), e.partition());
                let offset = if owner == 0 {
                    e.offset()
                } else {
                    Offset::Stored
                };
                if let Err(err) =
                    lists[owner].add_partition_offset(e.topic(), e.partition(), offset)
                {
                    tracing::warn!(error = %err, topic = e.topic(), partition = e.partition(), "partition not handed out");
                    owners.back_to_member(e.topic(), e.partition());
                    let _ = lists[0].add_partition(e.topic(), e.partition());
                }
            }
        }
        let mut handed = TopicPartitionList::new();
        let mut taken_back = TopicPartitionList::new();
        for (i, list) in lists.iter().enumerate().skip(1) {
            if list.count() == 0 {
                continue;
            }
            let fetcher = &self.extra[i - 1];
            match fetcher.incremental_assign(list) {
                Ok(()) => {
                    // A pause of an earlier assignment would outlive it.
                    if let Err(err) = fetcher.resume(list) {
                        tracing::warn!(error = %err, fetcher = i, "resuming a fetcher's partitions failed");
                    }
                    for e in list.elements() {
                        let _ = handed.add_partition(e.topic(), e.partition());
                    }
                }
                Err(err) => {
                    // The member reads them itself rather than nobody.
                    tracing::warn!(error = %err, fetcher = i, "handing partitions to a fetcher failed");
                    let mut owners = self.owners();
                    for e in list.elements() {
                        owners.back_to_member(e.topic(), e.partition());
                        let _ = taken_back.add_partition(e.topic(), e.partition());
                    }
                }
            }
        }
        if handed.count() > 0 {
            if let Err(err) = member.pause(&handed) {
                tracing::warn!(error = %err, "pausing the member's handed-off partitions failed");
            }
        }
        self.count_handed_off(&self.owners());
        let mut own = taken_back;
        for e in lists[0].elements() {
            let _ = own.add_partition(e.topic(), e.partition());
        }
        if own.count() > 0 {
            if let Err(err) = member.resume(&own) {
                tracing::warn!(error = %err, "resuming the member's partitions failed");
            }
        }
        tracing::info!(
            partitions = assigned.count(),
            handed_off = handed.count(),
            consumers = self.consumers(),
            "partitions shared out among the source consumers"
        );
    }

    /// Takes revoked partitions back from their fetchers (which drop what they prefetched).
    pub(super) fn take_back(&self, revoked: &TopicPartitionList) {
        if self.extra.is_empty() {
            return;
        }
        let mut lists: Vec<TopicPartitionList> = (0..self.extra.len())
            .map(|_| TopicPartitionList::new())
            .collect();
        {
            let mut owners = self.owners();
            for e in revoked.elements() {
                if let Some(owner) = owners.release(e.topic(), e.partition()).filter(|&o| o > 0) {
                    let _ = lists[owner - 1].add_partition(e.topic(), e.partition());
                }
            }
        }
        self.count_handed_off(&self.owners());
        for (fetcher, list) in self.extra.iter().zip(&lists) {
            if list.count() == 0 {
                continue;
            }
            if let Err(err) = fetcher.incremental_unassign(list) {
                tracing::warn!(error = %err, "taking partitions back from a fetcher failed");
            }
        }
    }

    /// Pauses or resumes every assigned partition where it is read.
    pub(super) fn set_paused<C: ConsumerContext>(
        &self,
        member: &BaseConsumer<C>,
        pause: bool,
    ) -> KafkaResult<()> {
        let mut own = member.assignment()?;
        if !self.extra.is_empty() {
            let owners = self.owners();
            let mut mine = TopicPartitionList::new();
            for e in own.elements() {
                if owners.owner(e.topic(), e.partition()).unwrap_or(0) == 0 {
                    let _ = mine.add_partition(e.topic(), e.partition());
                }
            }
            own = mine;
        }
        pause_or_resume(member, &own, pause)?;
        for fetcher in &self.extra {
            pause_or_resume(fetcher, &fetcher.assignment()?, pause)?;
        }
        Ok(())
    }

    /// The next record or error of any source consumer; records the member fetched of a
    /// partition a fetcher reads are dropped (the fetcher reads them from the committed offset).
    pub(super) fn poll<'a, C: ConsumerContext>(
        &'a self,
        member: &'a BaseConsumer<C>,
        turn: &mut Turn,
        timeout: Duration,
    ) -> Option<KafkaResult<BorrowedMessage<'a>>> {
        if self.extra.is_empty() {
            return member.poll(timeout);
        }
        let n = self.consumers();
        for _ in 0..=n {
            let index = turn.index % n;
            let polled = if index == 0 {
                member.poll(Duration::ZERO)
            } else {
                self.extra[index - 1].poll(Duration::ZERO)
            };
            match polled {
                Some(Ok(m)) if index == 0 && self.handed_off(m.topic(), m.partition()) => {}
                Some(result) => {
                    turn.taken += 1;
                    if turn.taken >= RECORDS_PER_TURN {
                        turn.index = (index + 1) % n;
                        turn.taken = 0;
                    }
                    return Some(result);
                }
                None => {
                    turn.index = (index + 1) % n;
                    turn.taken = 0;
                }
            }
        }
        if timeout.is_zero() {
            return None;
        }
        match member.poll(timeout.min(IDLE_WAIT)) {
            Some(Ok(m)) if self.handed_off(m.topic(), m.partition()) => None,
            polled => polled,
        }
    }
}

fn pause_or_resume<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    list: &TopicPartitionList,
    pause: bool,
) -> KafkaResult<()> {
    if list.count() == 0 {
        return Ok(());
    }
    if pause {
        consumer.pause(list)
    } else {
        consumer.resume(list)
    }
}

#[cfg(test)]
mod tests {
    use super::Owners;

    #[test]
    fn partitions_go_to_the_least_loaded_consumer_and_come_back() {
        let mut owners = Owners {
            load: vec![0; 3],
            ..Owners::default()
        };
        let got: Vec<usize> = (0..8).map(|p| owners.take("t", p)).collect();
        assert_eq!(got, vec![0, 1, 2, 0, 1, 2, 0, 1]);
        assert_eq!(owners.load, vec![3, 3, 2]);
        assert_eq!(owners.take("t", 4), 1, "a partition keeps its owner");
        assert_eq!(owners.release("t", 4), Some(1));
        assert_eq!(owners.release("t", 4), None, "released once");
        assert_eq!(owners.owner("t", 4), None);
        assert_eq!(owners.load, vec![3, 2, 2]);
        assert_eq!(
            owners.take("u", 0),
            1,
            "the lowest index among the least loaded"
        );
        for p in 0..8 {
            owners.release("t", p);
        }
        owners.release("u", 0);
        assert_eq!(owners.load, vec![0, 0, 0]);
        assert!(owners.by_topic.is_empty());
    }
}
