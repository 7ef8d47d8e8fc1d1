//! The replication engine: consume from the source, produce to the target,
//! commit what the target acknowledged.
//!
//! One thread runs a loop over a `BaseConsumer` and its `BaseProducer`s (one on a
//! LAN, several across a long link: [`producers`]). Delivery
//! reports and rebalance callbacks fire inside that loop's `poll` calls, so the
//! shared state's lock is never contended; it exists because the callbacks
//! only get `&self`.

mod callbacks;
mod error;
mod fetchers;
mod group_sync;
mod producers;
mod provenance;
mod stall;
mod state;
mod syncs;
mod worker;

pub use error::EngineError;

use callbacks::RebalanceContext;
use producers::Producers;
use state::{Shared, State};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use worker::{Routes, Worker};

use mmm_core::task_data::{Partitioning, TaskData, TopicSelection};
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio::sync::oneshot;

use crate::kafka_config::{
    admin_config, consumer_config, consumer_config_for, producer_config, producer_config_for,
};
use crate::metrics::Metrics;
use crate::windows::{
    measure_round_trip, probe_cluster, producer_reach, source_consumers_for, target_producers_for,
    RoundTrips, Side, Windows,
};

/// Bounds and timeouts of the engine.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Records handed to the producer and not yet acknowledged, at most.
    pub max_in_flight_records: usize,
    /// Key and value bytes in flight, at most.
    pub max_in_flight_bytes: usize,
    /// How long a revoke waits for the revoked partitions' deliveries;
    /// `None`: the group's `session.timeout.ms` (librdkafka's default 45 s),
    /// after which the partitions' new owner reads them anyway.
    pub revoke_drain_timeout: Option<Duration>,
    /// Metadata and topic creation calls.
    pub metadata_timeout: Duration,
    /// Whether the windows (fetch sizes, prefetch queue, and the two in-flight
    /// bounds above, as floors) follow the measured round trips
    /// ([`crate::windows`]); off when the in-flight bounds were set explicitly.
    pub follow_round_trip: bool,
    /// Producers the records are spread over; `None`: as many as the round
    /// trip to the target needs ([`crate::windows::target_producers`]).
    pub target_producers: Option<usize>,
    /// Consumers reading the source, the group member included; `None`: as
    /// many as the round trip to the source needs ([`crate::windows::source_consumers_for`]).
    pub source_consumers: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // Measured on a LAN (200-byte records): 10,000 cost about a tenth of the rate,
            // 20,000 bought no speed over 15,000 and took about 5 MB more.
            max_in_flight_records: 15_000,
            max_in_flight_bytes: 8 * 1024 * 1024,
            revoke_drain_timeout: None,
            metadata_timeout: Duration::from_secs(10),
            follow_round_trip: true,
            target_producers: None,
            source_consumers: None,
        }
    }
}

/// The group's session timeout: librdkafka's default unless the consumer sets one.
fn session_timeout(consumer: &mmm_core::task_data::Properties) -> Duration {
    consumer
        .get("session.timeout.ms")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(45), Duration::from_millis)
}

/// What a stopped engine leaves behind.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The offsets last committed, per (topic, partition).
    pub committed: BTreeMap<(String, i32), i64>,
    /// Records still in flight when the engine stopped (0 after a full drain).
    pub undelivered: usize,
}

/// The outcome of the engine thread.
pub type EngineResult = Result<Summary, EngineError>;

/// Stop requests from the outside.
#[derive(Debug, Default)]
struct Control {
    stop: AtomicBool,
    /// Milliseconds from `started` by which the drain must be over.
    drain_deadline_ms: AtomicU64,
    started: Option<Instant>,
}

/// A topic name for the metadata requests that time the round trips.
const ROUND_TRIP_PROBE_TOPIC: &str = "mmm-round-trip-probe";

/// How long the first metadata request to a cluster may take (connection
/// included) before its windows stay at their LAN sizes.
const ROUND_TRIP_BUDGET: Duration = Duration::from_secs(2);

/// Measures the round trip to both clusters and sizes the windows for it; the
/// in-flight bounds of `limits` stay as floors. `target_producers` and
/// `source_consumers` of the returned limits are always set, and the consumer
/// windows returned are those of one of the source consumers.
fn size_windows(task: &TaskData, mut limits: Limits) -> (Windows, Limits) {
    if !limits.follow_round_trip {
        limits.target_producers = Some(limits.target_producers.unwrap_or(1));
        limits.source_consumers = Some(limits.source_consumers.unwrap_or(1));
        return (Windows::default(), limits);
    }
    let probe = match &task.topics {
        TopicSelection::List(names) => names.first().map_or(ROUND_TRIP_PROBE_TOPIC, String::as_str),
        TopicSelection::Regex(_) => ROUND_TRIP_PROBE_TOPIC,
    };
    // Both at once, and briefly: the launch waits for this, and a cluster
    // that is down must not hold up the task's RUNNING or KILLED update.
    let timeout = limits.metadata_timeout.min(ROUND_TRIP_BUDGET);
    let (consumer, producer) = (
        consumer_config(&task.consumer),
        producer_config(&task.producer),
    );
    let (source, target) = std::thread::scope(|scope| {
        let source = scope.spawn(|| probe_cluster(&consumer, Side::Source, probe, timeout));
        let target = measure_round_trip(&producer, Side::Target, probe, timeout);
        (source.join().ok().flatten(), target)
    });
    // The source partitions, roughly: the probe topic's times the topics listed (none known
    // for a regex, which may match any number).
    let source_partitions = match &task.topics {
        TopicSelection::List(names) => source
            .and_then(|s| s.partitions)
            .map(|n| n.saturating_mul(names.len())),
        TopicSelection::Regex(_) => None,
    };
    let source = source.map(|s| s.round_trip);
    // A cluster that does not answer yet gets LAN windows, as before there were any.
    let rtt = RoundTrips {
        source: source.unwrap_or_default(),
        target: target.unwrap_or_default(),
    };
    let windows = Windows::for_round_trips(rtt);
    limits.max_in_flight_bytes = limits
        .max_in_flight_bytes
        .max(usize::try_from(windows.in_flight_bytes).unwrap_or(usize::MAX));
    limits.max_in_flight_records = limits
        .max_in_flight_records
        .max(usize::try_from(windows.in_flight_records).unwrap_or(usize::MAX));
    let (requests, batch_bytes) = producer_reach(&producer);
    let producers = limits.target_producers.unwrap_or_else(|| {
        target_producers_for(rtt.target, requests, batch_bytes, source_partitions)
    });
    limits.target_producers = Some(producers);
    let consumers = limits
        .source_consumers
        .unwrap_or_else(|| source_consumers_for(rtt.source, source_partitions));
    limits.source_consumers = Some(consumers);
    let per_consumer = source_partitions.map(|p| p.div_ceil(consumers.max(1)));
    let windows = windows.shared_by(consumers).spread_over(per_consumer);
    // The fetch figures are each source consumer's.
    tracing::info!(
        source_rtt_ms = rtt.source.as_secs_f64() * 1000.0,
        target_rtt_ms = rtt.target.as_secs_f64() * 1000.0,
        fetch_max_bytes = windows.fetch_max_bytes,
        partition_fetch_bytes = windows.partition_fetch_bytes,
        prefetch_kbytes = windows.prefetch_kbytes,
        in_flight_bytes = limits.max_in_flight_bytes,
        in_flight_records = limits.max_in_flight_records,
        target_producers = producers,
        source_consumers = consumers,
        source_partitions,
        "windows sized for the round trips"
    );
    (windows, limits)
}

/// A running engine.
pub struct Engine {
    control: Arc<Control>,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    result: Option<oneshot::Receiver<EngineResult>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// Creates the clients, subscribes, and starts replicating on a thread of its own.
    pub fn start(task: TaskData, limits: Limits) -> Result<Engine, EngineError> {
        let (windows, limits) = size_windows(&task, limits);
        let metrics = Arc::new(Metrics::default());
        let syncs = syncs::SyncPublisher::new(&task, metrics.clone(), limits.metadata_timeout)
            .map_err(|source| EngineError::Config {
                client: "producer",
                source: Box::new(source),
            })?;
        let mut state = State::default();
        // The mapping is per source partition into the same target
        // partition; other partitionings spread one over many.
        state.map_offsets = syncs.is_some() && task.partitioning == Partitioning::Preserve;
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            metrics: metrics.clone(),
            generation: AtomicU64::new(0),
            syncs,
        });
        let producers = Producers::create(
            &producer_config_for(&task.producer, &windows),
            limits.target_producers.unwrap_or(1),
            &shared,
        )
        .map_err(|source| EngineError::Config {
            client: "producer",
            source: Box::new(source),
        })?;
        let producers = Arc::new(producers);
        let admin: AdminClient<DefaultClientContext> = producer_config(&task.producer)
            .create()
            .map_err(|source| EngineError::Config {
                client: "producer",
                source: Box::new(source),
            })?;
        let source_admin: AdminClient<DefaultClientContext> = admin_config(&task.consumer)
            .create()
            .map_err(|source| EngineError::Config {
                client: "consumer",
                source: Box::new(source),
            })?;
        let drain_timeout = limits
            .revoke_drain_timeout
            .unwrap_or_else(|| session_timeout(&task.consumer));
        let consumers = limits.source_consumers.unwrap_or(1);
        let member_config = consumer_config_for(&task.consumer, &windows);
        let fetchers = Arc::new(
            fetchers::Fetchers::create(&member_config, consumers, &shared).map_err(|source| {
                EngineError::Config {
                    client: "consumer",
                    source: Box::new(source),
                }
            })?,
        );
        let consumer: BaseConsumer<RebalanceContext> = member_config
            .create_with_context(RebalanceContext {
                shared: shared.clone(),
                producers: producers.clone(),
                drain_timeout,
                fetchers: fetchers.clone(),
            })
            .map_err(|source| EngineError::Config {
                client: "consumer",
                source: Box::new(source),
            })?;
        let subscription = match &task.topics {
            TopicSelection::List(names) => names.clone(),
            TopicSelection::Regex(pattern) => vec![TopicSelection::regex_subscription(pattern)],
        };
        let refs: Vec<&str> = subscription.iter().map(String::as_str).collect();
        consumer
            .subscribe(&refs)
            .map_err(|source| EngineError::Subscribe {
                what: subscription.join(","),
                source: Box::new(source),
            })?;
        tracing::info!(topics = ?subscription, "subscribed");

        let control = Arc::new(Control {
            started: Some(Instant::now()),
            ..Control::default()
        });
        // Translation needs the mapping: no group sync without offset syncs
        // (validation refuses sync_groups without partitions preserved).
        let group_sync = if shared.lock().map_offsets {
            group_sync::GroupSync::new(
                &task,
                shared.clone(),
                control.clone(),
                limits.metadata_timeout,
            )
        } else {
            None
        };
        let group_sync_thread = match group_sync {
            Some(sync) => Some(
                std::thread::Builder::new()
                    .name("group-sync".into())
                    .spawn(move || sync.run())
                    .map_err(|e| EngineError::Crashed(e.to_string()))?,
            ),
            None => None,
        };
        syncs::load_in_background(&task, &shared, limits.metadata_timeout);
        let (tx, rx) = oneshot::channel();
        let shared_for_engine = shared.clone();
        let stop_group_sync = control.clone();
        let worker = Worker {
            task,
            limits,
            consumer,
            fetchers,
            turn: Default::default(),
            producers,
            admin,
            source_admin,
            shared,
            control: control.clone(),
            routes: Routes::default(),
            stall: Default::default(),
            provenance: None,
        };
        let thread = std::thread::Builder::new()
            .name("replication".into())
            .spawn(move || {
                let result = worker.run();
                if let Err(err) = &result {
                    tracing::error!(error = %err, "replication stopped");
                }
                // The group sync ends at its next check (not waited for: a
                // round's requests must not delay the task's end).
                stop_group_sync.stop.store(true, Ordering::Release);
                drop(group_sync_thread);
                let _ = tx.send(result);
            })
            .map_err(|e| {
                control.stop.store(true, Ordering::Release);
                EngineError::Crashed(e.to_string())
            })?;
        Ok(Engine {
            control,
            shared: shared_for_engine,
            metrics,
            result: Some(rx),
            thread: Some(thread),
        })
    }

    /// The engine's counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The target offset where a consumer group that committed source offset
    /// `offset` of `topic`/`partition` resumes on the target without skipping
    /// a record, from the mapping this engine knows (its own deliveries and
    /// what it read back from the sync topic); `None` when it knows nothing
    /// at or before `offset`.
    pub fn translate(&self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        self.shared.lock().translate(topic, partition, offset)
    }

    /// Asks the engine to stop consuming, wait up to `drain_within` for the
    /// records in flight, commit, and leave the group.
    pub fn stop(&self, drain_within: Duration) {
        let started = self.control.started.unwrap_or_else(Instant::now);
        let deadline = started.elapsed() + drain_within;
        self.control
            .drain_deadline_ms
            .store(deadline.as_millis() as u64, Ordering::Release);
        self.control.stop.store(true, Ordering::Release);
    }

    /// The receiver of the engine's outcome (once).
    pub fn take_result(&mut self) -> Option<oneshot::Receiver<EngineResult>> {
        self.result.take()
    }

    /// Lets the thread finish on its own: dropping the engine then no longer
    /// waits for it. For a process that must exit by a deadline.
    pub fn detach(mut self) {
        self.thread.take();
    }

    /// Waits for the engine thread to end and returns its outcome.
    pub fn join(mut self) -> EngineResult {
        let result = match self.result.take() {
            Some(rx) => rx
                .blocking_recv()
                .map_err(|_| EngineError::Crashed("no result".into())),
            None => Err(EngineError::Crashed("the result was already taken".into())),
        };
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                return Err(EngineError::Crashed("the thread panicked".into()));
            }
        }
        result?
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            if !self.control.stop.load(Ordering::Acquire) {
                self.stop(Duration::from_secs(5));
            }
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod session_timeout_tests {
    use super::session_timeout;
    use std::time::Duration;

    #[test]
    fn revoke_waits_up_to_the_groups_session_timeout() {
        let mut props = mmm_core::task_data::Properties::new();
        assert_eq!(session_timeout(&props), Duration::from_secs(45));
        props.insert("session.timeout.ms".into(), "6000".into());
        assert_eq!(session_timeout(&props), Duration::from_millis(6000));
        props.insert("session.timeout.ms".into(), "soon".into());
        assert_eq!(session_timeout(&props), Duration::from_secs(45));
    }
}
