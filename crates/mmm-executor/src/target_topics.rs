//! Where the records of a source topic go: the target topic's name, and a
//! check (or creation, or growth) of its partitions.
//!
//! A created target topic mirrors its source: the same partition count and
//! the source topic's configuration that gives the data its meaning
//! ([`COPIED_CONFIGS`], read with DescribeConfigs), so that a compacted source
//! stays compacted on the target. Its replication factor is the task's
//! `replication_factor`, else the broker's default; a broker that refuses
//! either fails the task with a message naming the topic, never a silent
//! factor of 1.

use std::time::{Duration, Instant};

use mmm_core::task_data::{Partitioning, TaskData};
use rdkafka::admin::{
    AdminClient, AdminOptions, ConfigEntry, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::{Client, ClientContext, DefaultClientContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::engine::EngineError;

/// The topic configurations copied from a source topic to the target topic
/// the executor creates: those that change what the log keeps and means.
pub const COPIED_CONFIGS: &[&str] = &[
    "cleanup.policy",
    "retention.ms",
    "retention.bytes",
    "max.message.bytes",
    "min.compaction.lag.ms",
    "max.compaction.lag.ms",
    "delete.retention.ms",
    "min.cleanable.dirty.ratio",
    "message.timestamp.type",
    "segment.bytes",
    "segment.ms",
];

/// The partition count of `topic`, `None` when the cluster does not know it.
pub fn partition_count<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    timeout: Duration,
    cluster: &'static str,
) -> Result<Option<i32>, EngineError> {
    let metadata = client
        .fetch_metadata(Some(topic), timeout)
        .map_err(|source| EngineError::Metadata {
            cluster,
            topic: topic.to_owned(),
            source: Box::new(source),
        })?;
    let Some(entry) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    match entry.error() {
        None if !entry.partitions().is_empty() => Ok(Some(entry.partitions().len() as i32)),
        None => Ok(None),
        Some(code) => match RDKafkaErrorCode::from(code) {
            RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic => Ok(None),
            other => Err(EngineError::Metadata {
                cluster,
                topic: topic.to_owned(),
                source: Box::new(KafkaError::MetadataFetch(other)),
            }),
        },
    }
}

/// What the engine needs to know of a target topic.
#[derive(Debug, Clone)]
pub struct Route {
    /// The target topic's name.
    pub target: String,
    /// Whether records keep their source partition number.
    pub preserve: bool,
    /// The source topic's partition count when the route was made: a record
    /// of a higher partition means the source grew.
    pub source_partitions: i32,
}

/// The clients topic preparation talks through.
pub struct Clusters<'a, S: ClientContext, T: ClientContext> {
    /// The source consumer's client (metadata).
    pub source: &'a Client<S>,
    /// The target producer's client (metadata the producer will use).
    pub target: &'a Client<T>,
    /// Admin requests to the source cluster (DescribeConfigs).
    pub source_admin: &'a AdminClient<DefaultClientContext>,
    /// Admin requests to the target cluster (CreateTopics, CreatePartitions).
    pub target_admin: &'a AdminClient<DefaultClientContext>,
}

/// What making a route asks of the two clusters. The engine's clients answer
/// it ([`prepare`]); the unit tests below script the answers, because no broker
/// the tests can start adds partitions to a topic (Tansu answers
/// CreatePartitions with UnsupportedFeature, librdkafka's mock cluster has no
/// such request), so a source that grows mid-stream is only shown there.
pub trait TopicAdmin {
    /// The partition count of `topic` on `cluster` (`source` or `target`),
    /// `None` when the cluster does not know the topic.
    fn partitions(&self, cluster: &'static str, topic: &str) -> Result<Option<i32>, EngineError>;
    /// The configuration of source topic `topic` worth copying.
    fn source_configs(&self, topic: &str) -> Result<Vec<(String, String)>, EngineError>;
    /// Creates target topic `topic`; returns once its partitions show.
    fn create(
        &self,
        topic: &str,
        partitions: i32,
        replication_factor: Option<u16>,
        configs: &[(String, String)],
    ) -> Result<(), EngineError>;
    /// Grows target topic `topic` from `from` to `to` partitions; returns once
    /// they show to the producer.
    fn grow(&self, topic: &str, from: i32, to: i32) -> Result<(), EngineError>;
}

/// The engine's clients, with the timeout of each request.
struct Live<'a, 'b, S: ClientContext, T: ClientContext> {
    clusters: &'a Clusters<'b, S, T>,
    timeout: Duration,
}

impl<S: ClientContext, T: ClientContext> TopicAdmin for Live<'_, '_, S, T> {
    fn partitions(&self, cluster: &'static str, topic: &str) -> Result<Option<i32>, EngineError> {
        match cluster {
            "source" => partition_count(self.clusters.source, topic, self.timeout, cluster),
            _ => partition_count(self.clusters.target, topic, self.timeout, cluster),
        }
    }

    fn source_configs(&self, topic: &str) -> Result<Vec<(String, String)>, EngineError> {
        source_configs(self.clusters.source_admin, topic, self.timeout)
    }

    fn create(
        &self,
        topic: &str,
        partitions: i32,
        replication_factor: Option<u16>,
        configs: &[(String, String)],
    ) -> Result<(), EngineError> {
        create(
            self.clusters,
            topic,
            partitions,
            replication_factor,
            configs,
            self.timeout,
        )
    }

    fn grow(&self, topic: &str, from: i32, to: i32) -> Result<(), EngineError> {
        grow(self.clusters, topic, from, to, self.timeout)
    }
}

/// Resolves, checks and if allowed creates or grows the target topic of `source`.
pub fn prepare<S: ClientContext, T: ClientContext>(
    task: &TaskData,
    clusters: &Clusters<'_, S, T>,
    source: &str,
    timeout: Duration,
) -> Result<Route, EngineError> {
    make_route(task, &Live { clusters, timeout }, source)
}

/// Makes sure `route` covers a record of source partition `partition`: a
/// partition the route has not seen means the source grew, so the route is
/// made again (growing the target) before anything is routed to it.
pub fn cover_partition<S: ClientContext, T: ClientContext>(
    task: &TaskData,
    clusters: &Clusters<'_, S, T>,
    route: &mut Route,
    source: &str,
    partition: i32,
    timeout: Duration,
) -> Result<(), EngineError> {
    cover(task, &Live { clusters, timeout }, route, source, partition)
}

/// [`cover_partition`] through any [`TopicAdmin`].
pub fn cover<A: TopicAdmin>(
    task: &TaskData,
    admin: &A,
    route: &mut Route,
    source: &str,
    partition: i32,
) -> Result<(), EngineError> {
    if partition < route.source_partitions {
        return Ok(());
    }
    tracing::info!(
        topic = source,
        partition,
        known = route.source_partitions,
        "source topic has new partitions"
    );
    let fresh = make_route(task, admin, source)?;
    if partition >= fresh.source_partitions {
        // The consumer saw a partition the source's metadata does not show.
        return Err(EngineError::Metadata {
            cluster: "source",
            topic: source.to_owned(),
            source: Box::new(KafkaError::MetadataFetch(
                RDKafkaErrorCode::UnknownPartition,
            )),
        });
    }
    *route = fresh;
    Ok(())
}

/// [`prepare`] through any [`TopicAdmin`].
pub fn make_route<A: TopicAdmin>(
    task: &TaskData,
    admin: &A,
    source: &str,
) -> Result<Route, EngineError> {
    let target = task.target_topic(source);
    let source_partitions =
        admin
            .partitions("source", source)?
            .ok_or_else(|| EngineError::SourceTopicMissing {
                topic: source.to_owned(),
            })?;
    let target_partitions = match admin.partitions("target", &target)? {
        Some(n) if n < source_partitions && task.create_topics => {
            admin.grow(&target, n, source_partitions)?;
            source_partitions
        }
        Some(n) => n,
        None if task.create_topics => {
            let configs = admin.source_configs(source)?;
            admin.create(
                &target,
                source_partitions,
                task.replication_factor,
                &configs,
            )?;
            source_partitions
        }
        None => {
            return Err(EngineError::TargetTopicMissing {
                source_topic: source.to_owned(),
                target_topic: target,
            })
        }
    };
    let preserve = task.partitioning == Partitioning::Preserve;
    if preserve && target_partitions < source_partitions {
        return Err(EngineError::TooFewTargetPartitions {
            source_topic: source.to_owned(),
            source_partitions,
            target_topic: target,
            target_partitions,
        });
    }
    tracing::info!(
        source,
        target = %target,
        source_partitions,
        target_partitions,
        "target topic ready"
    );
    Ok(Route {
        target,
        preserve,
        source_partitions,
    })
}

/// The configurations of [`COPIED_CONFIGS`] among a topic's described
/// entries, in that order; sensitive and valueless entries are left out.
pub fn copied_configs(entries: &[ConfigEntry]) -> Vec<(String, String)> {
    COPIED_CONFIGS
        .iter()
        .filter_map(|&name| {
            let entry = entries.iter().find(|e| e.name == name)?;
            if entry.is_sensitive {
                return None;
            }
            Some((name.to_owned(), entry.value.clone()?))
        })
        .collect()
}

/// Reads the configuration of source topic `topic` worth copying.
fn source_configs(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<(String, String)>, EngineError> {
    let fail = |reason: String| EngineError::SourceConfig {
        topic: topic.to_owned(),
        reason,
    };
    let options = AdminOptions::new().request_timeout(Some(timeout));
    let results = futures::executor::block_on(
        admin.describe_configs([&ResourceSpecifier::Topic(topic)], &options),
    )
    .map_err(|e| fail(e.to_string()))?;
    match results.into_iter().next() {
        Some(Ok(resource)) => {
            let configs = copied_configs(&resource.entries);
            tracing::info!(topic, ?configs, "source topic configuration");
            Ok(configs)
        }
        Some(Err(code)) => Err(fail(code.to_string())),
        None => Err(fail("the broker returned no result".into())),
    }
}

fn create<S: ClientContext, T: ClientContext>(
    clusters: &Clusters<'_, S, T>,
    topic: &str,
    partitions: i32,
    replication_factor: Option<u16>,
    configs: &[(String, String)],
    timeout: Duration,
) -> Result<(), EngineError> {
    let options = AdminOptions::new().operation_timeout(Some(timeout));
    let fail = |reason: String| EngineError::CreateTopic {
        topic: topic.to_owned(),
        reason,
    };
    // -1 asks for the broker's default replication factor (KIP-464).
    let replication = replication_factor.map_or(-1, i32::from);
    let mut new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    for (key, value) in configs {
        new_topic = new_topic.set(key, value);
    }
    let results =
        futures::executor::block_on(clusters.target_admin.create_topics([&new_topic], &options))
            .map_err(|e| fail(e.to_string()))?;
    match results.into_iter().next() {
        Some(Ok(_)) | Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => {
            tracing::info!(
                topic,
                partitions,
                replication,
                ?configs,
                "created target topic"
            );
            wait_for_partitions(clusters.target, topic, partitions, timeout)
        }
        Some(Err((_, code))) => Err(fail(refusal(code, replication_factor, configs))),
        None => Err(fail("the broker returned no result".into())),
    }
}

/// Why the target refused to create a topic, for the task's failure.
fn refusal(
    code: RDKafkaErrorCode,
    replication_factor: Option<u16>,
    configs: &[(String, String)],
) -> String {
    match (code, replication_factor) {
        (RDKafkaErrorCode::InvalidReplicationFactor, None) => format!(
            "{code}: the broker cannot apply its default replication factor (before \
             Kafka 2.4); set [mirror] replication_factor"
        ),
        (_, rf) => format!(
            "{code} (replication factor {}, configuration {configs:?})",
            rf.map_or("the broker's default".to_owned(), |rf| rf.to_string())
        ),
    }
}

/// Adds partitions to target topic `topic` until it has `partitions`.
fn grow<S: ClientContext, T: ClientContext>(
    clusters: &Clusters<'_, S, T>,
    topic: &str,
    from: i32,
    partitions: i32,
    timeout: Duration,
) -> Result<(), EngineError> {
    let fail = |reason: String| EngineError::GrowTopic {
        topic: topic.to_owned(),
        from,
        to: partitions,
        reason,
    };
    let options = AdminOptions::new().operation_timeout(Some(timeout));
    let count = usize::try_from(partitions).map_err(|_| fail("negative count".into()))?;
    let request = NewPartitions::new(topic, count);
    let results = futures::executor::block_on(
        clusters
            .target_admin
            .create_partitions([&request], &options),
    )
    .map_err(|e| fail(e.to_string()))?;
    match results.into_iter().next() {
        // Another task may have grown it first.
        Some(Ok(_)) | Some(Err((_, RDKafkaErrorCode::InvalidPartitions))) => {
            tracing::info!(topic, from, partitions, "grew target topic");
            wait_for_partitions(clusters.target, topic, partitions, timeout)
        }
        Some(Err((_, code))) => Err(fail(code.to_string())),
        None => Err(fail("the broker returned no result".into())),
    }
}

fn wait_for_partitions<T: ClientContext>(
    client: &Client<T>,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> Result<(), EngineError> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = partition_count(client, topic, timeout, "target")?.unwrap_or(0);
        if seen >= partitions {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(EngineError::CreateTopic {
                topic: topic.to_owned(),
                reason: format!(
                    "metadata shows {seen} of {partitions} partitions after {timeout:?}"
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::admin::ConfigSource;
    use std::cell::{Cell, RefCell};

    fn entry(name: &str, value: Option<&str>, sensitive: bool) -> ConfigEntry {
        ConfigEntry {
            name: name.into(),
            value: value.map(str::to_owned),
            source: ConfigSource::DynamicTopic,
            is_read_only: false,
            is_default: false,
            is_sensitive: sensitive,
        }
    }

    /// Two clusters whose partition counts the test changes: what neither
    /// Tansu nor the mock cluster can do to a topic.
    #[derive(Default)]
    struct Scripted {
        source: Cell<Option<i32>>,
        target: Cell<Option<i32>>,
        refuse_growth: Option<RDKafkaErrorCode>,
        grown: RefCell<Vec<(String, i32, i32)>>,
        created: RefCell<Vec<(String, i32)>>,
    }

    impl TopicAdmin for Scripted {
        fn partitions(&self, cluster: &'static str, _: &str) -> Result<Option<i32>, EngineError> {
            Ok(match cluster {
                "source" => self.source.get(),
                _ => self.target.get(),
            })
        }

        fn source_configs(&self, _: &str) -> Result<Vec<(String, String)>, EngineError> {
            Ok(Vec::new())
        }

        fn create(
            &self,
            topic: &str,
            partitions: i32,
            _: Option<u16>,
            _: &[(String, String)],
        ) -> Result<(), EngineError> {
            self.created
                .borrow_mut()
                .push((topic.to_owned(), partitions));
            self.target.set(Some(partitions));
            Ok(())
        }

        fn grow(&self, topic: &str, from: i32, to: i32) -> Result<(), EngineError> {
            if let Some(code) = self.refuse_growth {
                return Err(EngineError::GrowTopic {
                    topic: topic.to_owned(),
                    from,
                    to,
                    reason: code.to_string(),
                });
            }
            assert_eq!(self.target.get(), Some(from), "grown from its real count");
            self.grown.borrow_mut().push((topic.to_owned(), from, to));
            self.target.set(Some(to));
            Ok(())
        }
    }

    fn task(partitioning: Partitioning, create_topics: bool) -> TaskData {
        let mut task = TaskData::new(
            1,
            Default::default(),
            Default::default(),
            mmm_core::task_data::TopicSelection::List(vec!["events".into()]),
        );
        task.partitioning = partitioning;
        task.create_topics = create_topics;
        task.target_topic_prefix = "copy.".into();
        task
    }

    fn clusters(source: i32, target: Option<i32>) -> Scripted {
        let admin = Scripted::default();
        admin.source.set(Some(source));
        admin.target.set(target);
        admin
    }

    #[test]
    fn a_source_grown_mid_stream_grows_the_target_before_a_record_is_routed_there() {
        let task = task(Partitioning::Preserve, true);
        let admin = clusters(3, None);
        let mut route = make_route(&task, &admin, "events").expect("route");
        assert_eq!(*admin.created.borrow(), vec![("copy.events".to_owned(), 3)]);
        assert_eq!(route.source_partitions, 3);
        admin.source.set(Some(5));
        // Records of every partition, old and new, in the order a consumer
        // may hand them over: each is routed only to a partition the target has.
        for partition in [0, 2, 4, 3, 1, 4] {
            cover(&task, &admin, &mut route, "events", partition).expect("covered");
            assert!(route.preserve);
            let target = admin.target.get().expect("target topic");
            assert!(
                partition < target,
                "partition {partition} routed to a target of {target}"
            );
        }
        assert_eq!(route.source_partitions, 5);
        assert_eq!(route.target, "copy.events");
        assert_eq!(
            *admin.grown.borrow(),
            vec![("copy.events".to_owned(), 3, 5)],
            "grown once, before the first record of a new partition"
        );
    }

    #[test]
    fn a_partition_the_source_metadata_does_not_show_is_never_routed() {
        let task = task(Partitioning::Preserve, true);
        let admin = clusters(3, Some(3));
        let mut route = make_route(&task, &admin, "events").expect("route");
        // The consumer saw partition 3; the source's metadata still says 3.
        let err = cover(&task, &admin, &mut route, "events", 3).expect_err("not routable");
        let text = err.to_string();
        assert!(
            matches!(&err, EngineError::Metadata { cluster: "source", topic, .. } if topic == "events"),
            "{text}"
        );
        assert!(text.contains("Unknown partition"), "{text}");
        assert!(admin.grown.borrow().is_empty());
        assert_eq!(route.source_partitions, 3);
    }

    #[test]
    fn a_refused_growth_fails_the_task_naming_the_target_and_counts() {
        let task = task(Partitioning::Preserve, true);
        let mut admin = clusters(2, Some(2));
        admin.refuse_growth = Some(RDKafkaErrorCode::UnsupportedFeature);
        let mut route = make_route(&task, &admin, "events").expect("route");
        admin.source.set(Some(4));
        let err = cover(&task, &admin, &mut route, "events", 2).expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("copy.events") && text.contains("2 to 4"),
            "{text}"
        );
        assert_eq!(route.source_partitions, 2, "the old route is kept");
    }

    #[test]
    fn without_topic_creation_preserve_fails_and_hash_keeps_the_target() {
        let admin = clusters(2, Some(2));
        let preserve = task(Partitioning::Preserve, false);
        let mut route = make_route(&preserve, &admin, "events").expect("route");
        admin.source.set(Some(3));
        match cover(&preserve, &admin, &mut route, "events", 2) {
            Err(EngineError::TooFewTargetPartitions {
                source_partitions: 3,
                target_partitions: 2,
                ..
            }) => {}
            other => panic!("expected too few target partitions, got {other:?}"),
        }
        let hash = task(Partitioning::Hash, false);
        let mut route = make_route(&hash, &admin, "events").expect("route");
        route.source_partitions = 2;
        cover(&hash, &admin, &mut route, "events", 2).expect("hash spreads over 2");
        assert!(!route.preserve);
        assert_eq!(route.source_partitions, 3);
        assert!(admin.grown.borrow().is_empty());
        assert_eq!(admin.target.get(), Some(2));
    }

    #[test]
    fn a_refused_replication_factor_is_explained_never_replaced() {
        let text = refusal(RDKafkaErrorCode::InvalidReplicationFactor, Some(3), &[]);
        assert!(text.contains("replication factor 3"), "{text}");
        let text = refusal(RDKafkaErrorCode::InvalidReplicationFactor, None, &[]);
        assert!(text.contains("[mirror] replication_factor"), "{text}");
        let configs = [("cleanup.policy".to_owned(), "compact".to_owned())];
        let text = refusal(RDKafkaErrorCode::PolicyViolation, None, &configs);
        assert!(
            text.contains("the broker's default") && text.contains("compact"),
            "{text}"
        );
    }

    #[test]
    fn the_meaningful_configs_of_a_compacted_source_are_copied() {
        let entries = vec![
            entry("segment.jitter.ms", Some("0"), false),
            entry("retention.ms", Some("86400000"), false),
            entry("cleanup.policy", Some("compact"), false),
            entry("min.compaction.lag.ms", Some("1000"), false),
            entry("message.timestamp.type", Some("LogAppendTime"), false),
            entry("max.message.bytes", Some("2097152"), false),
            entry("retention.bytes", None, false),
            entry("min.cleanable.dirty.ratio", Some("0.1"), true),
        ];
        assert_eq!(
            copied_configs(&entries),
            vec![
                ("cleanup.policy".to_owned(), "compact".to_owned()),
                ("retention.ms".to_owned(), "86400000".to_owned()),
                ("max.message.bytes".to_owned(), "2097152".to_owned()),
                ("min.compaction.lag.ms".to_owned(), "1000".to_owned()),
                (
                    "message.timestamp.type".to_owned(),
                    "LogAppendTime".to_owned()
                ),
            ]
        );
    }
}
