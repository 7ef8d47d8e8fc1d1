//! A real Tansu broker: start, produce, consume, pause, stop.

use std::time::Duration;

use mmm_test_support::{
    consume_all, create_topic, produce, produce_generated, random_name, verify_generated,
    KafkaBroker, TestRecord,
};

const TIMEOUT: Duration = Duration::from_secs(30);

fn process_exists(pid: u32) -> bool {
    // A zombie still has a /proc entry; a reaped process does not.
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn round_trip_keeps_keys_values_headers_and_timestamps_byte_exact() {
    let broker = KafkaBroker::start().expect("broker starts");
    let topic = random_name("round-trip");
    create_topic(&broker.bootstrap(), &topic, 3).expect("topic created");
    let records = vec![
        TestRecord::new(0, b"k0".to_vec(), vec![0u8, 1, 2, 255])
            .with_header("h1", b"v1".to_vec())
            .with_header("h1", Vec::new())
            .with_timestamp(1_600_000_000_123),
        TestRecord::new(1, Vec::new(), b"empty key".to_vec()).with_timestamp(1_700_000_000_000),
        TestRecord {
            partition: 2,
            key: None,
            value: None,
            headers: vec![("only".into(), vec![7u8; 300])],
            timestamp: Some(1_650_000_000_001),
        },
        TestRecord::new(0, b"k1".to_vec(), vec![b'z'; 10_000]).with_timestamp(1_600_000_000_124),
    ];
    produce(&broker.bootstrap(), &topic, &records).expect("records produced");

    let consumed = consume_all(&broker.bootstrap(), &topic, records.len(), TIMEOUT)
        .expect("all records consumed");
    assert_eq!(consumed.len(), records.len());
    for record in &records {
        let found = consumed.iter().filter(|c| c.matches(record)).count();
        assert_eq!(
            found, 1,
            "record {record:?} not read back exactly once: {consumed:?}"
        );
    }
    let partition0: Vec<_> = consumed.iter().filter(|c| c.partition == 0).collect();
    assert_eq!(partition0[0].key.as_deref(), Some(&b"k0"[..]));
    assert_eq!(partition0[1].key.as_deref(), Some(&b"k1"[..]));
    assert!(partition0[0].offset < partition0[1].offset);
}

#[test]
fn a_read_goes_past_the_expected_count_so_duplicates_show() {
    let broker = KafkaBroker::start().expect("broker starts");
    let topic = random_name("past-count");
    create_topic(&broker.bootstrap(), &topic, 2).expect("topic created");
    produce_generated(&broker.bootstrap(), &topic, 2, 100, 20).expect("produced");
    // The same records again, as a mirror that restarted would write them.
    produce_generated(&broker.bootstrap(), &topic, 2, 10, 20).expect("produced again");
    let consumed = consume_all(&broker.bootstrap(), &topic, 100, TIMEOUT).expect("consumed");
    assert_eq!(
        consumed.len(),
        110,
        "every record, not just the 100 asked for"
    );
    let report = verify_generated(&consumed, 2, 100);
    assert_eq!(report.duplicates, 10, "{report:?}");
    assert!(report.is_complete() && !report.is_exact(), "{report:?}");
}

#[test]
fn generated_records_are_all_read_back() {
    let broker = KafkaBroker::start().expect("broker starts");
    let topic = random_name("generated");
    create_topic(&broker.bootstrap(), &topic, 4).expect("topic created");
    produce_generated(&broker.bootstrap(), &topic, 4, 10_001, 100).expect("produced");
    let consumed = consume_all(&broker.bootstrap(), &topic, 10_001, TIMEOUT).expect("consumed");
    let report = verify_generated(&consumed, 4, 10_001);
    assert!(report.is_exact(), "{report:?}");

    // Losing one record must be noticed.
    let mut partial = consumed.clone();
    let removed = partial.remove(77);
    let report = verify_generated(&partial, 4, 10_001);
    let lost = mmm_test_support::decode_generated(removed.value.as_deref().expect("value"))
        .expect("generated value");
    assert_eq!(report.missing, vec![lost]);
}

#[test]
fn two_brokers_run_side_by_side_with_separate_data() {
    let first = KafkaBroker::start().expect("first broker starts");
    let second = KafkaBroker::start().expect("second broker starts");
    assert_ne!(first.bootstrap(), second.bootstrap());
    let topic = random_name("side-by-side");
    create_topic(&first.bootstrap(), &topic, 1).expect("topic on first");
    create_topic(&second.bootstrap(), &topic, 1).expect("topic on second");
    produce(
        &first.bootstrap(),
        &topic,
        &[TestRecord::new(0, "k", "first")],
    )
    .expect("produce 1");
    produce(
        &second.bootstrap(),
        &topic,
        &[TestRecord::new(0, "k", "second")],
    )
    .expect("produce 2");
    let from_first = consume_all(&first.bootstrap(), &topic, 1, TIMEOUT).expect("consume 1");
    let from_second = consume_all(&second.bootstrap(), &topic, 1, TIMEOUT).expect("consume 2");
    assert_eq!(from_first[0].value.as_deref(), Some(&b"first"[..]));
    assert_eq!(from_second[0].value.as_deref(), Some(&b"second"[..]));
}

#[test]
fn dropping_the_broker_leaves_no_process() {
    let broker = KafkaBroker::start().expect("broker starts");
    let pid = broker.pid().expect("running broker has a pid");
    assert!(process_exists(pid));
    drop(broker);
    assert!(!process_exists(pid), "broker process {pid} survived drop");
}

#[test]
fn a_panicking_test_leaves_no_process() {
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let broker = KafkaBroker::start().expect("broker starts");
        tx.send(broker.pid().expect("pid")).expect("send pid");
        panic!("test failure while the broker runs");
    })
    .join();
    assert!(outcome.is_err());
    let pid = rx.recv().expect("pid sent before the panic");
    assert!(
        !process_exists(pid),
        "broker process {pid} survived the panic"
    );
}

#[test]
fn pause_and_resume_keep_the_data() {
    let mut broker = KafkaBroker::start().expect("broker starts");
    let topic = random_name("paused");
    create_topic(&broker.bootstrap(), &topic, 1).expect("topic created");
    produce(
        &broker.bootstrap(),
        &topic,
        &[TestRecord::new(0, "k", "before")],
    )
    .expect("produce");

    broker.pause().expect("pause");
    assert!(broker.is_paused());
    let during = consume_all(&broker.bootstrap(), &topic, 1, Duration::from_secs(2));
    assert!(during.is_err(), "a paused broker answered: {during:?}");

    broker.resume().expect("resume");
    produce(
        &broker.bootstrap(),
        &topic,
        &[TestRecord::new(0, "k", "after")],
    )
    .expect("produce");
    let consumed = consume_all(&broker.bootstrap(), &topic, 2, TIMEOUT).expect("consume");
    let values: Vec<_> = consumed
        .iter()
        .map(|r| r.value.clone().expect("value"))
        .collect();
    assert_eq!(values, vec![b"before".to_vec(), b"after".to_vec()]);
}

#[test]
fn restart_keeps_the_port_and_loses_the_data() {
    let mut broker = KafkaBroker::start().expect("broker starts");
    let bootstrap = broker.bootstrap();
    let old_pid = broker.pid().expect("pid");
    let topic = random_name("restarted");
    create_topic(&bootstrap, &topic, 1).expect("topic created");
    produce(&bootstrap, &topic, &[TestRecord::new(0, "k", "lost")]).expect("produce");

    broker.restart().expect("restart");
    assert_eq!(broker.bootstrap(), bootstrap);
    assert_ne!(broker.pid(), Some(old_pid));
    assert!(!process_exists(old_pid));
    // The topic is gone with the old process: creating it again succeeds and it is empty.
    create_topic(&bootstrap, &topic, 1).expect("topic created again");
    produce(&bootstrap, &topic, &[TestRecord::new(0, "k", "new")]).expect("produce");
    let consumed = consume_all(&bootstrap, &topic, 1, TIMEOUT).expect("consume");
    assert_eq!(consumed.len(), 1);
    assert_eq!(consumed[0].value.as_deref(), Some(&b"new"[..]));
}

#[test]
fn stop_kills_the_broker_and_refuses_pause() {
    let mut broker = KafkaBroker::start().expect("broker starts");
    let pid = broker.pid().expect("pid");
    broker.stop().expect("stop");
    assert!(!process_exists(pid));
    assert!(!broker.is_running());
    let err = broker.pause().expect_err("a stopped broker cannot pause");
    assert!(err.to_string().contains("stopped"), "{err}");
}

#[tokio::test]
async fn helpers_work_inside_a_tokio_runtime() {
    let broker = KafkaBroker::start().expect("broker starts");
    let topic = random_name("in-tokio");
    create_topic(&broker.bootstrap(), &topic, 2).expect("topic created");
    produce(&broker.bootstrap(), &topic, &[TestRecord::new(1, "k", "v")]).expect("produce");
    let bootstrap = broker.bootstrap();
    let consumed = tokio::task::spawn_blocking(move || consume_all(&bootstrap, &topic, 1, TIMEOUT))
        .await
        .expect("blocking task joins")
        .expect("consume");
    assert_eq!(consumed[0].partition, 1);
}

#[test]
fn dropping_a_paused_broker_leaves_no_process() {
    let mut broker = KafkaBroker::start().expect("broker starts");
    let pid = broker.pid().expect("pid");
    broker.pause().expect("pause");
    drop(broker);
    assert!(!process_exists(pid), "paused broker {pid} survived drop");
}
