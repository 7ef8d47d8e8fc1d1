//! The original framework's configuration files load unchanged and map.

use std::path::PathBuf;

use mmm_core::config::{MasterSpec, SchedulerConfig, TopicSelection, DEFAULT_API_BIND};
use mmm_core::kafka_props::{map_properties, Role};
use mmm_core::properties::Properties;

fn fixture(name: &str) -> (String, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/original-config")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    (path.display().to_string(), text)
}

#[test]
fn original_consumer_properties_map_to_librdkafka() {
    let (file, text) = fixture("kafka-consumser.properties");
    let props = Properties::parse(&file, &text).expect("parses");
    assert_eq!(props.len(), 6);
    let mapped = map_properties(Role::Consumer, &file, props.iter()).expect("maps");
    assert_eq!(mapped.config["bootstrap.servers"], "192.168.86.20:9092");
    assert_eq!(mapped.config["group.id"], "mirror_maker_group");
    assert_eq!(mapped.config["enable.auto.commit"], "false");
    assert_eq!(mapped.config["session.timeout.ms"], "30000");
    assert_eq!(mapped.config.len(), 4);
    let dropped: Vec<_> = mapped.dropped.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(dropped, ["key.deserializer", "value.deserializer"]);
}

#[test]
fn original_producer_properties_map_to_librdkafka() {
    let (file, text) = fixture("kafka-producer.properties");
    let props = Properties::parse(&file, &text).expect("parses");
    assert_eq!(
        props.get("bootstrap.servers"),
        Some("192.168.86.20:9092,192.168.86.25:9092,192.168.86.30:9092")
    );
    let mapped = map_properties(Role::Producer, &file, props.iter()).expect("maps");
    assert_eq!(mapped.config["retries"], "2147483647");
    assert_eq!(mapped.config["max.in.flight.requests.per.connection"], "1");
    assert_eq!(mapped.config["acks"], "all");
    assert_eq!(mapped.config.len(), 4);
    let dropped: Vec<_> = mapped.dropped.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(
        dropped,
        ["block.on.buffer.full", "key.serializer", "value.serializer"]
    );
}

#[test]
fn original_mmm_properties_load_into_the_typed_config() {
    let (file, text) = fixture("mmm.properties");
    let config = SchedulerConfig::from_file_text(&file, &text).expect("loads");
    assert_eq!(
        config.mesos.master,
        MasterSpec::ZooKeeper {
            hosts: vec!["master:2181".into()],
            path: "/mesos".into()
        }
    );
    assert_eq!(config.mesos.framework_name, "mirror-maker-mesos");
    assert_eq!(config.api.bind, "192.168.3.5:7000");
    assert_ne!(config.api.bind, DEFAULT_API_BIND);
    assert_eq!(
        config.mirror.topics,
        TopicSelection::List(vec!["t1".into(), "t2".into(), "t3".into()])
    );
    assert_eq!(config.mirror.offset_commit_interval_ms, 60_000);
}

/// The example configuration shipped in the repository's config/ folder.
fn shipped(name: &str) -> (String, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../config")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    (path.display().to_string(), text)
}

#[test]
fn shipped_example_configuration_loads_and_maps() {
    let (file, text) = shipped("mmm.toml");
    let config = SchedulerConfig::from_file_text(&file, &text).expect("mmm.toml loads");
    assert_eq!(config.api.bind, "127.0.0.1:7000");
    for (name, role, expected) in [
        (
            "kafka-consumer.properties",
            Role::Consumer,
            "127.0.0.1:9092",
        ),
        (
            "kafka-producer.properties",
            Role::Producer,
            "127.0.0.1:9093",
        ),
    ] {
        let (file, text) = shipped(name);
        let props = Properties::parse(&file, &text).expect("parses");
        let mapped = map_properties(role, &file, props.iter()).expect("maps");
        assert_eq!(mapped.config["bootstrap.servers"], expected);
        assert!(mapped.dropped.is_empty(), "{:?}", mapped.dropped);
    }
}
