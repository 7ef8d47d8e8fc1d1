//! The executor benchmark: one `mmm-executor` process mirrors 1,000,000
//! records of 200 bytes across 8 partitions between two Tansu brokers, next
//! to consume-only and produce-only runs with the same librdkafka settings.
//!
//! ```text
//! cargo run --release -p mmm-executor --example executor-bench [-- --records N --size B --partitions P --offset-sync-topic NAME]
//! ```
//!
//! Throughput is measured from the first record to the last one (consumed,
//! acknowledged, or present in the target), so the consumer group join, which
//! Tansu makes slow, is reported apart.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

mod bench_support;
#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bench_support::{pairs, props, replicate, Rate};
use mmm_executor::kafka_config::{consumer_config, producer_config};
use mmm_test_support::{create_topic, produce_generated, random_name, KafkaBroker};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

struct Args {
    records: usize,
    size: usize,
    partitions: i32,
    /// Extra consumer properties (`--consumer k=v,k=v`), for tuning runs.
    consumer: Vec<(String, String)>,
    /// Extra producer properties (`--producer k=v,k=v`).
    producer: Vec<(String, String)>,
    /// `MMM_EXECUTOR_MAX_IN_FLIGHT_RECORDS` for the executor (`--in-flight N`).
    in_flight: Option<String>,
    /// Which measurements to run (`--only load,produce,consume,replicate`).
    only: Option<Vec<String>>,
    /// The task's `offset_sync_topic` (`--offset-sync-topic ""` turns syncs off).
    offset_sync_topic: Option<String>,
}

impl Args {
    fn runs(&self, what: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|w| w == what))
    }
}

fn args() -> Result<Args> {
    let mut a = Args {
        records: 1_000_000,
        size: 200,
        partitions: 8,
        consumer: Vec::new(),
        producer: Vec::new(),
        only: None,
        in_flight: None,
        offset_sync_topic: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--records" => a.records = value.parse()?,
            "--size" => a.size = value.parse()?,
            "--partitions" => a.partitions = value.parse()?,
            "--consumer" => a.consumer = pairs(&value)?,
            "--producer" => a.producer = pairs(&value)?,
            "--in-flight" => a.in_flight = Some(value),
            "--only" => a.only = Some(value.split(',').map(str::to_owned).collect()),
            "--offset-sync-topic" => a.offset_sync_topic = Some(value),
            other => bail!("unknown flag {other} (known: --records, --size, --partitions)"),
        }
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

/// Produces `n` records with the executor's producer defaults.
fn produce_only(bootstrap: &str, topic: &str, a: &Args) -> Result<Rate> {
    let producer: BaseProducer<Counter> =
        producer_config(&props(bootstrap, &[("acks", "all")], &a.producer))
            .create_with_context(Counter::default())?;
    let value = vec![b'p'; a.size];
    let start = Instant::now();
    for i in 0..a.records {
        let p = (i % a.partitions as usize) as i32;
        let mut record: BaseRecord<'_, [u8], [u8]> =
            BaseRecord::to(topic).partition(p).payload(value.as_slice());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(1));
                }
            }
        }
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(120))?;
    let delivered = producer.context().0.load(Ordering::Relaxed);
    if delivered != a.records {
        bail!("produce-only delivered {delivered} of {}", a.records);
    }
    Ok(Rate {
        name: "produce-only (target)",
        records: a.records,
        bytes: a.records * a.size,
        elapsed: start.elapsed(),
    })
}

/// Consumes `n` records with the executor's consumer defaults and a fresh group.
fn consume_only(bootstrap: &str, topic: &str, a: &Args) -> Result<(Rate, Duration)> {
    let group = random_name("bench-consume");
    let consumer: BaseConsumer = consumer_config(&props(
        bootstrap,
        &[
            ("group.id", &group),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", "6000"),
        ],
        &a.consumer,
    ))
    .create()?;
    consumer.subscribe(&[topic])?;
    let subscribed = Instant::now();
    let mut first = None;
    let mut n = 0usize;
    let mut bytes = 0usize;
    let deadline = Instant::now() + Duration::from_secs(300);
    while n < a.records {
        if Instant::now() > deadline {
            bail!("consume-only read {n} of {} records", a.records);
        }
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            first.get_or_insert_with(Instant::now);
            bytes += m.payload().map_or(0, <[u8]>::len);
            n += 1;
        }
    }
    let first = first.unwrap_or(subscribed);
    Ok((
        Rate {
            name: "consume-only (source)",
            records: n,
            bytes,
            elapsed: first.elapsed(),
        },
        first - subscribed,
    ))
}

fn main() -> Result<()> {
    let a = args()?;
    println!(
        "executor benchmark: {} records of {} bytes across {} partitions, two Tansu brokers",
        a.records, a.size, a.partitions
    );
    let source = KafkaBroker::start()?;
    let target = KafkaBroker::start()?;
    let topic = random_name("bench");
    create_topic(&source.bootstrap(), &topic, a.partitions)?;
    let produce_topic = random_name("bench-produce");
    create_topic(&target.bootstrap(), &produce_topic, a.partitions)?;
    create_topic(&target.bootstrap(), &topic, a.partitions)?;

    let load_start = Instant::now();
    produce_generated(&source.bootstrap(), &topic, a.partitions, a.records, a.size)?;
    let load = Rate {
        name: "load (source, test helper)",
        records: a.records,
        bytes: a.records * a.size,
        elapsed: load_start.elapsed(),
    };
    println!();
    load.print();
    let produce = if a.runs("produce") {
        let r = produce_only(&target.bootstrap(), &produce_topic, &a)?;
        r.print();
        Some(r)
    } else {
        None
    };
    let consume = if a.runs("consume") {
        let (r, join) = consume_only(&source.bootstrap(), &topic, &a)?;
        r.print();
        println!(
            "  (group join before the first record: {:.2} s)",
            join.as_secs_f64()
        );
        Some(r)
    } else {
        None
    };
    let replication = if a.runs("replicate") {
        let in_flight = a
            .in_flight
            .as_deref()
            .map(|n| ("MMM_EXECUTOR_MAX_IN_FLIGHT_RECORDS", n));
        let run = replicate(
            &source.bootstrap(),
            &target.bootstrap(),
            &topic,
            a.records,
            a.records * a.size,
            in_flight.as_slice(),
            |data| {
                data.consumer.extend(a.consumer.iter().cloned());
                data.producer.extend(a.producer.iter().cloned());
                if let Some(topic) = &a.offset_sync_topic {
                    data.offset_sync_topic = topic.clone();
                }
            },
        )?;
        let (r, join, hwm_kb) = (run.rate, run.join, run.peak_rss_kb);
        r.print();
        println!(
            "  (launch to first record: {:.2} s; peak RSS {:.1} MB)",
            join.as_secs_f64(),
            hwm_kb as f64 / 1024.0
        );
        Some((r, hwm_kb))
    } else {
        None
    };
    println!();
    if let (Some(p), Some(c), Some((r, hwm_kb))) = (&produce, &consume, &replication) {
        let limit = p.msgs().min(c.msgs());
        let ratio = r.msgs() / limit;
        println!(
            "ratio replication / min(consume, produce) = {ratio:.3}   (target >= 0.9: {})",
            if ratio >= 0.9 { "met" } else { "NOT met" }
        );
        let rss_mb = *hwm_kb as f64 / 1024.0;
        println!(
            "executor peak RSS (VmHWM) = {rss_mb:.1} MB   (target <= 64 MB: {})",
            if rss_mb > 0.0 && rss_mb <= 64.0 {
                "met"
            } else {
                "NOT met"
            }
        );
    }
    Ok(())
}
