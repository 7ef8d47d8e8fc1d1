//! The mmm executor: a Mesos v1 HTTP executor whose task mirrors Kafka topics
//! from a source cluster to a target cluster, at least once.
//!
//! - [`engine`]: the replication loop (consume, produce, track, commit).
//! - [`offset_tracker`]: which source offsets may be committed.
//! - [`offset_sync`]: the source → target offset mapping and its translation.
//! - [`target_topics`]: target topic names, partition checks, creation.
//! - [`kafka_config`]: librdkafka defaults and forced settings.
//! - [`windows`]: window sizes from the round trip to each cluster.
//! - [`metrics`]: counters and the JSON report sent to the scheduler.
//! - [`executor`], [`agent_http`], [`mesos_env`], [`logging`]: the Mesos v1 HTTP executor around the engine.

pub mod agent_http;
pub mod engine;
pub mod executor;
pub mod kafka_config;
pub mod logging;
pub mod mesos_env;
pub mod metrics;
pub mod offset_sync;
pub mod offset_tracker;
pub mod target_topics;
pub mod windows;
