//! The librdkafka settings of the engine's clients: measured defaults, then
//! the task's properties, then the few settings correctness depends on, then
//! the windows sized for the round trip ([`crate::windows`]) where the task
//! sets none.

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
    ("queued.min.messages", "100000"),
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
];

/// Offsets are committed by the engine from delivery reports, never by
/// librdkafka on its own: anything else could commit records not yet in the target.
pub const CONSUMER_FORCED: &[(&str, &str)] = &[
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
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
    for (k, v) in props {
        config.set(k, v);
    }
    for (k, v) in forced {
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
    build(
        PRODUCER_DEFAULTS,
        props,
        &[],
        Role::Producer,
        &Windows::default(),
    )
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
    fn windows_size_the_fetches_unless_the_task_sets_them() {
        let windows = Windows::for_round_trips(crate::windows::RoundTrips {
            source: std::time::Duration::from_millis(100),
            target: std::time::Duration::ZERO,
        });
        let c = consumer_config_for(&props(&[("max.partition.fetch.bytes", "5000")]), &windows);
        assert_eq!(c.get("fetch.max.bytes"), Some("13421772"));
        assert_eq!(c.get("max.partition.fetch.bytes"), Some("5000"));
        assert_eq!(c.get("queued.max.messages.kbytes"), Some("26214"));
        let lan = consumer_config(&props(&[]));
        assert_eq!(lan.get("fetch.max.bytes"), Some("2097152"));
        assert_eq!(lan.get("queued.max.messages.kbytes"), Some("4096"));
    }

    #[test]
    fn one_request_in_flight_becomes_five_with_idempotence() {
        let c = producer_config(&props(&[
            ("enable.idempotence", "true"),
            ("max.in.flight.requests.per.connection", "1"),
        ]));
        assert_eq!(c.get("max.in.flight.requests.per.connection"), Some("5"));
        let c = producer_config(&props(&[("max.in.flight.requests.per.connection", "1")]));
        assert_eq!(c.get("max.in.flight.requests.per.connection"), Some("1"));
    }
}
