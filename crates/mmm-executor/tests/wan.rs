//! The engine across a long link: brokers reached only through a shaping
//! proxy, round trips measured, windows sized for them, records byte-exact.

mod common;

use std::time::Duration;

use common::*;
use mmm_executor::engine::{Engine, Limits};
use mmm_executor::kafka_config::{consumer_config, producer_config};
use mmm_executor::windows::{measure_round_trip, RoundTrips, Side, Windows};
use mmm_test_support::{consume_all, create_topic, produce, random_name, Shape, ShapedBroker};

#[test]
fn the_measured_round_trip_includes_the_link() {
    let rtt = Duration::from_millis(60);
    let broker = ShapedBroker::start(Shape::round_trip(rtt)).expect("shaped broker");
    let props = [("bootstrap.servers".to_string(), broker.bootstrap())]
        .into_iter()
        .collect();
    for (side, config) in [
        (Side::Source, consumer_config(&props)),
        (Side::Target, producer_config(&props)),
    ] {
        let measured = measure_round_trip(&config, side, "no-such-topic", Duration::from_secs(10))
            .expect("the broker answers");
        assert!(
            measured >= rtt,
            "{side:?}: measured {measured:?} across a {rtt:?} link"
        );
        let windows = Windows::for_round_trips(RoundTrips {
            source: measured,
            target: measured,
        });
        assert!(
            windows.fetch_max_bytes > Windows::default().fetch_max_bytes
                && windows.in_flight_bytes > Windows::default().in_flight_bytes,
            "{side:?}: windows {windows:?} did not grow for a {measured:?} round trip"
        );
    }
}

#[test]
fn a_cluster_that_does_not_answer_has_no_round_trip() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let props = [("bootstrap.servers".to_string(), addr.to_string())]
        .into_iter()
        .collect();
    let measured = measure_round_trip(
        &consumer_config(&props),
        Side::Source,
        "t",
        Duration::from_millis(500),
    );
    assert_eq!(measured, None);
}

#[test]
fn records_cross_a_long_link_byte_exact() {
    let source = ShapedBroker::start(Shape::round_trip(Duration::from_millis(40))).expect("source");
    let target = ShapedBroker::start(Shape::round_trip(Duration::from_millis(40))).expect("target");
    let topic = random_name("wan");
    create_topic(&source.bootstrap(), &topic, 4).expect("source topic");
    let sent = records_with_headers(20_000, 4);
    produce(&source.bootstrap(), &topic, &sent).expect("load source");
    let engine = Engine::start(
        task(
            &source.bootstrap(),
            &target.bootstrap(),
            &[&topic],
            &group(),
        ),
        Limits::default(),
    )
    .expect("engine starts");
    let got = consume_all(
        &target.bootstrap(),
        &topic,
        sent.len(),
        Duration::from_secs(120),
    )
    .expect("all records in the target");
    engine.stop(Duration::from_secs(10));
    let summary = engine.join().expect("clean stop");
    assert_eq!(summary.undelivered, 0);
    assert_eq!(got.len(), sent.len(), "no duplicates in a clean run");
    for (p, records) in &by_partition(&got) {
        let expected: Vec<_> = sent.iter().filter(|r| r.partition == *p).collect();
        assert_eq!(records.len(), expected.len(), "partition {p}");
        for (got, want) in records.iter().zip(expected) {
            let want = mirrored(want, source.broker().cluster_id());
            assert!(
                got.matches(&want),
                "partition {p}: {got:?} differs from {want:?}"
            );
        }
    }
    let wire = target.shaper().bytes();
    assert!(
        wire.to_server > 0,
        "nothing reached the target through its proxy"
    );
}
