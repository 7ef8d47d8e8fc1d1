//! The shaping proxy on its own: the round trip it adds, jitter, the bandwidth cap, the byte
//! counters, and a broker reached only through it.
//!
//! The delay is checked as a correctness property of the proxy (no byte ever leaves early, and
//! the typical added round trip is the setting), not as a speed of anything: every sample must be
//! at least the setting, and the 10th percentile of the added round trip, which stays clean on a
//! busy machine, must be within 10% of it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use mmm_test_support::{
    consume_all, create_topic, produce, random_name, NetShaper, Shape, ShapedBroker, TestRecord,
};

/// An echo server on a free loopback port; it serves until the test process ends.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind echo server");
    let addr = listener.local_addr().expect("echo address");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let mut stream = stream;
                let mut buf = [0u8; 64 * 1024];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Round trips of a 64-byte message through `addr`, checking each echo byte for byte.
fn round_trips(addr: SocketAddr, count: usize) -> Vec<Duration> {
    let mut stream = TcpStream::connect(addr).expect("connect through the proxy");
    stream.set_nodelay(true).expect("nodelay");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut samples = Vec::with_capacity(count);
    let mut back = [0u8; 64];
    for i in 0..count {
        let message = [(i % 251) as u8; 64];
        let start = Instant::now();
        stream.write_all(&message).expect("send");
        stream.read_exact(&mut back).expect("echo");
        samples.push(start.elapsed());
        assert_eq!(back, message, "round trip {i} came back changed");
    }
    samples
}

fn percentile(samples: &[Duration], p: usize) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[(sorted.len() - 1) * p / 100]
}

fn check_added_round_trip(setting: Duration, count: usize) {
    let echo = echo_server();
    let shaper = NetShaper::start(echo, Shape::default()).expect("proxy");
    let baseline = percentile(&round_trips(shaper.addr(), count), 10);
    shaper.set_shape(Shape::round_trip(setting));
    let samples = round_trips(shaper.addr(), count);
    let early: Vec<_> = samples.iter().filter(|s| **s < setting).collect();
    assert!(
        early.is_empty(),
        "{} of {count} round trips were shorter than the {setting:?} setting: {early:?}",
        early.len()
    );
    let added = percentile(&samples, 10).saturating_sub(baseline);
    let error = added.abs_diff(setting);
    assert!(
        error <= setting / 10,
        "added round trip {added:?} (10th percentile, over a {baseline:?} baseline) is not within \
         10% of the {setting:?} setting"
    );
}

#[test]
fn adds_one_millisecond_round_trip() {
    check_added_round_trip(Duration::from_millis(1), 300);
}

#[test]
fn adds_one_hundred_millisecond_round_trip() {
    check_added_round_trip(Duration::from_millis(100), 30);
}

#[test]
fn jitter_delays_without_reordering() {
    let echo = echo_server();
    let setting = Duration::from_millis(4);
    let jitter = Duration::from_millis(6);
    let shaper = NetShaper::start(
        echo,
        Shape {
            round_trip: setting,
            jitter,
            bandwidth: None,
        },
    )
    .expect("proxy");
    // Many writes in a row without waiting: each chunk gets its own jitter, and the echo must
    // still come back in order.
    let mut stream = TcpStream::connect(shaper.addr()).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let sent: Vec<u8> = (0..20_000u32).map(|i| (i % 253) as u8).collect();
    let mut writer = stream.try_clone().expect("clone");
    let expected = sent.clone();
    let writing = std::thread::spawn(move || {
        for piece in sent.chunks(100) {
            writer.write_all(piece).expect("send");
        }
    });
    let mut back = vec![0u8; expected.len()];
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.read_exact(&mut back).expect("echo");
    writing.join().expect("writer");
    assert!(
        back == expected,
        "the echoed stream differs from the sent one"
    );
    let samples = round_trips(shaper.addr(), 40);
    assert!(
        samples.iter().all(|s| *s >= setting),
        "a round trip was shorter than the {setting:?} setting: {samples:?}"
    );
    let spread = percentile(&samples, 90).saturating_sub(percentile(&samples, 10));
    assert!(
        spread >= Duration::from_millis(1),
        "6 ms of jitter per direction spread round trips by only {spread:?}"
    );
}

#[test]
fn bandwidth_cap_and_byte_counters() {
    let echo = echo_server();
    let rate = 4_000_000u64;
    let shaper = NetShaper::start(
        echo,
        Shape {
            round_trip: Duration::ZERO,
            jitter: Duration::ZERO,
            bandwidth: Some(rate),
        },
    )
    .expect("proxy");
    let total = 1_000_000usize;
    let mut stream = TcpStream::connect(shaper.addr()).expect("connect");
    let mut writer = stream.try_clone().expect("clone");
    let started = Instant::now();
    let writing = std::thread::spawn(move || {
        let data = vec![7u8; total];
        writer.write_all(&data).expect("send");
    });
    let mut back = vec![0u8; total];
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.read_exact(&mut back).expect("echo");
    let took = started.elapsed();
    writing.join().expect("writer");
    assert!(back.iter().all(|b| *b == 7), "the echo changed bytes");
    // Each direction is its own link: 1 MB at 4 MB/s needs a quarter of a second at least.
    let least = Duration::from_secs_f64(total as f64 / rate as f64);
    assert!(
        took >= least,
        "1 MB crossed a 4 MB/s link in {took:?}, faster than the cap allows ({least:?})"
    );
    let bytes = shaper.bytes();
    assert_eq!(
        bytes.to_server, total as u64,
        "bytes counted towards the server"
    );
    assert_eq!(
        bytes.to_client, total as u64,
        "bytes counted towards the client"
    );
    assert_eq!(bytes.total(), 2 * total as u64);
}

#[test]
fn connections_before_the_upstream_is_set_wait_for_it() {
    let shaper = NetShaper::listen(Shape::default()).expect("proxy");
    let mut early = TcpStream::connect(shaper.addr()).expect("connect");
    early
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // Written before there is anywhere to forward it: it must not be lost.
    early.write_all(b"early bytes").expect("write");
    // Not a wait for a condition: it lets the proxy accept the connection while it still has
    // no upstream, the case under test (set at once, the upstream could come first).
    std::thread::sleep(Duration::from_millis(200));
    shaper.set_upstream(echo_server());
    let mut buf = [0u8; 11];
    early
        .read_exact(&mut buf)
        .expect("the echo of the early bytes");
    assert_eq!(&buf, b"early bytes");
    let samples = round_trips(shaper.addr(), 3);
    assert_eq!(samples.len(), 3);
}

#[test]
fn kafka_clients_reach_a_shaped_broker_only_through_the_proxy() {
    let broker = ShapedBroker::start(Shape::round_trip(Duration::from_millis(20))).expect("broker");
    let topic = random_name("shaped");
    create_topic(&broker.bootstrap(), &topic, 2).expect("create topic");
    let records: Vec<TestRecord> = (0..50)
        .map(|i| TestRecord::new(i % 2, format!("k{i}"), format!("value {i}")))
        .collect();
    let before = broker.shaper().bytes();
    // Bootstrapping at the broker itself: the records still cross the proxy, because the broker
    // advertises the proxy's address for everything after the first metadata request.
    produce(&broker.broker().bootstrap(), &topic, &records).expect("produce");
    let got = consume_all(
        &broker.bootstrap(),
        &topic,
        records.len(),
        Duration::from_secs(60),
    )
    .expect("consume");
    assert_eq!(got.len(), records.len());
    for record in &records {
        assert!(
            got.iter().any(|g| g.matches(record)),
            "record {record:?} did not come back"
        );
    }
    let crossed = broker.shaper().bytes().since(before);
    let payload: u64 = records
        .iter()
        .map(|r| r.value.as_ref().map_or(0, |v| v.len() as u64))
        .sum();
    assert!(
        crossed.to_server >= payload && crossed.to_client >= payload,
        "the records did not cross the proxy both ways: {crossed:?} for {payload} bytes of values"
    );
}
