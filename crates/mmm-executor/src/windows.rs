//! Window sizes from the bandwidth-delay product.
//!
//! Across a long link the executor's throughput is at most window ÷ round trip for each of its
//! windows: the consumer's fetch (one outstanding per source broker), its prefetch queue, and the
//! records and bytes the engine keeps in flight to the target. The executor measures the round
//! trip to each cluster before it creates its clients (the fastest of a few metadata requests)
//! and sizes every window for [`RATE_GOAL`] at that round trip:
//!
//! ```text
//! bdp(rtt)                   = RATE_GOAL × rtt
//! fetch.max.bytes            = clamp(4 × bdp(source), 2 MiB, 64 MiB)
//! max.partition.fetch.bytes  = max(1 MiB, fetch.max.bytes / 2), then with P source partitions
//!                              per consumer: min(that, max(256 KiB, fetch.max.bytes / P))
//! queued.max.messages.kbytes = max(4 MiB, 2 × fetch.max.bytes) / 1024
//! queued.min.messages        = 100,000
//! source consumers           = min(clamp(⌈bdp(source) / 4 MiB⌉, 1, 4), max(1, source partitions))
//!   (each of them: fetch.max.bytes, queued.max.messages.kbytes and queued.min.messages divided by
//!   the source consumers, the fetch at least 2 MiB)
//! in-flight bytes            = clamp(3 × bdp(target), 8 MiB, 64 MiB)
//! in-flight records          = clamp(in-flight bytes / 256, 15,000, 140,000)
//! message.copy.max.bytes     = 0 when the target is more than 1 ms away (librdkafka's default on a LAN)
//! target producers           = clamp(⌈3 × bdp(target) / (requests in flight × batch bytes)⌉, 1, 8),
//!                              then with P source partitions: ⌈P / ⌈P / min(that, P)⌉⌉
//! ```
//!
//! The target producers: librdkafka puts one partition's batch in a produce request and keeps at
//! most `max.in.flight.requests.per.connection` of them on its one connection to a broker, so a
//! producer reaches at most 5 × `batch.size` (5 MB) per round trip, whatever the other windows
//! allow. Across a long link the engine spreads the source partitions over several producers
//! ([`target_producers_for`]; "batch bytes" is the smaller of `batch.size` and `message.max.bytes`;
//! the source partitions are the first listed topic's times the topics listed, unknown for a regex).
//!
//! A bound no setting lifts in stock librdkafka (2.12, and upstream as of 2.15): its idempotent
//! producer sends a partition's next request only when the previous one is answered, because it
//! compares the partition's messages in flight, not its requests, with the limit of 5 (upstream
//! pull request 4989). Each target partition would move one `batch.size` per round trip, about
//! 7.7 MB/s of 200-byte records at 100 ms. The workspace builds librdkafka with that comparison
//! fixed (vendor/README.md), so a partition may fill its producer's 5 requests and a producer
//! moves 5 batches per round trip whatever the number of partitions. `batch.size` is not raised
//! past the target's default `max.message.bytes`, because a compressed batch above the topic's
//! limit is refused whole.
//!
//! The fetch is four times the bandwidth-delay product because librdkafka keeps one fetch in
//! flight per broker and a broker's answer carries less than it was allowed: against a source
//! that does not cap its answers (librdkafka's mock cluster behind 100 ms), a `fetch.max.bytes` of
//! one product (13.4 MB) brought 4.8 MB per fetch and 48 MB/s, one of 50 MB brought 7.7 MB per
//! fetch and 90 MB/s (docs/performance.md).
//!
//! The source consumers: a broker that caps its answers gives one consumer at most one capped
//! answer per round trip, however large a fetch it asks for: Tansu stops at 5 MiB, so 46 MB/s at
//! 100 ms, 0.46 of the 0 ms rate. Several consumers have several fetches in flight (the group
//! member hands partitions to fetch-only consumers: `engine::fetchers`); they share the fetch
//! and prefetch windows, so that memory does not grow with their number. 4 MiB is what an answer
//! is assumed to carry at least: a Kafka broker answers up to its own `fetch.max.bytes` (55 MB by
//! default), where the extra consumers cost a connection each and change nothing else.
//!
//! The records in flight to the target are three bandwidth-delay products because only about one
//! is in produce requests at any time; the rest fill each partition's next batch while its
//! producer's 5 requests are out. At 100 ms (200-byte records) the producers' debug log showed
//! 40,000 to 50,000 records in requests of a window of 105,000 (2 products), and the window was
//! full half the time; 3 products (held to 140,000) moved 76 MB/s instead of 62 to 70.
//!
//! Both clusters are timed at once, within 2 s for the first answer (connection included, about
//! four round trips): a cluster that is down, or farther than about 400 ms, keeps the LAN windows
//! rather than hold up the launch.
//!
//! At a round trip of a millisecond or less every window keeps its LAN size, so memory stays as
//! measured on a LAN; the largest windows (from about 250 ms) add about 200 MB. Properties the task
//! sets win over these sizes. Socket buffers are left to the kernel: an explicit
//! `socket.receive.buffer.bytes` is capped by `net.core.rmem_max` and turns off the kernel's own
//! tuning, which already grows to `net.ipv4.tcp_rmem`'s maximum.
//!
//! The producer's `max.in.flight.requests.per.connection`: with idempotence on, librdkafka keeps
//! each partition's order with up to 5 requests in flight, so a lower value (the original
//! framework's producer file asks for 1, for ordering) only costs a round trip per request across
//! partitions and is raised to 5. Without idempotence the task's value is kept: there it is what keeps the order.

use std::time::{Duration, Instant};

use rdkafka::client::Client;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{ClientConfig, ClientContext};

/// The payload rate each window is sized for, in bytes per second: above what one executor moves
/// on a LAN (about 75 MB/s of 200-byte records on 2 cores).
pub const RATE_GOAL: u64 = 128 * 1024 * 1024;

const MIB: u64 = 1024 * 1024;
const FETCH_MIN: u64 = 2 * MIB;
const FETCH_MAX: u64 = 64 * MIB;
/// `fetch.max.bytes` in bandwidth-delay products (see the module's text).
const FETCH_PER_BDP: u64 = 4;
const PARTITION_FETCH_MIN: u64 = MIB;
/// `max.partition.fetch.bytes` when the fetch is spread over many partitions, at least: a broker
/// answers a partition's first batch whole even when it is larger, so a small share never stops
/// a partition, but each share should still hold a few batches.
const PARTITION_SHARE_MIN: u64 = 256 * 1024;
const PREFETCH_MIN: u64 = 4 * MIB;
/// `queued.min.messages`: librdkafka stops fetching when either bound of the prefetch queue is
/// reached, and for small records the count is reached first (each queued record costs about
/// 600 bytes of memory besides its own).
const PREFETCH_MESSAGES: u64 = 100_000;
const IN_FLIGHT_BYTES_MIN: u64 = 8 * MIB;
const IN_FLIGHT_BYTES_MAX: u64 = 64 * MIB;
const IN_FLIGHT_RECORDS_MIN: u64 = 15_000;
/// Memory bounds it: each record in flight costs about 1.3 KB of librdkafka's memory, whatever its
/// size. At 150 ms, 160,000 took the executor to 262 MB, 140,000 to 238 MB (200-byte records, 4
/// producers). The producer's queue (`queue.buffering.max.messages`) holds more.
const IN_FLIGHT_RECORDS_MAX: u64 = 140_000;
/// The in-flight records window assumes records of at least this many bytes.
const RECORD_BYTES_FOR_COUNT: u64 = 256;
/// Requests in flight per connection that idempotence keeps in order.
pub const IDEMPOTENT_IN_FLIGHT: u32 = 5;
/// Producers the records may be spread over, at most. Each has its own requests in flight and
/// broker threads: with 8 producers and 2 glibc malloc arenas (before jemalloc), 200-byte records
/// took the executor to 246 MB at 150 ms, and 10 KB records moved 164.7 MB/s at 100 ms where 3
/// producers moved 101.
const PRODUCERS_MAX: u64 = 8;
/// Bandwidth-delay products the producers' requests may hold: a producer's 5 requests are not all
/// full (4.5 in flight of about 0.94 `batch.size` each at 100 ms, 10 KB records), and the source
/// partitions do not spread evenly over the producers (8 over 3 puts 3 on one).
const PRODUCER_REACH_PER_BDP: u64 = 3;
/// What one fetch answer is assumed to carry at least. Tansu stops at 5 MiB whatever it is asked
/// (a Kafka broker at its own `fetch.max.bytes`, 55 MB by default); the consumers' answers do not
/// all come back full, and at 100 ms with 10 KB records 3 consumers (from 5 MiB) moved 0.75 of
/// the 0 ms rate where 4 moved 0.98.
const FETCH_ANSWER_ASSUMED: u64 = 4 * MIB;
/// Consumers reading the source, at most: each holds its own prefetch queue and connection.
const FETCH_CONSUMERS_MAX: u64 = 4;
/// Round trips up to this are a LAN for the choices that are not sizes.
const LAN_ROUND_TRIP: Duration = Duration::from_millis(1);
/// Metadata requests timed after the connection is up; the fastest one counts.
const PROBES: usize = 3;

/// The round trips the windows are sized for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoundTrips {
    /// To the source cluster (the consumer's windows).
    pub source: Duration,
    /// To the target cluster (the producer's windows).
    pub target: Duration,
}

/// The sizes of every window, for one pair of round trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// `fetch.max.bytes`.
    pub fetch_max_bytes: u64,
    /// `max.partition.fetch.bytes`.
    pub partition_fetch_bytes: u64,
    /// `queued.max.messages.kbytes`.
    pub prefetch_kbytes: u64,
    /// `queued.min.messages`.
    pub prefetch_messages: u64,
    /// The engine's bound on key and value bytes in flight to the target.
    pub in_flight_bytes: u64,
    /// The engine's bound on records in flight to the target.
    pub in_flight_records: u64,
    /// Whether the target producers copy each record into its produce request
    /// (`message.copy.max.bytes`): on a LAN only (see [`Windows::producer_properties`]).
    pub copy_into_requests: bool,
}

fn bdp(rate: u64, rtt: Duration) -> u64 {
    (rate as f64 * rtt.as_secs_f64()) as u64
}

impl Windows {
    /// The windows for these round trips (see the module's formula).
    pub fn for_round_trips(rtt: RoundTrips) -> Windows {
        let fetch = (FETCH_PER_BDP * bdp(RATE_GOAL, rtt.source)).clamp(FETCH_MIN, FETCH_MAX);
        let in_flight_bytes =
            (3 * bdp(RATE_GOAL, rtt.target)).clamp(IN_FLIGHT_BYTES_MIN, IN_FLIGHT_BYTES_MAX);
        let in_flight_records = (3 * bdp(RATE_GOAL, rtt.target) / RECORD_BYTES_FOR_COUNT)
            .clamp(IN_FLIGHT_RECORDS_MIN, IN_FLIGHT_RECORDS_MAX);
        Windows {
            fetch_max_bytes: fetch,
            partition_fetch_bytes: (fetch / 2).max(PARTITION_FETCH_MIN),
            prefetch_kbytes: (2 * fetch).max(PREFETCH_MIN) / 1024,
            prefetch_messages: PREFETCH_MESSAGES,
            in_flight_bytes,
            in_flight_records,
            copy_into_requests: rtt.target <= LAN_ROUND_TRIP,
        }
    }

    /// The producer properties these windows set. Across a long link most records in flight
    /// are in produce requests, and librdkafka's copy of each small record into its request
    /// took about a quarter of the executor's memory: at 100 ms, 200-byte records, 202 and 226 MB
    /// peak RSS with the copies, 142 and 174 MB without, at the same rate. On a LAN the copies
    /// stay (few records are in requests, and one contiguous buffer is cheaper to compress).
    pub fn producer_properties(&self) -> Vec<(&'static str, String)> {
        if self.copy_into_requests {
            Vec::new()
        } else {
            vec![("message.copy.max.bytes", "0".to_owned())]
        }
    }

    /// The consumer properties these windows set.
    pub fn consumer_properties(&self) -> [(&'static str, String); 4] {
        [
            ("fetch.max.bytes", self.fetch_max_bytes.to_string()),
            (
                "max.partition.fetch.bytes",
                self.partition_fetch_bytes.to_string(),
            ),
            (
                "queued.max.messages.kbytes",
                self.prefetch_kbytes.to_string(),
            ),
            ("queued.min.messages", self.prefetch_messages.to_string()),
        ]
    }
}

impl Windows {
    /// The consumer windows of one of `consumers` that read the source together: they share the
    /// fetch and the prefetch queue (its bytes and its records), so that the bytes asked for per
    /// round trip, and the memory they may hold, stay those of one consumer.
    pub fn shared_by(self, consumers: usize) -> Windows {
        if consumers <= 1 {
            return self;
        }
        let n = u64::try_from(consumers).unwrap_or(1);
        let fetch = (self.fetch_max_bytes / n).max(FETCH_MIN);
        Windows {
            fetch_max_bytes: fetch,
            partition_fetch_bytes: (fetch / 2).max(PARTITION_FETCH_MIN),
            prefetch_kbytes: (2 * fetch).max(PREFETCH_MIN) / 1024,
            prefetch_messages: self.prefetch_messages / n,
            ..self
        }
    }

    /// The windows of a consumer that reads `partitions` source partitions, when their number is
    /// known: each partition may fill an equal share of a fetch answer (at least
    /// [`PARTITION_SHARE_MIN`], at most the unspread size), so that every answer carries records
    /// of every partition rather than of the first two.
    ///
    /// Across a long link to the target this is what keeps every producer busy: a partition's
    /// records all go through one producer, which carries at most 5 requests per round trip. A
    /// source that answered the lowest-numbered partitions first (Tansu did, two partitions of
    /// 1 MiB per 2 MiB answer) fed one or two producers at a time, and at 150 ms the records
    /// window filled with those partitions' records.
    pub fn spread_over(self, partitions: Option<usize>) -> Windows {
        let Some(n) = partitions.filter(|n| *n > 0) else {
            return self;
        };
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        Windows {
            partition_fetch_bytes: (self.fetch_max_bytes / n)
                .max(PARTITION_SHARE_MIN)
                .min(self.partition_fetch_bytes),
            ..self
        }
    }
}

/// How many consumers read a source `rtt` away: librdkafka keeps one fetch in flight per broker
/// connection, and a broker that caps its answers (at [`FETCH_ANSWER_ASSUMED`]) then bounds one
/// consumer at a capped answer per round trip. Enough consumers for one bandwidth-delay product
/// in flight, one on a LAN, at most [`FETCH_CONSUMERS_MAX`] and at most one per source partition.
pub fn source_consumers_for(rtt: Duration, source_partitions: Option<usize>) -> usize {
    let count = bdp(RATE_GOAL, rtt)
        .div_ceil(FETCH_ANSWER_ASSUMED)
        .clamp(1, FETCH_CONSUMERS_MAX);
    let count = usize::try_from(count).unwrap_or(1);
    match source_partitions {
        Some(n) => count.min(n.max(1)),
        None => count,
    }
}

impl Default for Windows {
    /// The LAN windows (round trips of zero).
    fn default() -> Self {
        Windows::for_round_trips(RoundTrips::default())
    }
}

/// How many producers carry the records to a target `rtt` away: enough that their requests in
/// flight (`requests` per connection, of `batch_bytes` each) hold [`PRODUCER_REACH_PER_BDP`]
/// bandwidth-delay products.
/// One on a LAN, at most [`PRODUCERS_MAX`].
pub fn target_producers(rtt: Duration, requests: u64, batch_bytes: u64) -> usize {
    let reach = requests.max(1).saturating_mul(batch_bytes.max(1));
    let count = (PRODUCER_REACH_PER_BDP * bdp(RATE_GOAL, rtt))
        .div_ceil(reach)
        .clamp(1, PRODUCERS_MAX);
    usize::try_from(count).unwrap_or(1)
}

/// [`target_producers`], at most one per source partition when their number is known: each
/// partition goes through one producer, so a producer past the partitions would carry nothing.
pub fn target_producers_for(
    rtt: Duration,
    requests: u64,
    batch_bytes: u64,
    source_partitions: Option<usize>,
) -> usize {
    let by_round_trip = target_producers(rtt, requests, batch_bytes);
    match source_partitions {
        // The busiest producer carries ⌈n / count⌉ partitions and bounds the rate: no more
        // producers than that load needs (8 partitions over 6 producers put 2 on some; 4 do
        // the same with fewer).
        Some(n) => {
            let n = n.max(1);
            let per_producer = n.div_ceil(by_round_trip.min(n));
            n.div_ceil(per_producer)
        }
        None => by_round_trip,
    }
}

/// The requests in flight per connection and the batch bytes of a producer configuration, with
/// librdkafka's defaults for what it does not set.
pub fn producer_reach(config: &ClientConfig) -> (u64, u64) {
    let number = |keys: &[&str], default: u64| {
        keys.iter()
            .find_map(|k| config.get(k))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(default)
    };
    let requests = number(
        &["max.in.flight.requests.per.connection", "max.in.flight"],
        1_000_000,
    );
    // Idempotence caps the requests in flight at 5 whatever the setting says.
    let requests = if idempotent(config) {
        requests.min(u64::from(IDEMPOTENT_IN_FLIGHT))
    } else {
        requests
    };
    let batch = number(&["batch.size"], 1_000_000).min(number(&["message.max.bytes"], 1_000_000));
    (requests, batch)
}

/// Whether a producer configuration has idempotence on.
fn idempotent(config: &ClientConfig) -> bool {
    config
        .get("enable.idempotence")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Raises a producer's requests in flight per connection to 5 when idempotence keeps the order
/// anyway; returns the value it replaced.
pub fn raise_in_flight_requests(config: &mut ClientConfig) -> Option<String> {
    if !idempotent(config) {
        return None;
    }
    let mut replaced = None;
    for key in ["max.in.flight.requests.per.connection", "max.in.flight"] {
        let Some(value) = config.get(key).map(str::to_owned) else {
            continue;
        };
        if value
            .trim()
            .parse::<u32>()
            .is_ok_and(|n| n < IDEMPOTENT_IN_FLIGHT)
        {
            config.set(key, IDEMPOTENT_IN_FLIGHT.to_string());
            replaced = Some(value);
        }
    }
    replaced
}

/// Which client a configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The source cluster's consumer.
    Source,
    /// The target cluster's producer.
    Target,
}

/// The round trip to the cluster of `config`: the fastest of a few metadata requests for
/// `probe_topic` once connected. `None` when the cluster does not answer within `timeout`.
pub fn measure_round_trip(
    config: &ClientConfig,
    side: Side,
    probe_topic: &str,
    timeout: Duration,
) -> Option<Duration> {
    probe_cluster(config, side, probe_topic, timeout).map(|probe| probe.round_trip)
}

/// What the metadata requests that time a cluster also tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterProbe {
    /// The fastest of the requests.
    pub round_trip: Duration,
    /// The probe topic's partitions, when it exists.
    pub partitions: Option<usize>,
}

/// As [`measure_round_trip`], with the probe topic's partition count.
pub fn probe_cluster(
    config: &ClientConfig,
    side: Side,
    probe_topic: &str,
    timeout: Duration,
) -> Option<ClusterProbe> {
    let mut config = config.clone();
    // Only the connection settings matter: the probe joins no group and creates no topic.
    config.remove("group.id");
    config.set("allow.auto.create.topics", "false");
    let created = match side {
        Side::Source => config
            .create::<BaseConsumer>()
            .map(|c| time_metadata(c.client(), probe_topic, timeout)),
        Side::Target => config
            .create::<BaseProducer>()
            .map(|p| time_metadata(p.client(), probe_topic, timeout)),
    };
    match created {
        Ok(probe) => probe,
        Err(err) => {
            tracing::warn!(error = %err, "no client to measure the round trip with");
            None
        }
    }
}

fn time_metadata<C: ClientContext>(
    client: &Client<C>,
    probe_topic: &str,
    timeout: Duration,
) -> Option<ClusterProbe> {
    // The first request also pays for the connection and its handshake.
    let first = match client.fetch_metadata(Some(probe_topic), timeout) {
        Ok(metadata) => metadata,
        Err(err) => {
            tracing::warn!(error = %err, "the cluster did not answer a metadata request");
            return None;
        }
    };
    let partitions = first
        .topics()
        .iter()
        .find(|t| t.name() == probe_topic && t.error().is_none())
        .map(|t| t.partitions().len())
        .filter(|n| *n > 0);
    let round_trip = (0..PROBES)
        .filter_map(|_| {
            let start = Instant::now();
            client
                .fetch_metadata(Some(probe_topic), timeout)
                .ok()
                .map(|_| start.elapsed())
        })
        .min()?;
    Some(ClusterProbe {
        round_trip,
        partitions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn lan_windows_are_the_measured_lan_defaults() {
        let w = Windows::default();
        assert_eq!(w.fetch_max_bytes, 2_097_152);
        assert_eq!(w.partition_fetch_bytes, 1_048_576);
        assert_eq!(w.prefetch_kbytes, 4096);
        assert_eq!(w.prefetch_messages, 100_000);
        assert_eq!(w.in_flight_bytes, 8 * 1024 * 1024);
        assert_eq!(w.in_flight_records, 15_000);
        assert_eq!(
            Windows::for_round_trips(RoundTrips {
                source: ms(1),
                target: ms(1)
            }),
            w,
            "a millisecond is still a LAN"
        );
    }

    #[test]
    fn windows_grow_with_the_round_trip_and_stay_bounded() {
        let at = |n| {
            Windows::for_round_trips(RoundTrips {
                source: ms(n),
                target: ms(n),
            })
        };
        let w100 = at(100);
        // 128 MiB/s × 0.1 s.
        assert_eq!(w100.fetch_max_bytes, 4 * 13_421_772);
        assert_eq!(w100.prefetch_kbytes, 8 * 13_421_772 / 1024);
        assert_eq!(w100.in_flight_bytes, 3 * 13_421_772);
        // 3 × 13,421,772 / 256 = 157,286, held to the bound.
        assert_eq!(w100.in_flight_records, 140_000);
        let w50 = at(50);
        assert_eq!(w50.in_flight_records, 3 * 6_710_886 / 256);
        let w150 = at(150);
        assert!(w150.fetch_max_bytes > w100.fetch_max_bytes);
        assert!(w150.in_flight_bytes > w100.in_flight_bytes);
        let huge = at(60_000);
        assert_eq!(huge.fetch_max_bytes, 64 * 1024 * 1024);
        assert_eq!(huge.in_flight_bytes, 64 * 1024 * 1024);
        assert_eq!(huge.in_flight_records, 140_000);
    }

    #[test]
    fn records_are_copied_into_requests_on_a_lan_only() {
        let at = |n| {
            Windows::for_round_trips(RoundTrips {
                source: Duration::ZERO,
                target: ms(n),
            })
        };
        assert!(at(0).producer_properties().is_empty());
        assert!(at(1).producer_properties().is_empty());
        assert_eq!(
            at(20).producer_properties(),
            vec![("message.copy.max.bytes", "0".to_owned())]
        );
    }

    #[test]
    fn the_two_sides_are_sized_apart() {
        let w = Windows::for_round_trips(RoundTrips {
            source: ms(100),
            target: Duration::ZERO,
        });
        assert_eq!(w.fetch_max_bytes, 4 * 13_421_772);
        assert_eq!(w.in_flight_bytes, 8 * 1024 * 1024);
    }

    #[test]
    fn source_consumers_hold_one_bandwidth_delay_product_of_capped_answers() {
        assert_eq!(source_consumers_for(Duration::ZERO, None), 1);
        assert_eq!(source_consumers_for(ms(1), Some(64)), 1);
        // 128 MiB/s × 20 ms = 2.7 MB; × 50 ms = 6.7 MB; × 100 ms = 13.4 MB; × 150 ms = 20.1 MB.
        assert_eq!(source_consumers_for(ms(20), Some(64)), 1);
        assert_eq!(source_consumers_for(ms(50), Some(64)), 2);
        assert_eq!(source_consumers_for(ms(100), Some(64)), 4);
        assert_eq!(source_consumers_for(ms(150), None), 4);
        assert_eq!(source_consumers_for(ms(1_000), None), 4, "capped");
        assert_eq!(source_consumers_for(ms(30), None), 1);
        assert_eq!(
            source_consumers_for(ms(100), Some(2)),
            2,
            "one per partition"
        );
        assert_eq!(source_consumers_for(ms(100), Some(0)), 1);
    }

    #[test]
    fn consumers_reading_together_share_the_fetch_window() {
        let w100 = Windows::for_round_trips(RoundTrips {
            source: ms(100),
            target: ms(100),
        });
        let third = w100.shared_by(3);
        assert_eq!(third.fetch_max_bytes, 4 * 13_421_772 / 3);
        assert_eq!(third.partition_fetch_bytes, 4 * 13_421_772 / 6);
        assert_eq!(third.prefetch_kbytes, 2 * (4 * 13_421_772 / 3) / 1024);
        assert_eq!(third.prefetch_messages, 33_333);
        assert_eq!(
            third.in_flight_records, w100.in_flight_records,
            "target side unchanged"
        );
        assert_eq!(w100.shared_by(1), w100);
        assert_eq!(w100.shared_by(0), w100);
        let lan = Windows::default();
        let quarter = lan.shared_by(4);
        assert_eq!(
            quarter.fetch_max_bytes, lan.fetch_max_bytes,
            "never below the LAN fetch"
        );
        assert_eq!(quarter.prefetch_kbytes, lan.prefetch_kbytes);
        assert_eq!(quarter.prefetch_messages, 25_000);
    }

    #[test]
    fn a_fetch_is_spread_over_the_partitions_a_consumer_reads() {
        let lan = Windows::default();
        // 2 MiB over 8 partitions: 256 KiB each, so an answer carries all eight.
        assert_eq!(lan.spread_over(Some(8)).partition_fetch_bytes, 262_144);
        assert_eq!(
            lan.spread_over(Some(4)).partition_fetch_bytes,
            524_288,
            "2 MiB over 4"
        );
        assert_eq!(
            lan.spread_over(Some(500)).partition_fetch_bytes,
            262_144,
            "never below the least share"
        );
        assert_eq!(
            lan.spread_over(Some(1)).partition_fetch_bytes,
            lan.partition_fetch_bytes,
            "never above the unspread size"
        );
        assert_eq!(lan.spread_over(None), lan, "unknown partitions: unchanged");
        assert_eq!(lan.spread_over(Some(0)), lan);
        let spread = lan.spread_over(Some(8));
        assert_eq!(
            Windows {
                partition_fetch_bytes: lan.partition_fetch_bytes,
                ..spread
            },
            lan,
            "nothing else changes"
        );
        // Far from the source, each of 4 consumers reads 2 of 8 partitions: half its fetch each.
        let far = Windows::for_round_trips(RoundTrips {
            source: ms(100),
            target: ms(100),
        })
        .shared_by(4);
        assert_eq!(
            far.spread_over(Some(2)).partition_fetch_bytes,
            far.fetch_max_bytes / 2
        );
    }

    #[test]
    fn producers_hold_three_bandwidth_delay_products_in_flight() {
        // 5 requests of 1 MB: a producer reaches 5 MB per round trip.
        assert_eq!(target_producers(Duration::ZERO, 5, 1_000_000), 1);
        assert_eq!(target_producers(ms(1), 5, 1_000_000), 1);
        // 3 × 128 MiB/s × 20 ms = 8.1 MB; × 50 ms = 20.1 MB; × 100 ms = 40.3 MB.
        assert_eq!(target_producers(ms(20), 5, 1_000_000), 2);
        assert_eq!(target_producers(ms(50), 5, 1_000_000), 5);
        assert_eq!(target_producers(ms(100), 5, 1_000_000), 8, "capped");
        assert_eq!(target_producers(ms(150), 5, 1_000_000), 8, "capped");
        assert_eq!(
            target_producers(ms(100), 5, 4_000_000),
            3,
            "bigger batches need fewer"
        );
        assert_eq!(target_producers(ms(100), 1, 1_000_000), 8, "capped");
        assert_eq!(
            target_producers(ms(100), 0, 0),
            8,
            "nonsense never divides by zero"
        );
    }

    #[test]
    fn no_more_producers_than_source_partitions() {
        assert_eq!(target_producers_for(ms(100), 5, 1_000_000, None), 8);
        assert_eq!(target_producers_for(ms(100), 5, 1_000_000, Some(1)), 1);
        assert_eq!(target_producers_for(ms(100), 5, 1_000_000, Some(2)), 2);
        assert_eq!(
            target_producers_for(ms(50), 5, 1_000_000, Some(8)),
            4,
            "5 would leave the busiest with 2 partitions, as 4 do"
        );
        assert_eq!(target_producers_for(ms(50), 5, 1_000_000, Some(12)), 4);
        assert_eq!(target_producers_for(ms(50), 5, 1_000_000, Some(3)), 3);
        assert_eq!(target_producers_for(ms(100), 5, 1_000_000, Some(9)), 5);
        assert_eq!(target_producers_for(ms(100), 5, 1_000_000, Some(64)), 8);
        assert_eq!(target_producers_for(ms(150), 5, 1_000_000, Some(64)), 8);
        assert_eq!(target_producers_for(ms(0), 5, 1_000_000, Some(64)), 1);
        assert_eq!(target_producers_for(ms(100), 5, 1_000_000, Some(0)), 1);
    }

    #[test]
    fn the_reach_comes_from_the_producer_configuration() {
        let mut c = ClientConfig::new();
        assert_eq!(producer_reach(&c), (1_000_000, 1_000_000));
        c.set("enable.idempotence", "true");
        assert_eq!(producer_reach(&c), (5, 1_000_000));
        c.set("max.in.flight.requests.per.connection", "2");
        c.set("batch.size", "4000000");
        c.set("message.max.bytes", "33554432");
        assert_eq!(producer_reach(&c), (2, 4_000_000));
        c.set("message.max.bytes", "2000000");
        assert_eq!(producer_reach(&c), (2, 2_000_000));
    }

    #[test]
    fn in_flight_requests_rise_to_five_only_with_idempotence() {
        let mut plain = ClientConfig::new();
        plain.set("max.in.flight.requests.per.connection", "1");
        assert_eq!(raise_in_flight_requests(&mut plain), None);
        assert_eq!(
            plain.get("max.in.flight.requests.per.connection"),
            Some("1")
        );

        let mut idempotent = ClientConfig::new();
        idempotent.set("enable.idempotence", "true");
        idempotent.set("max.in.flight.requests.per.connection", "1");
        assert_eq!(
            raise_in_flight_requests(&mut idempotent).as_deref(),
            Some("1")
        );
        assert_eq!(
            idempotent.get("max.in.flight.requests.per.connection"),
            Some("5")
        );

        let mut already = ClientConfig::new();
        already.set("enable.idempotence", "true");
        already.set("max.in.flight", "5");
        assert_eq!(raise_in_flight_requests(&mut already), None);
        assert_eq!(already.get("max.in.flight"), Some("5"));
    }
}
