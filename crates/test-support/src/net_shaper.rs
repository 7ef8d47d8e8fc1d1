//! A TCP proxy that puts a wide-area link between clients and a server: a one-way delay in
//! each direction (so a chosen round trip), optional jitter and an optional bandwidth cap, with
//! counters of the bytes that crossed it each way.
//!
//! Each direction of each connection is a reader thread, which stamps every chunk it reads with
//! the time it may leave, and a writer thread, which holds the chunk until then. Chunks leave in
//! the order they came (jitter never reorders a byte stream), and the bandwidth cap is one link per
//! direction shared by all connections, like the single path between two sites. Up to
//! [`MAX_IN_FLIGHT`] bytes per direction and connection are on their way at once, as with a TCP
//! window tuned for a long link (`net.ipv4.tcp_rmem`, `net.core.rmem_max`); the proxy does not
//! model smaller windows.
//!
//! At 0 ms and without a cap a chunk is written as soon as it is read.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::error::{Error, Result};
use crate::kafka_broker::KafkaBroker;

/// The largest chunk one read takes from a socket.
const CHUNK: usize = 64 * 1024;
/// Bytes on their way in one direction of one connection before its reader stops reading, which
/// pushes back on the sender through TCP. At 150 ms that still carries 400 MB/s.
const MAX_IN_FLIGHT: usize = 64 * 1024 * 1024;
/// A writer sleeps until this long before a chunk is due, then yields until it is: the
/// scheduler's timer slack would otherwise make every delay about 50 µs late.
const SPIN: Duration = Duration::from_micros(200);

/// The link the proxy imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    /// The round trip the proxy adds: half of it is added in each direction.
    pub round_trip: Duration,
    /// Each chunk is delayed by a further random time up to this, in each direction.
    pub jitter: Duration,
    /// Bytes per second in each direction, shared by all connections; `None`: no cap.
    pub bandwidth: Option<u64>,
}

impl Shape {
    /// A link with this round trip, no jitter and no bandwidth cap.
    pub fn round_trip(round_trip: Duration) -> Shape {
        Shape {
            round_trip,
            ..Shape::default()
        }
    }
}

/// Bytes that left the proxy in each direction since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WireBytes {
    /// From the clients to the server.
    pub to_server: u64,
    /// From the server to the clients.
    pub to_client: u64,
}

impl WireBytes {
    /// Both directions together.
    pub fn total(&self) -> u64 {
        self.to_server + self.to_client
    }

    /// The bytes since an earlier reading.
    pub fn since(&self, earlier: WireBytes) -> WireBytes {
        WireBytes {
            to_server: self.to_server.saturating_sub(earlier.to_server),
            to_client: self.to_client.saturating_sub(earlier.to_client),
        }
    }
}

#[derive(Clone, Copy)]
enum Direction {
    ToServer = 0,
    ToClient = 1,
}

struct Inner {
    shape: Mutex<Shape>,
    upstream: Mutex<Option<SocketAddr>>,
    stop: AtomicBool,
    bytes: [AtomicU64; 2],
    /// When each direction's link is free again, for the bandwidth cap.
    link_free: [Mutex<Instant>; 2],
    /// Every socket of every connection, shut down when the proxy stops.
    sockets: Mutex<Vec<TcpStream>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The proxy: listens on a free port of 127.0.0.1 and forwards each connection to its upstream.
///
/// Dropping it closes the listener and every connection.
pub struct NetShaper {
    addr: SocketAddr,
    inner: Arc<Inner>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for NetShaper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetShaper")
            .field("addr", &self.addr)
            .field("shape", &self.shape())
            .finish_non_exhaustive()
    }
}

impl NetShaper {
    /// Starts a proxy to `upstream`.
    pub fn start(upstream: SocketAddr, shape: Shape) -> Result<NetShaper> {
        let shaper = NetShaper::listen(shape)?;
        shaper.set_upstream(upstream);
        Ok(shaper)
    }

    /// Starts a proxy whose upstream is set later with [`NetShaper::set_upstream`], for a server
    /// that must know the proxy's address before it starts. Connections before then wait for it
    /// (up to 30 s).
    pub fn listen(shape: Shape) -> Result<NetShaper> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|source| Error::io("binding the shaping proxy to 127.0.0.1:0", source))?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::io("reading the shaping proxy's address", source))?;
        let now = Instant::now();
        let inner = Arc::new(Inner {
            shape: Mutex::new(shape),
            upstream: Mutex::new(None),
            stop: AtomicBool::new(false),
            bytes: [AtomicU64::new(0), AtomicU64::new(0)],
            link_free: [Mutex::new(now), Mutex::new(now)],
            sockets: Mutex::new(Vec::new()),
        });
        let accept = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name(format!("shaper-{}", addr.port()))
                .spawn(move || accept_loop(&listener, &inner))
                .map_err(|source| Error::io("starting the shaping proxy's thread", source))?
        };
        Ok(NetShaper {
            addr,
            inner,
            accept: Some(accept),
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where clients connect, as `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// The server that connections are forwarded to, for connections made from now on.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *lock(&self.inner.upstream) = Some(upstream);
    }

    /// The link imitated now.
    pub fn shape(&self) -> Shape {
        *lock(&self.inner.shape)
    }

    /// Changes the link for every chunk read from now on, also on open connections.
    pub fn set_shape(&self, shape: Shape) {
        *lock(&self.inner.shape) = shape;
    }

    /// The bytes forwarded each way so far.
    pub fn bytes(&self) -> WireBytes {
        WireBytes {
            to_server: self.inner.bytes[Direction::ToServer as usize].load(Ordering::Relaxed),
            to_client: self.inner.bytes[Direction::ToClient as usize].load(Ordering::Relaxed),
        }
    }
}

impl Drop for NetShaper {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Release);
        // Wakes the accept loop, which then sees the stop flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        for socket in lock(&self.inner.sockets).drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, inner: &Arc<Inner>) {
    for client in listener.incoming() {
        if inner.stop.load(Ordering::Acquire) {
            return;
        }
        let client = match client {
            Ok(client) => client,
            Err(err) => {
                tracing::warn!(%err, "shaping proxy: accept failed");
                continue;
            }
        };
        if let Some(upstream) = *lock(&inner.upstream) {
            if let Err(err) = connect(client, upstream, inner) {
                tracing::warn!(%err, %upstream, "shaping proxy: cannot forward a connection");
            }
            continue;
        }
        // A client that learned the proxy's address from the broker while the broker was
        // starting: closing its connection made librdkafka, which drops the bootstrap address
        // once it knows the broker's own, wait out its whole timeout. It waits here instead.
        let inner = inner.clone();
        let waiting = std::thread::Builder::new()
            .name("shaper-wait".into())
            .spawn(move || {
                let Some(upstream) = wait_for_upstream(&inner) else {
                    tracing::warn!("shaping proxy: no upstream was set; connection closed");
                    return;
                };
                if let Err(err) = connect(client, upstream, &inner) {
                    tracing::warn!(%err, %upstream, "shaping proxy: cannot forward a connection");
                }
            });
        if let Err(err) = waiting {
            tracing::warn!(%err, "shaping proxy: cannot hold a connection for the upstream");
        }
    }
}

/// How long a connection made before the upstream is known waits for it.
const UPSTREAM_WAIT: Duration = Duration::from_secs(30);

fn wait_for_upstream(inner: &Inner) -> Option<SocketAddr> {
    let deadline = Instant::now() + UPSTREAM_WAIT;
    loop {
        if let Some(upstream) = *lock(&inner.upstream) {
            return Some(upstream);
        }
        if inner.stop.load(Ordering::Acquire) || Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn connect(client: TcpStream, upstream: SocketAddr, inner: &Arc<Inner>) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream)?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    {
        let mut sockets = lock(&inner.sockets);
        sockets.push(client.try_clone()?);
        sockets.push(server.try_clone()?);
    }
    pipe(
        client.try_clone()?,
        server.try_clone()?,
        Direction::ToServer,
        inner,
    )?;
    pipe(server, client, Direction::ToClient, inner)
}

/// One direction of one connection: a reader and a writer thread.
fn pipe(
    from: TcpStream,
    to: TcpStream,
    direction: Direction,
    inner: &Arc<Inner>,
) -> std::io::Result<()> {
    let (tx, rx) = channel::<(Instant, Vec<u8>)>();
    let queued = Arc::new(AtomicUsize::new(0));
    let reader_inner = inner.clone();
    let reader_queued = queued.clone();
    std::thread::Builder::new()
        .name("shaper-read".into())
        .spawn(move || read_side(from, &tx, &reader_queued, direction, &reader_inner))?;
    let writer_inner = inner.clone();
    std::thread::Builder::new()
        .name("shaper-write".into())
        .spawn(move || write_side(to, &rx, &queued, direction, &writer_inner))?;
    Ok(())
}

fn read_side(
    mut from: TcpStream,
    tx: &Sender<(Instant, Vec<u8>)>,
    queued: &AtomicUsize,
    direction: Direction,
    inner: &Inner,
) {
    let mut buf = vec![0u8; CHUNK];
    let mut last_due: Option<Instant> = None;
    loop {
        while queued.load(Ordering::Acquire) >= MAX_IN_FLIGHT {
            if inner.stop.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let read_at = Instant::now();
        let shape = *lock(&inner.shape);
        // Serialisation on the capped link, then propagation.
        let sent = match shape.bandwidth {
            Some(rate) if rate > 0 => {
                let mut free = lock(&inner.link_free[direction as usize]);
                let start = (*free).max(read_at);
                *free = start + Duration::from_secs_f64(n as f64 / rate as f64);
                *free
            }
            _ => read_at,
        };
        let jitter = if shape.jitter.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_nanos(rand::rng().random_range(0..=shape.jitter.as_nanos() as u64))
        };
        let due = sent + shape.round_trip / 2 + jitter;
        // Bytes of one stream leave in order, whatever the jitter.
        let due = last_due.map_or(due, |last| due.max(last));
        last_due = Some(due);
        queued.fetch_add(n, Ordering::AcqRel);
        if tx.send((due, buf[..n].to_vec())).is_err() {
            return;
        }
    }
}

fn write_side(
    mut to: TcpStream,
    rx: &Receiver<(Instant, Vec<u8>)>,
    queued: &AtomicUsize,
    direction: Direction,
    inner: &Inner,
) {
    while let Ok((due, chunk)) = rx.recv() {
        wait_until(due);
        let written = to.write_all(&chunk);
        queued.fetch_sub(chunk.len(), Ordering::AcqRel);
        if written.is_err() {
            let _ = to.shutdown(Shutdown::Both);
            return;
        }
        inner.bytes[direction as usize].fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    // The sender closed its side: pass the end of the stream on.
    let _ = to.shutdown(Shutdown::Write);
}

fn wait_until(due: Instant) {
    loop {
        let now = Instant::now();
        if now >= due {
            return;
        }
        let left = due - now;
        if left > SPIN {
            std::thread::sleep(left - SPIN);
        } else {
            std::thread::yield_now();
        }
    }
}

/// A Tansu broker that clients reach only through a [`NetShaper`]: the broker advertises the
/// proxy's address, so every connection a client makes after bootstrapping crosses the proxy too.
#[derive(Debug)]
pub struct ShapedBroker {
    // Dropped first: connections close before the broker stops.
    shaper: NetShaper,
    broker: KafkaBroker,
}

impl ShapedBroker {
    /// Starts the proxy, then a broker advertising it.
    pub fn start(shape: Shape) -> Result<ShapedBroker> {
        let shaper = NetShaper::listen(shape)?;
        // The upstream is set before the broker answers its first metadata request: that
        // answer sends the client to the proxy, and librdkafka then forgets the bootstrap
        // address, so a proxy without upstream would leave the start waiting for nothing.
        let broker = KafkaBroker::start_advertising(&shaper.address(), |port| {
            shaper.set_upstream(SocketAddr::from(([127, 0, 0, 1], port)));
        })?;
        Ok(ShapedBroker { shaper, broker })
    }

    /// The proxy's address, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.shaper.address()
    }

    /// The proxy in front of the broker.
    pub fn shaper(&self) -> &NetShaper {
        &self.shaper
    }

    /// The broker behind the proxy. Its own `bootstrap()` reaches it directly for the first
    /// metadata request only; clients connect to the proxy after that.
    pub fn broker(&self) -> &KafkaBroker {
        &self.broker
    }

    /// The broker, to pause, resume or stop it.
    pub fn broker_mut(&mut self) -> &mut KafkaBroker {
        &mut self.broker
    }
}
