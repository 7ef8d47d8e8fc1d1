//! Test support: real Kafka-compatible brokers, ZooKeeper, and fault injection.
//!
//! - [`KafkaBroker`]: a Tansu broker with in-memory storage in its own process, plus helpers to
//!   create topics ([`create_topic`]), produce ([`produce`], [`produce_generated`]) and read back
//!   ([`consume_all`], [`verify_generated`]) test data.
//! - [`tansu_binary`]: the pinned Tansu binary, installed into a cache on first use.
//! - [`MockKafkaCluster`]: librdkafka's mock cluster for fault injection (broker down,
//!   request errors, latency).
//! - [`NetShaper`], [`ShapedBroker`]: a TCP proxy adding a round trip, jitter and a bandwidth cap,
//!   and a broker that clients reach only through one.
//! - [`ZooKeeperServer`]: a standalone ZooKeeper from Debian's package, for `zk://` tests.
//! - [`ChildGuard`], [`bin_path`]: processes that die with the test, and binaries of this
//!   workspace. Servers get their ports without races: [`wait_for_listening_port`] reads the port
//!   of a server started on port 0, [`spawn_on_free_port`] retries a server that takes its port on
//!   the command line; both check that the listener belongs to the server ([`listening_ports`]).
//!
//! Everything started here stops when its handle is dropped, also when a test panics, and dies
//! with the test process if that is killed.

mod consumer_group;
mod error;
mod kafka_broker;
mod kafka_data;
mod mock_cluster;
mod net_shaper;
mod process;
mod sys;
mod tansu_install;
mod zookeeper;

pub use consumer_group::consume_as_group;
pub use error::{Error, Result};
pub use kafka_broker::KafkaBroker;
pub use kafka_data::{
    consume_all, consume_until_idle, create_topic, decode_generated, produce, produce_generated,
    produce_with_config, random_name, verify_generated, wait_for_partitions, ConsumedRecord,
    GeneratedReport, TestRecord, GENERATED_HEADER_LEN,
};
pub use mock_cluster::{ApiKey, MockKafkaCluster, ResponseError, UNTIL_CLEARED};
pub use net_shaper::{NetShaper, Shape, ShapedBroker, WireBytes};
pub use process::{
    bin_path, free_port, listening_ports, spawn_on_free_port, wait_for_listening_port,
    wait_for_port, ChildGuard,
};
pub use tansu_install::{
    cache_dir, tansu_binary, verify_sha256, workspace_root, CACHE_DIR_ENV, PIP_VENV_DIR,
    TANSU_BIN_ENV, TANSU_WHEEL_FILE, TANSU_WHEEL_PACKAGE, TANSU_WHEEL_SHA256, TANSU_WHEEL_VERSION,
};
pub use zookeeper::ZooKeeperServer;
