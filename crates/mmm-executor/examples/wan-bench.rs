//! The wide-area benchmark: one `mmm-executor` process mirrors between two
//! Tansu brokers, each reached only through a shaping proxy, with the source
//! behind round trips of 0, 20, 50, 100 and 150 ms, then the target behind
//! them; for records of 200 bytes and of 10 KB.
//!
//! ```text
//! cargo xtask bench wan [-- --quick] [--rtts 0,100] [--sizes 200,10240] [--sides source,target]
//!     [--megabytes M] [--partitions P] [--producer k=v,..] [--consumer k=v,..] [--lan-windows]
//! ```
//!
//! Values are JSON-like text (compressible about as much as typical event
//! data), written to the source uncompressed. For each run it prints
//! records/s, MB/s of payload, the bytes that crossed each proxy (fetches
//! from the source, produce requests to the target), the ratio to the 0 ms
//! run of the same side and size, the executor's peak RSS and CPU time.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

mod bench_support;
#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bench_support::{load_average, pairs, replicate, Replication};
use mmm_test_support::{create_topic, random_name, Shape, ShapedBroker, WireBytes};
use rand::Rng;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

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
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Source,
    Target,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
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
                        other => bail!("unknown side {other:?} (source, target)"),
                    })
                    .collect::<Result<_>>()?;
            }
            "--megabytes" => a.megabytes = value.parse()?,
            "--partitions" => a.partitions = value.parse()?,
            "--producer" => a.producer = pairs(&value)?,
            "--consumer" => a.consumer = pairs(&value)?,
            other => bail!(
                "unknown flag {other} (known: --quick, --lan-windows, --rtts, --sizes, --sides, --megabytes, \
                 --partitions, --producer, --consumer)"
            ),
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

/// Writes `count` records of `size` bytes, uncompressed, round-robin over the partitions.
fn load(bootstrap: &str, topic: &str, partitions: i32, count: usize, size: usize) -> Result<()> {
    let producer: BaseProducer<Counter> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
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
    let env: &[(&str, &str)] = if a.lan_windows {
        println!("LAN windows at every round trip");
        &[
            ("MMM_EXECUTOR_MAX_IN_FLIGHT_RECORDS", "20000"),
            ("MMM_EXECUTOR_MAX_IN_FLIGHT_BYTES", "8388608"),
        ]
    } else {
        &[]
    };
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
        load(&source.bootstrap(), &topic, a.partitions, records, size)?;
        println!(
            "\nloaded {records} records of {size} bytes in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        for &side in &a.sides {
            for &rtt in &a.rtts {
                let shape = Shape::round_trip(Duration::from_millis(rtt));
                let (shaped, other) = match side {
                    Side::Source => (&source, &target),
                    Side::Target => (&target, &source),
                };
                shaped.shaper().set_shape(shape);
                other.shaper().set_shape(Shape::default());
                let (source_before, target_before) =
                    (source.shaper().bytes(), target.shaper().bytes());
                let run = replicate(
                    &source.bootstrap(),
                    &target.bootstrap(),
                    &topic,
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
                     produced {:>7.1} MB  peak RSS {:>5.1} MB  cpu {:>5.1} s  join {:.1} s  load {}",
                    side.name(),
                    rtt,
                    size,
                    row.run.rate.msgs(),
                    row.run.rate.mb(),
                    mb(row.source_wire.to_client),
                    mb(row.target_wire.to_server),
                    row.run.peak_rss_kb as f64 / 1024.0,
                    row.run.cpu.as_secs_f64(),
                    row.run.join.as_secs_f64(),
                    load_average(),
                );
                rows.push(row);
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

fn print_tables(rows: &[Row]) {
    let mut groups: BTreeMap<(Side, usize), Vec<&Row>> = BTreeMap::new();
    for row in rows {
        groups.entry((row.side, row.size)).or_default().push(row);
    }
    for ((side, size), rows) in groups {
        let base = rows
            .iter()
            .find(|r| r.rtt == 0)
            .map_or(f64::NAN, |r| r.run.rate.msgs());
        println!(
            "\n{} behind the proxy, records of {size} bytes",
            side.name()
        );
        println!(
            "| RTT ms | records/s | MB/s payload | wire MB fetched | wire MB produced | ratio to 0 ms | peak RSS MB | executor CPU s |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in &rows {
            println!(
                "| {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} |",
                r.rtt,
                r.run.rate.msgs(),
                r.run.rate.mb(),
                mb(r.source_wire.to_client),
                mb(r.target_wire.to_server),
                r.run.rate.msgs() / base,
                r.run.peak_rss_kb as f64 / 1024.0,
                r.run.cpu.as_secs_f64(),
            );
        }
        for r in &rows {
            let ratio = r.run.rate.msgs() / base;
            let rss = r.run.peak_rss_kb as f64 / 1024.0;
            if r.rtt == RATIO_AT {
                println!(
                    "  at {RATIO_AT} ms: ratio {ratio:.2} (limit >= {RATIO_LIMIT}: {})",
                    met(ratio >= RATIO_LIMIT)
                );
            }
            if r.rtt == 0 {
                println!(
                    "  at 0 ms: peak RSS {rss:.1} MB (limit <= {RSS_LIMIT_LAN_MB} MB: {})",
                    met(rss <= RSS_LIMIT_LAN_MB)
                );
            }
            if r.rtt == 150 {
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
