//! The wide-area benchmark: one `mmm-executor` process mirrors between two
//! Tansu brokers, each reached only through a shaping proxy, with the source
//! behind round trips of 0, 20, 50, 100 and 150 ms, then the target behind
//! them; for records of 200 bytes and of 10 KB.
//!
//! ```text
//! cargo xtask bench wan [-- --quick] [--rtts 0,100] [--sizes 200,10240] [--sides source,target]
//!     [--megabytes M] [--partitions P] [--producer k=v,..] [--consumer k=v,..] [--lan-windows]
//!     [--fetch-probe] [--target-producers N] [--source-consumers N] [--repeat N]
//! ```
//!
//! `--target-producers N`: the executor spreads the records over N producers whatever the round
//! trip (`MMM_EXECUTOR_TARGET_PRODUCERS`); by default it picks as many as the round trip needs.
//! `--source-consumers N` likewise for the consumers reading the source
//! (`MMM_EXECUTOR_SOURCE_CONSUMERS`). `--repeat N` runs each round trip N times, interleaved (0,
//! 100, 0, 100, ...), and the tables give the median run by rate and the highest peak RSS: on a
//! small machine two runs of one row differ by up to a third.
//!
//! `--sides mock-source`: librdkafka's mock cluster (in this process) as the source, delaying
//! each of its answers by the round trip instead of the proxy, with a topic of 64 partitions; it
//! shows the windows against a source that does not cap a fetch response.
//!
//! `--fetch-probe`: after each run with the source behind the proxy, a consumer configured as
//! the executor's (the same defaults, windows and task properties) reads the whole topic through
//! the same proxy, and librdkafka's statistics of its source connection are printed: fetch
//! requests, bytes per fetch response, requests in flight, and the round trip of each request.
//!
//! Values are JSON-like text (compressible about as much as typical event
//! data), written to the source uncompressed. For each run it prints
//! records/s, MB/s of payload, the bytes that crossed each proxy (fetches
//! from the source, produce requests to the target), the ratio to the 0 ms
//! run of the same side and size, the executor's peak RSS and CPU time, and the cores the whole
//! machine kept busy meanwhile (brokers and proxies included).

#![allow(clippy::print_stdout, clippy::unwrap_used)]

mod bench_support;
#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bench_support::{load_average, pairs, replicate, Replication, STEADY_FROM, STEADY_TO};
use mmm_executor::kafka_config::consumer_config_for;
use mmm_executor::windows::{RoundTrips, Windows};
use mmm_test_support::{
    create_topic, random_name, MockKafkaCluster, Shape, ShapedBroker, WireBytes,
};
use rand::Rng;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::statistics::{Broker, Statistics};
use rdkafka::ClientContext;
use rdkafka::{Offset, TopicPartitionList};

/// The round trip at which the executor must keep this share of its 0 ms rate.
const RATIO_AT: u64 = 100;
const RATIO_LIMIT: f64 = 0.8;
const RSS_LIMIT_LAN_MB: f64 = 64.0;
const RSS_LIMIT_FAR_MB: f64 = 256.0;

struct Args {
    rtts: Vec<u64>,
    sizes: Vec<usize>,
    sides: Vec<Side>,
    megabytes: usize,
    partitions: i32,
    producer: Vec<(String, String)>,
    consumer: Vec<(String, String)>,
    /// Keep the LAN windows whatever the round trip, for comparison.
    lan_windows: bool,
    /// Read the source again with the executor's consumer settings, for its statistics.
    fetch_probe: bool,
    /// `MMM_EXECUTOR_TARGET_PRODUCERS` for the executor.
    target_producers: Option<String>,
    /// `MMM_EXECUTOR_SOURCE_CONSUMERS` for the executor.
    source_consumers: Option<String>,
    /// Runs of each round trip, interleaved; the tables give the median run.
    repeat: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Source,
    Target,
    /// librdkafka's mock cluster as the source, delaying each answer by the round trip: a
    /// source that fills a fetch up to what the consumer asks (Tansu stops at 5 MiB).
    MockSource,
}

/// Partitions of the mock source's topic: the mock keeps at most 5 MB per partition and answers
/// a fetch with at most one batch per partition, so it needs more partitions than Tansu to hold
/// a run and fill a fetch.
const MOCK_PARTITIONS: i32 = 64;

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
            Side::MockSource => "mock source",
        }
    }
}

fn list<T: std::str::FromStr>(text: &str) -> Result<Vec<T>>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    text.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| p.trim().parse::<T>().with_context(|| format!("{p:?}")))
        .collect()
}

fn args() -> Result<Args> {
    let mut a = Args {
        rtts: vec![0, 20, 50, 100, 150],
        sizes: vec![200, 10_240],
        sides: vec![Side::Source, Side::Target],
        megabytes: 200,
        partitions: 8,
        producer: Vec::new(),
        consumer: Vec::new(),
        lan_windows: false,
        fetch_probe: false,
        target_producers: None,
        source_consumers: None,
        repeat: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--quick" {
            a.rtts = vec![0, 100];
            a.megabytes = 40;
            continue;
        }
        if flag == "--lan-windows" {
            a.lan_windows = true;
            continue;
        }
        if flag == "--fetch-probe" {
            a.fetch_probe = true;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        if !VALUED_FLAGS.contains(&flag.as_str()) {
            bail!("unknown flag {flag}\n{USAGE}");
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--rtts" => a.rtts = list(&value)?,
            "--sizes" => a.sizes = list(&value)?,
            "--sides" => {
                a.sides = value
                    .split(',')
                    .map(|s| match s {
                        "source" => Ok(Side::Source),
                        "target" => Ok(Side::Target),
                        "mock-source" => Ok(Side::MockSource),
                        other => bail!("unknown side {other:?} (source, target, mock-source)"),
                    })
                    .collect::<Result<_>>()?;
            }
            "--megabytes" => a.megabytes = value.parse()?,
            "--partitions" => a.partitions = value.parse()?,
            "--producer" => a.producer = pairs(&value)?,
            "--consumer" => a.consumer = pairs(&value)?,
            "--target-producers" => {
                value
                    .parse::<u32>()
                    .with_context(|| format!("--target-producers {value:?}"))?;
                a.target_producers = Some(value);
            }
            "--repeat" => {
                a.repeat = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .with_context(|| format!("--repeat {value:?}: a count of 1 or more"))?;
            }
            "--source-consumers" => {
                value
                    .parse::<u32>()
                    .with_context(|| format!("--source-consumers {value:?}"))?;
                a.source_consumers = Some(value);
            }
            other => bail!("unknown flag {other}\n{USAGE}"),
        }
    }
    if !a.rtts.contains(&0) {
        a.rtts.insert(0, 0);
    }
    Ok(a)
}

#[derive(Default)]
struct Counter(AtomicUsize);
impl ClientContext for Counter {}
impl ProducerContext for Counter {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_ok() {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A value of exactly `size` bytes of JSON-like events with varying fields.
fn event_value(rng: &mut impl Rng, size: usize) -> Vec<u8> {
    const ACTIONS: &[&str] = &["view", "click", "add_to_cart", "purchase", "search"];
    let mut value = Vec::with_capacity(size + 200);
    while value.len() < size {
        let event = format!(
            "{{\"id\":{},\"ts\":{},\"user\":\"user-{}\",\"action\":\"{}\",\"page\":\"/products/{}\",\"amount\":{}.{:02}}}\n",
            rng.random_range(0..10_000_000u64),
            1_700_000_000_000u64 + rng.random_range(0..86_400_000u64),
            rng.random_range(0..50_000u32),
            ACTIONS[rng.random_range(0..ACTIONS.len())],
            rng.random_range(0..20_000u32),
            rng.random_range(0..500u32),
            rng.random_range(0..100u32),
        );
        value.extend_from_slice(event.as_bytes());
    }
    value.truncate(size);
    value
}

/// Writes `count` records of `size` bytes, uncompressed, round-robin over the partitions, in
/// batches that wait up to `linger_ms` to fill.
fn load(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    count: usize,
    size: usize,
    linger_ms: u32,
) -> Result<()> {
    let producer: BaseProducer<Counter> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", linger_ms.to_string())
        .set("batch.num.messages", "1000000")
        .set("message.max.bytes", "100000000")
        .set("batch.size", "1000000")
        .set("compression.type", "none")
        .set("queue.buffering.max.messages", "500000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create_with_context(Counter::default())?;
    let mut rng = rand::rng();
    // Enough distinct values (64 MB of them) that a batch holds few repeats,
    // which would make compression look better than on real data.
    let distinct = (64_000_000 / size).clamp(1, 65_536);
    let pool: Vec<Vec<u8>> = (0..distinct).map(|_| event_value(&mut rng, size)).collect();
    for i in 0..count {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
            .partition((i % partitions as usize) as i32)
            .payload(pool[rng.random_range(0..pool.len())].as_slice());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(300))?;
    let delivered = producer.context().0.load(Ordering::Relaxed);
    if delivered != count {
        bail!("loading {topic} delivered {delivered} of {count} records");
    }
    Ok(())
}

struct Row {
    side: Side,
    size: usize,
    rtt: u64,
    run: Replication,
    source_wire: WireBytes,
    target_wire: WireBytes,
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

const USAGE: &str = "usage: wan-bench [--quick] [--lan-windows] [--fetch-probe] [--rtts 0,100] \
[--sizes 200,10240] [--sides source,target,mock-source] [--megabytes M] [--partitions P] \
[--producer k=v,..] [--consumer k=v,..] [--target-producers N] [--source-consumers N] [--repeat N]\n\
MMM_BENCH_EXECUTOR_LOG=<file> keeps the executor's log, with librdkafka's debug lines.";

/// The flags followed by a value.
const VALUED_FLAGS: &[&str] = &[
    "--rtts",
    "--sizes",
    "--sides",
    "--megabytes",
    "--partitions",
    "--producer",
    "--consumer",
    "--target-producers",
    "--source-consumers",
    "--repeat",
];

fn main() -> Result<()> {
    let a = args()?;
    println!(
        "wan benchmark: one executor, two Tansu brokers behind shaping proxies, {} partitions, \
         {} MB of payload per run; round trips {:?} ms; load average {} at the start",
        a.partitions,
        a.megabytes,
        a.rtts,
        load_average()
    );
    // Setting the in-flight bounds explicitly keeps every window at its LAN size.
    let mut env: Vec<(&str, &str)> = Vec::new();
    if a.lan_windows {
        println!("LAN windows at every round trip");
        env.push(("MMM_EXECUTOR_MAX_IN_FLIGHT_RECORDS", "15000"));
        env.push(("MMM_EXECUTOR_MAX_IN_FLIGHT_BYTES", "8388608"));
    }
    if let Some(n) = &a.target_producers {
        println!("{n} target producers at every round trip");
        env.push(("MMM_EXECUTOR_TARGET_PRODUCERS", n));
    }
    if let Some(n) = &a.source_consumers {
        println!("{n} source consumers at every round trip");
        env.push(("MMM_EXECUTOR_SOURCE_CONSUMERS", n));
    }
    let env = env.as_slice();
    if !a.producer.is_empty() || !a.consumer.is_empty() {
        println!(
            "task properties: producer {:?} consumer {:?}",
            a.producer, a.consumer
        );
    }
    let source = ShapedBroker::start(Shape::default())?;
    let mut target = ShapedBroker::start(Shape::default())?;
    let mut rows: Vec<Row> = Vec::new();
    for &size in &a.sizes {
        let records = (a.megabytes * 1_000_000 / size).max(1);
        let topic = random_name("wan");
        create_topic(&source.bootstrap(), &topic, a.partitions)?;
        let started = Instant::now();
        load(&source.bootstrap(), &topic, a.partitions, records, size, 5)?;
        println!(
            "\nloaded {records} records of {size} bytes in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let mock = if a.sides.contains(&Side::MockSource) {
            let mock = MockKafkaCluster::start(1)?;
            let topic = random_name("wan-mock");
            mock.create_topic(&topic, MOCK_PARTITIONS, 1)?;
            // Full batches: the mock answers a fetch with one batch per partition.
            load(
                &mock.bootstrap(),
                &topic,
                MOCK_PARTITIONS,
                records,
                size,
                1000,
            )?;
            Some((mock, topic))
        } else {
            None
        };
        for &side in &a.sides {
            // Interleaved, so that a machine that slows down or speeds up over the runs weighs
            // on every round trip alike.
            let rounds = (0..a.repeat).flat_map(|_| a.rtts.iter().copied());
            for rtt in rounds {
                let shape = Shape::round_trip(Duration::from_millis(rtt));
                let (from, topic, partitions) = match (side, &mock) {
                    (Side::MockSource, Some((mock, mock_topic))) => {
                        source.shaper().set_shape(Shape::default());
                        target.shaper().set_shape(Shape::default());
                        mock.set_latency(1, Duration::from_millis(rtt))?;
                        // The mock answers no DescribeConfigs, which creating it would need.
                        create_topic(&target.bootstrap(), mock_topic, MOCK_PARTITIONS)?;
                        (mock.bootstrap(), mock_topic, MOCK_PARTITIONS)
                    }
                    (Side::Target, _) => {
                        target.shaper().set_shape(shape);
                        source.shaper().set_shape(Shape::default());
                        (source.bootstrap(), &topic, a.partitions)
                    }
                    _ => {
                        source.shaper().set_shape(shape);
                        target.shaper().set_shape(Shape::default());
                        (source.bootstrap(), &topic, a.partitions)
                    }
                };
                let (source_before, target_before) =
                    (source.shaper().bytes(), target.shaper().bytes());
                let run = replicate(
                    &from,
                    &target.bootstrap(),
                    topic,
                    records,
                    records * size,
                    env,
                    |data| {
                        data.consumer.extend(a.consumer.iter().cloned());
                        data.producer.extend(a.producer.iter().cloned());
                    },
                )?;
                let row = Row {
                    side,
                    size,
                    rtt,
                    run,
                    source_wire: source.shaper().bytes().since(source_before),
                    target_wire: target.shaper().bytes().since(target_before),
                };
                println!(
                    "{} {:>3} ms, {:>5} B: {:>9.0} records/s {:>6.1} MB/s  wire: fetched {:>7.1} MB, \
                     produced {:>7.1} MB  peak RSS {:>5.1} MB  cpu {:>5.1} s  machine busy {:.2} cores  \
                     join {:.1} s  load {}  steady {:.1} MB/s  first ack {:.0} ms",
                    side.name(),
                    rtt,
                    size,
                    row.run.rate.msgs(),
                    row.run.rate.mb(),
                    mb(row.source_wire.to_client),
                    mb(row.target_wire.to_server),
                    row.run.peak_rss_kb as f64 / 1024.0,
                    row.run.cpu.as_secs_f64(),
                    row.run.machine_busy,
                    row.run.join.as_secs_f64(),
                    load_average(),
                    steady_mb(&row.run),
                    row.run.progress.first().map_or(f64::NAN, |(at, _)| at.as_secs_f64() * 1e3),
                );
                rows.push(row);
                if a.fetch_probe && side != Side::Target {
                    let windows = if a.lan_windows {
                        Windows::default()
                    } else {
                        Windows::for_round_trips(RoundTrips {
                            source: Duration::from_millis(rtt),
                            target: Duration::ZERO,
                        })
                    };
                    fetch_probe(&from, topic, partitions, records, &windows, &a.consumer)?
                        .print(rtt, size);
                }
                // The in-memory target would otherwise hold every run's copy.
                target.shaper().set_shape(Shape::default());
                target.broker_mut().restart()?;
            }
        }
    }
    source.shaper().set_shape(Shape::default());
    print_tables(&rows);
    println!("\nload average {} at the end", load_average());
    Ok(())
}

/// The statistics of the probe's source connection, one per interval while it reads (librdkafka's
/// round-trip window covers one interval; an idle consumer's fetches wait out
/// `fetch.wait.max.ms`, so intervals after the read would skew it).
#[derive(Default)]
struct ProbeStats {
    reading: AtomicBool,
    intervals: Mutex<Vec<Broker>>,
}

impl ClientContext for ProbeStats {
    fn stats(&self, statistics: Statistics) {
        if !self.reading.load(Ordering::Relaxed) {
            return;
        }
        // The broker itself, not the bootstrap connection.
        if let Some(broker) = statistics.brokers.into_values().find(|b| b.nodeid >= 0) {
            self.intervals.lock().unwrap().push(broker);
        }
    }
}

impl ConsumerContext for ProbeStats {}

struct FetchProbe {
    elapsed: Duration,
    bytes: usize,
    fetch_max_bytes: u64,
    intervals: Vec<Broker>,
}

impl FetchProbe {
    fn print(&self, rtt: u64, size: usize) {
        let last = self.intervals.last();
        let fetches = last.and_then(|b| b.req.get("Fetch").copied()).unwrap_or(0);
        let rx = last.map_or(0, |b| b.rxbytes);
        let windows = || self.intervals.iter().filter_map(|b| b.rtt.as_ref());
        let (sum, cnt) = windows().fold((0i64, 0i64), |(s, c), w| (s + w.sum, c + w.cnt));
        let max = windows().map(|w| w.max).max().unwrap_or(0);
        let min = windows()
            .filter(|w| w.cnt > 0)
            .map(|w| w.min)
            .min()
            .unwrap_or(0);
        let in_flight = self
            .intervals
            .iter()
            .map(|b| b.waitresp_cnt)
            .max()
            .unwrap_or(0);
        println!(
            "  fetch probe {rtt:>3} ms, {size:>5} B: {:>6.1} MB/s  {fetches} fetches  \
             {:.2} MB per fetch (fetch.max.bytes {:.2} MB)  at most {in_flight} requests in flight  \
             request round trip avg {:.1} ms min {:.1} ms max {:.1} ms ({} intervals)",
            self.bytes as f64 / self.elapsed.as_secs_f64() / 1e6,
            rx as f64 / fetches.max(1) as f64 / 1e6,
            self.fetch_max_bytes as f64 / 1e6,
            sum as f64 / cnt.max(1) as f64 / 1000.0,
            min as f64 / 1000.0,
            max as f64 / 1000.0,
            self.intervals.len(),
        );
    }
}

/// Reads all `records` of `topic` with the executor's consumer settings and these windows,
/// without joining a group (as the executor's rate leaves its group join apart).
fn fetch_probe(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    records: usize,
    windows: &Windows,
    user: &[(String, String)],
) -> Result<FetchProbe> {
    let mut props: mmm_core::task_data::Properties = user.iter().cloned().collect();
    props.insert("bootstrap.servers".into(), bootstrap.into());
    props.insert("statistics.interval.ms".into(), "100".into());
    // librdkafka wants a group for `assign`; it is never joined.
    props.insert("group.id".into(), random_name("fetch-probe"));
    let config = consumer_config_for(&props, windows);
    let fetch_max_bytes = config
        .get("fetch.max.bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(windows.fetch_max_bytes);
    let consumer: BaseConsumer<ProbeStats> = config.create_with_context(ProbeStats::default())?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.context().reading.store(true, Ordering::Relaxed);
    consumer.assign(&tpl)?;
    let (mut got, mut bytes) = (0usize, 0usize);
    let mut started = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    while got < records {
        if Instant::now() > deadline {
            bail!("the fetch probe read {got} of {records} records in 600 s");
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                started.get_or_insert_with(Instant::now);
                got += 1;
                bytes += m.payload_len();
            }
            Some(Err(e)) => println!("  fetch probe: consumer error {e}"),
            None => {}
        }
    }
    let elapsed = started.map_or(Duration::ZERO, |s| s.elapsed());
    consumer.context().reading.store(false, Ordering::Relaxed);
    let intervals = std::mem::take(&mut *consumer.context().intervals.lock().unwrap());
    if intervals.is_empty() {
        bail!("no statistics from the probe consumer");
    }
    Ok(FetchProbe {
        elapsed,
        bytes,
        fetch_max_bytes,
        intervals,
    })
}

/// The steady rate of a run in MB/s of payload (NaN when the run was too short to tell).
fn steady_mb(run: &Replication) -> f64 {
    run.steady().map_or(f64::NAN, |r| r.mb())
}

/// The rate a row is judged by: the steady one, else the whole run's.
fn judged_msgs(run: &Replication) -> f64 {
    run.steady().map_or_else(|| run.rate.msgs(), |r| r.msgs())
}

/// The runs of one round trip: the median one by steady rate, the highest peak RSS of them, and
/// every run's steady MB/s.
struct Runs<'a> {
    median: &'a Row,
    peak_rss_mb: f64,
    rates_mb: Vec<f64>,
}

fn runs_of<'a>(rows: &[&'a Row]) -> Option<Runs<'a>> {
    let mut sorted: Vec<&Row> = rows.to_vec();
    sorted.sort_by(|a, b| judged_msgs(&a.run).total_cmp(&judged_msgs(&b.run)));
    let median = *sorted.get((sorted.len().checked_sub(1)?) / 2)?;
    Some(Runs {
        median,
        peak_rss_mb: rows
            .iter()
            .map(|r| r.run.peak_rss_kb as f64 / 1024.0)
            .fold(0.0, f64::max),
        rates_mb: rows.iter().map(|r| steady_mb(&r.run)).collect(),
    })
}

fn print_tables(rows: &[Row]) {
    let mut groups: BTreeMap<(Side, usize), BTreeMap<u64, Vec<&Row>>> = BTreeMap::new();
    for row in rows {
        groups
            .entry((row.side, row.size))
            .or_default()
            .entry(row.rtt)
            .or_default()
            .push(row);
    }
    println!(
        "\nsteady: from {:.0}% to {:.0}% of the records acknowledged, which leaves out the round \
         trips every run pays once (the first record's and the last one's); whole: from the first \
         record consumed to the last acknowledged",
        STEADY_FROM * 100.0,
        STEADY_TO * 100.0
    );
    for ((side, size), by_rtt) in groups {
        let runs: Vec<(u64, Runs)> = by_rtt
            .iter()
            .filter_map(|(rtt, rows)| Some((*rtt, runs_of(rows)?)))
            .collect();
        let repeated = runs.iter().any(|(_, r)| r.rates_mb.len() > 1);
        let base = runs
            .iter()
            .find(|(rtt, _)| *rtt == 0)
            .map(|(_, r)| &r.median.run);
        let base_steady = base.map_or(f64::NAN, judged_msgs);
        let base_whole = base.map_or(f64::NAN, |r| r.rate.msgs());
        println!(
            "\n{} behind the proxy, records of {size} bytes",
            side.name()
        );
        if repeated {
            println!(
                "(the median of each round trip's runs by steady rate; peak RSS: the highest of them)"
            );
        }
        let extra_head = if repeated {
            " steady MB/s of each run |"
        } else {
            ""
        };
        let extra_rule = if repeated { "---:|" } else { "" };
        println!(
            "| RTT ms | records/s steady | MB/s steady | ratio steady | MB/s whole | ratio whole | first ack ms | wire MB fetched | wire MB produced | peak RSS MB | executor CPU s | machine busy, cores |{extra_head}"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|{extra_rule}");
        for (rtt, runs) in &runs {
            let r = runs.median;
            let extra = if repeated {
                let each: Vec<String> = runs.rates_mb.iter().map(|m| format!("{m:.1}")).collect();
                format!(" {} |", each.join(", "))
            } else {
                String::new()
            };
            println!(
                "| {} | {:.0} | {:.1} | {:.2} | {:.1} | {:.2} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} |{extra}",
                rtt,
                judged_msgs(&r.run),
                steady_mb(&r.run),
                judged_msgs(&r.run) / base_steady,
                r.run.rate.mb(),
                r.run.rate.msgs() / base_whole,
                r.run.progress.first().map_or(f64::NAN, |(at, _)| at.as_secs_f64() * 1e3),
                mb(r.source_wire.to_client),
                mb(r.target_wire.to_server),
                runs.peak_rss_mb,
                r.run.cpu.as_secs_f64(),
                r.run.machine_busy,
            );
        }
        for (rtt, runs) in &runs {
            let ratio = judged_msgs(&runs.median.run) / base_steady;
            let whole = runs.median.run.rate.msgs() / base_whole;
            let rss = runs.peak_rss_mb;
            if *rtt == RATIO_AT {
                println!(
                    "  at {RATIO_AT} ms: steady ratio {ratio:.2} (limit >= {RATIO_LIMIT}: {}); whole-run ratio {whole:.2}",
                    met(ratio >= RATIO_LIMIT)
                );
            }
            if *rtt == 0 {
                println!(
                    "  at 0 ms: peak RSS {rss:.1} MB (limit <= {RSS_LIMIT_LAN_MB} MB: {})",
                    met(rss <= RSS_LIMIT_LAN_MB)
                );
            }
            if *rtt == 150 {
                println!(
                    "  at 150 ms: peak RSS {rss:.1} MB (limit <= {RSS_LIMIT_FAR_MB} MB: {})",
                    met(rss <= RSS_LIMIT_FAR_MB)
                );
            }
        }
    }
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}
