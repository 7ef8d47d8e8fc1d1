//! The demo's Kafka helper: creates a topic, produces numbered sample
//! records, and watches a topic fill up with a live progress bar.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

#[derive(Parser)]
#[command(about = "Kafka helper of `cargo xtask demo`")]
struct Cli {
    /// Bootstrap servers of the cluster to work on.
    #[arg(long)]
    bootstrap: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Creates a topic and waits until its partitions are visible.
    CreateTopic {
        topic: String,
        #[arg(long, default_value_t = 4)]
        partitions: i32,
    },
    /// Produces `count` records of `size` bytes, round-robin over partitions.
    Produce {
        topic: String,
        #[arg(long)]
        count: u64,
        #[arg(long, default_value_t = 200)]
        size: usize,
        /// Records per second; 0 produces as fast as the broker takes them.
        #[arg(long, default_value_t = 0)]
        rate: u64,
    },
    /// Consumes the topic from the beginning until `expect` records arrived,
    /// drawing a progress bar; fails after `timeout_secs`.
    Watch {
        topic: String,
        #[arg(long)]
        expect: u64,
        #[arg(long, default_value_t = 120)]
        timeout_secs: u64,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::CreateTopic { topic, partitions } => {
            create_topic(&cli.bootstrap, &topic, partitions)
        }
        Command::Produce {
            topic,
            count,
            size,
            rate,
        } => produce(&cli.bootstrap, &topic, count, size, rate),
        Command::Watch {
            topic,
            expect,
            timeout_secs,
        } => watch(
            &cli.bootstrap,
            &topic,
            expect,
            Duration::from_secs(timeout_secs),
        ),
    }
}

fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("creating the admin client")?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results =
        futures::executor::block_on(admin.create_topics([&new_topic], &AdminOptions::new()))
            .context("creating the topic")?;
    for result in results {
        if let Err((name, code)) = result {
            bail!("creating topic {name}: {code}");
        }
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("creating a metadata client")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .context("reading metadata")?;
        let seen = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map_or(0, |t| t.partitions().len());
        if seen == usize::try_from(partitions).unwrap_or(0) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("topic {topic} shows {seen} of {partitions} partitions after 30 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn produce(bootstrap: &str, topic: &str, count: u64, size: usize, rate: u64) -> Result<()> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "20")
        .set("acks", "all")
        .create()
        .context("creating the producer")?;
    let mut value = vec![b'x'; size.max(16)];
    let started = Instant::now();
    for n in 0..count {
        if rate > 0 {
            // Steady: record n goes out n/rate seconds after the start.
            let due = started + Duration::from_secs_f64(n as f64 / rate as f64);
            while Instant::now() < due {
                producer.poll(due.saturating_duration_since(Instant::now()));
            }
        }
        let key = format!("key-{n}");
        let stamp = format!("{n:016}");
        value[..16].copy_from_slice(stamp.as_bytes());
        loop {
            match producer.send(BaseRecord::<_, _>::to(topic).key(&key).payload(&value)) {
                Ok(()) => break,
                Err((e, _))
                    if e.rdkafka_error_code()
                        == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                {
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => bail!("producing record {n}: {e}"),
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(60))
        .context("flushing the sample records")?;
    Ok(())
}

fn watch(bootstrap: &str, topic: &str, expect: u64, timeout: Duration) -> Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("mmm-demo-watch-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .create()
        .context("creating the consumer")?;
    let start = Instant::now();
    let partitions = loop {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .context("reading metadata")?;
        let n = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map_or(0, |t| t.partitions().len());
        if n > 0 {
            break n;
        }
        if start.elapsed() > timeout {
            bail!("topic {topic} did not appear on the target within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        let p = i32::try_from(p).context("partition number")?;
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .context("assigning")?;
    }
    consumer
        .assign(&assignment)
        .context("assigning partitions")?;
    let mut seen = 0u64;
    let mut last_draw = Instant::now();
    let stderr = std::io::stderr();
    while seen < expect {
        if start.elapsed() > timeout {
            eprintln!();
            bail!("only {seen} of {expect} records reached {topic} within {timeout:?}");
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) if message.payload().is_some() => seen += 1,
            Some(Ok(_)) => {}
            Some(Err(e)) => bail!("consuming {topic}: {e}"),
            None => {}
        }
        if last_draw.elapsed() > Duration::from_millis(200) || seen == expect {
            last_draw = Instant::now();
            draw(&mut stderr.lock(), seen, expect, start.elapsed());
        }
    }
    draw(&mut stderr.lock(), seen, expect, start.elapsed());
    eprintln!();
    Ok(())
}

fn draw(out: &mut impl Write, seen: u64, expect: u64, elapsed: Duration) {
    const WIDTH: u64 = 40;
    let filled = (seen * WIDTH)
        .checked_div(expect)
        .unwrap_or(WIDTH)
        .min(WIDTH);
    let rate = seen as f64 / elapsed.as_secs_f64().max(0.001);
    let bar: String = (0..WIDTH)
        .map(|i| if i < filled { '#' } else { '.' })
        .collect();
    let _ = write!(
        out,
        "\r  mirrored [{bar}] {seen}/{expect} records, {rate:.0} records/s   "
    );
    let _ = out.flush();
}
