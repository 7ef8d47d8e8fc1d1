//! The librdkafka settings of the engine's clients: measured defaults, then
//! the task's properties, then the few settings correctness depends on, then
//! the windows sized for the round trip ([`crate::windows`]) where the task
//! sets none.

use mmm_core::delivery_guarantees::{CONSUMER_DEFAULTS as SAFE_CONSUMER, PRODUCER_ENFORCED};
use mmm_core::task_data::Properties;
use rdkafka::ClientConfig;

use crate::windows::Windows;

/// Consumer defaults, chosen with the executor benchmark. The fetch and
/// prefetch sizes come from [`Windows`]: on a LAN they bound the prefetch
/// queue (librdkafka's own default allows 64 MB; it dominates the executor's
/// memory) while each fetch still carries thousands of records. librdkafka waits
/// `fetch.queue.backoff.ms` (1 s by default) before fetching again once the
/// prefetch queue is full: with a bounded queue that wait made consumption
/// 25 times slower in the benchmark, so it is short here.
pub const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.partition.eof", "false"),
    ("fetch.queue.backoff.ms", "5"),
    ("fetch.wait.max.ms", "100"),
    // Feeds the lag metric (cached high watermarks and positions).
    ("statistics.interval.ms", "5000"),
];

/// Producer defaults, chosen with the executor benchmark: large batches after
/// a short linger, zstd (it cut the bytes to the target of JSON-like records
/// several times, more than lz4, and kept or raised the throughput at 0 and
/// 100 ms: docs/performance.md), and a queue bounded well below librdkafka's
/// 1 GB default.
pub const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("linger.ms", "5"),
    ("batch.num.messages", "10000"),
    ("batch.size", "1000000"),
    ("queue.buffering.max.messages", "200000"),
    ("queue.buffering.max.kbytes", "65536"),
    ("compression.type", "zstd"),
    // A target topic appearing with the broker's default partition count
    // would break "preserve"; topics are created explicitly instead.
    ("allow.auto.create.topics", "false"),
    // Java's partitioner for keyed records (murmur2), so that "hash" puts a
    // key where MirrorMaker or Kafka Streams would.
    ("partitioner", "murmur2_random"),
    // librdkafka's 1000000 refuses records a Kafka broker accepts (its
    // default limit is 1048588, often raised): the target broker decides.
    // It stays below the producer's queue bound, so one record always fits.
    ("message.max.bytes", "33554432"),
];

/// Offsets are committed by the engine from delivery reports, never by
/// librdkafka on its own: anything else could commit records not yet in the target.
pub const CONSUMER_FORCED: &[(&str, &str)] = &[
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    // Records of aborted transactions must not reach the target.
    ("isolation.level", "read_committed"),
];

/// Consumer properties only a consumer understands: left out of the admin
/// client that reads source topic configurations.
const CONSUMER_ONLY: &[&str] = &[
    "group.id",
    "group.instance.id",
    "group.protocol",
    "group.remote.assignor",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "auto.offset.reset",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "enable.auto.offset.store",
    "enable.partition.eof",
    "isolation.level",
    "check.crcs",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "fetch.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.min.bytes",
    "fetch.wait.max.ms",
    "fetch.queue.backoff.ms",
    "fetch.error.backoff.ms",
    "fetch.message.max.bytes",
    "consume.callback.max.messages",
    "offset.store.method",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Consumer,
    Producer,
}

fn build(
    defaults: &[(&str, &str)],
    props: &Properties,
    forced: &[(&str, &str)],
    role: Role,
    windows: &Windows,
) -> ClientConfig {
    let role_name = match role {
        Role::Consumer => "consumer",
        Role::Producer => "producer",
    };
    let mut config = ClientConfig::new();
    for (k, v) in defaults {
        config.set(*k, *v);
    }
    let (safe_defaults, safe_forced) = match role {
        Role::Consumer => (SAFE_CONSUMER, &[][..]),
        Role::Producer => (&[][..], PRODUCER_ENFORCED),
    };
    for (k, v, _why) in safe_defaults {
        config.set(*k, *v);
    }
    let forced: Vec<(&str, &str)> = forced
        .iter()
        .copied()
        .chain(safe_forced.iter().map(|(k, v, _)| (*k, *v)))
        .collect();
    for (k, v) in props {
        config.set(k, v);
    }
    for (k, v) in &forced {
        if props.get(*k).is_some_and(|user| user != v) {
            tracing::warn!(
                property = *k,
                "the {role_name} property {k} is managed by the executor and set to {v}"
            );
        }
        config.set(*k, *v);
    }
    match role {
        Role::Consumer => {
            for (k, v) in windows.consumer_properties() {
                if !props.contains_key(k) {
                    config.set(k, v);
                }
            }
        }
        Role::Producer => {
            for (k, v) in windows.producer_properties() {
                if !props.contains_key(k) {
                    config.set(k, v);
                }
            }
            if let Some(was) = crate::windows::raise_in_flight_requests(&mut config) {
                tracing::info!(
                    was,
                    "max.in.flight.requests.per.connection raised to 5: idempotence keeps the order"
                );
            }
        }
    }
    config
}

/// The source consumer's configuration with the LAN windows.
pub fn consumer_config(props: &Properties) -> ClientConfig {
    consumer_config_for(props, &Windows::default())
}

/// The source consumer's configuration with windows sized for a round trip.
pub fn consumer_config_for(props: &Properties, windows: &Windows) -> ClientConfig {
    build(
        CONSUMER_DEFAULTS,
        props,
        CONSUMER_FORCED,
        Role::Consumer,
        windows,
    )
}

/// The target producer's configuration.
pub fn producer_config(props: &Properties) -> ClientConfig {
    producer_config_for(props, &Windows::default())
}

/// The target producer's configuration with windows sized for a round trip.
pub fn producer_config_for(props: &Properties, windows: &Windows) -> ClientConfig {
    build(PRODUCER_DEFAULTS, props, &[], Role::Producer, windows)
}

/// An admin client's configuration for the source cluster: the consumer's
/// connection and security properties without its consumer-only ones.
pub fn admin_config(consumer: &Properties) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (k, v) in consumer {
        if !CONSUMER_ONLY.contains(&k.as_str()) {
            config.set(k, v);
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Properties {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn user_properties_override_defaults() {
        let c = producer_config(&props(&[("linger.ms", "50"), ("bootstrap.servers", "x:1")]));
        assert_eq!(c.get("linger.ms"), Some("50"));
        assert_eq!(c.get("batch.num.messages"), Some("10000"));
        assert_eq!(c.get("bootstrap.servers"), Some("x:1"));
    }

    #[test]
    fn commit_settings_cannot_be_overridden() {
        let c = consumer_config(&props(&[
            ("enable.auto.commit", "true"),
            ("enable.auto.offset.store", "true"),
            ("fetch.max.bytes", "1000"),
        ]));
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        assert_eq!(c.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(c.get("fetch.max.bytes"), Some("1000"));
    }

    #[test]
    fn safe_defaults_apply_unless_set_and_guarantees_are_enforced() {
        let c = consumer_config(&props(&[]));
        assert_eq!(c.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(c.get("isolation.level"), Some("read_committed"));
        let c = consumer_config(&props(&[("auto.offset.reset", "latest")]));
        assert_eq!(c.get("auto.offset.reset"), Some("latest"));
        let p = producer_config(&props(&[("acks", "1"), ("enable.idempotence", "false")]));
        assert_eq!(p.get("acks"), Some("all"));
        assert_eq!(p.get("enable.idempotence"), Some("true"));
        assert_eq!(p.get("partitioner"), Some("murmur2_random"));
        let p = producer_config(&props(&[("partitioner", "consistent_random")]));
        assert_eq!(p.get("partitioner"), Some("consistent_random"));
    }

    #[test]
    fn the_admin_client_leaves_consumer_settings_out() {
        let a = admin_config(&props(&[
            ("bootstrap.servers", "s:1"),
            ("group.id", "g"),
            ("security.protocol", "ssl"),
            ("session.timeout.ms", "6000"),
        ]));
        assert_eq!(a.get("bootstrap.servers"), Some("s:1"));
        assert_eq!(a.get("security.protocol"), Some("ssl"));
        assert_eq!(a.get("group.id"), None);
        assert_eq!(a.get("session.timeout.ms"), None);
    }

    #[test]
    fn windows_size_the_fetches_unless_the_task_sets_them() {
        let windows = Windows::for_round_trips(crate::windows::RoundTrips {
            source: std::time::Duration::from_millis(100),
            target: std::time::Duration::ZERO,
        });
        let c = consumer_config_for(&props(&[("max.partition.fetch.bytes", "5000")]), &windows);
        assert_eq!(c.get("fetch.max.bytes"), Some("53687088"));
        assert_eq!(c.get("max.partition.fetch.bytes"), Some("5000"));
        assert_eq!(c.get("queued.max.messages.kbytes"), Some("104857"));
        let lan = consumer_config(&props(&[]));
        assert_eq!(lan.get("fetch.max.bytes"), Some("2097152"));
        assert_eq!(lan.get("queued.max.messages.kbytes"), Some("4096"));
        assert_eq!(lan.get("queued.min.messages"), Some("100000"));
    }

    #[test]
    fn a_distant_target_gets_records_without_copies_unless_the_task_says() {
        let far = Windows::for_round_trips(crate::windows::RoundTrips {
            source: std::time::Duration::ZERO,
            target: std::time::Duration::from_millis(100),
        });
        let c = producer_config_for(&props(&[]), &far);
        assert_eq!(c.get("message.copy.max.bytes"), Some("0"));
        let c = producer_config_for(&props(&[("message.copy.max.bytes", "1024")]), &far);
        assert_eq!(c.get("message.copy.max.bytes"), Some("1024"));
        assert_eq!(
            producer_config(&props(&[])).get("message.copy.max.bytes"),
            None
        );
    }

    #[test]
    fn one_request_in_flight_becomes_five_with_idempotence() {
        let c = producer_config(&props(&[
            ("enable.idempotence", "true"),
            ("max.in.flight.requests.per.connection", "1"),
        ]));
        assert_eq!(c.get("max.in.flight.requests.per.connection"), Some("5"));
        // Idempotence is enforced, so the original's 1 always becomes 5.
        let c = producer_config(&props(&[
            ("enable.idempotence", "false"),
            ("max.in.flight.requests.per.connection", "1"),
        ]));
        assert_eq!(c.get("max.in.flight.requests.per.connection"), Some("5"));
    }
}
