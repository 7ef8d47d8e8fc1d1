//! `cargo xtask demo`: the whole system mirroring data on this machine.
//!
//! Two Tansu brokers (source and target), mesos-sim with two agents, and the
//! scheduler serving `dist/`; then the operator's view: `mmm-cli add 2`,
//! tasks reaching Running, data arriving on the target, status, delete.
//! Everything started here is stopped on the way out, also on failure.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{dist, prerequisites, shell};

const TOPIC: &str = "demo-orders";
const PARTITIONS: u32 = 4;
const RECORDS: u64 = 1_000_000;

pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(bad) = args.first() {
        return Err(format!("`demo` takes no options, got {bad:?}"));
    }
    let root = shell::root();
    step("building (release)");
    dist::build_release()?;
    shell::run(shell::cargo().args([
        "build",
        "--release",
        "--bin",
        "mesos-sim",
        "--bin",
        "mmm-demo-kafka",
    ]))?;
    dist::fill_dist(&root)?;
    let tansu = prerequisites::tansu()?;

    let started = Instant::now();
    let work = root.join("target/demo");
    if work.exists() {
        fs::remove_dir_all(&work).map_err(|e| format!("cleaning {}: {e}", work.display()))?;
    }
    fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    let bin = root.join("target/release");
    let mut procs = Processes::default();

    step("starting two Tansu brokers (source and target)");
    let source = start_broker(&mut procs, &tansu, &work, "source")?;
    let target = start_broker(&mut procs, &tansu, &work, "target")?;
    println!("  source: {source}\n  target: {target}");

    step("starting mesos-sim: a local Mesos master with two agents");
    let master = start_mesos_sim(&mut procs, &bin, &work)?;
    println!("  master: {master}");

    step("creating the source topic");
    let kafka = bin.join("mmm-demo-kafka");
    shell::run(Command::new(&kafka).args([
        "--bootstrap",
        &source,
        "create-topic",
        TOPIC,
        "--partitions",
        &PARTITIONS.to_string(),
    ]))?;

    step("starting the scheduler");
    let api = start_scheduler(&mut procs, &bin, &root, &work, &master, &source, &target)?;
    println!("  REST API and status page: {api}");
    let api_base = format!("{api}/api");
    let cli = |args: &[&str]| -> Result<String, String> {
        shell::output(
            Command::new(bin.join("mmm-cli"))
                .arg("--api")
                .arg(&api_base)
                .args(args),
        )
    };

    step("mmm-cli add 2");
    println!("{}", cli(&["add", "2"])?);
    wait_until("both tasks Running", Duration::from_secs(90), || {
        let json = cli(&["status", "--json"]).unwrap_or_default();
        Ok(json.matches("\"Running\"").count() >= 2)
    })?;
    println!("{}", cli(&["status"])?);

    step(&format!(
        "producing {RECORDS} records to the source while the tasks mirror them"
    ));
    let producer = procs.spawn(
        "sample producer",
        Command::new(&kafka)
            .args([
                "--bootstrap",
                &source,
                "produce",
                TOPIC,
                "--count",
                &RECORDS.to_string(),
            ])
            .stdout(log_file(&work, "producer")?)
            .stderr(log_file(&work, "producer.err")?),
    )?;
    let producer_pid = producer.id();
    shell::run(Command::new(&kafka).args([
        "--bootstrap",
        &target,
        "watch",
        TOPIC,
        "--expect",
        &RECORDS.to_string(),
        "--timeout-secs",
        "120",
    ]))?;
    procs.wait_for_exit(producer_pid, "the sample producer", Duration::from_secs(60))?;

    // The executors report their figures every few seconds.
    wait_until(
        "the executors' first metrics",
        Duration::from_secs(30),
        || {
            let json = cli(&["status", "--json"])
                .unwrap_or_default()
                .replace([' ', '\n'], "");
            Ok(json.matches("\"metrics\":{").count() >= 2)
        },
    )?;
    step("mmm-cli status");
    println!("{}", cli(&["status"])?);

    step("mmm-cli delete 1 2");
    println!("{}", cli(&["delete", "1", "2"])?);
    wait_until("the tasks to be removed", Duration::from_secs(60), || {
        let json = cli(&["status", "--json"]).unwrap_or_default();
        Ok(!json.contains("\"id\""))
    })?;

    step("stopping everything");
    procs.stop_all();
    println!(
        "\ndemo finished in {:.0} s after the build: {RECORDS} records mirrored from {TOPIC} on the source to the target.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn step(what: &str) {
    println!("\n==> {what}");
}

/// Children started by the demo, killed in reverse order when dropped.
#[derive(Default)]
struct Processes {
    children: Vec<(String, Child)>,
}

impl Processes {
    fn spawn(&mut self, name: &str, cmd: &mut Command) -> Result<&mut Child, String> {
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {name} (`{}`): {e}", shell::describe(cmd)))?;
        self.children.push((name.to_owned(), child));
        let last = self.children.len() - 1;
        Ok(&mut self.children[last].1)
    }

    /// Waits until the child with `pid` exits by itself; an error if it fails.
    fn wait_for_exit(&mut self, pid: u32, what: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let index = self
            .children
            .iter()
            .position(|(_, c)| c.id() == pid)
            .ok_or_else(|| format!("{what} is not running"))?;
        loop {
            match self.children[index].1.try_wait() {
                Ok(Some(status)) if status.success() => {
                    self.children.remove(index);
                    return Ok(());
                }
                Ok(Some(status)) => return Err(format!("{what} failed ({status})")),
                Ok(None) if Instant::now() > deadline => {
                    return Err(format!("{what} did not finish within {timeout:?}"))
                }
                Ok(None) => thread::sleep(Duration::from_millis(100)),
                Err(e) => return Err(format!("waiting for {what}: {e}")),
            }
        }
    }

    fn stop_all(&mut self) {
        while let Some((_, mut child)) = self.children.pop() {
            // SIGTERM first so the scheduler and mesos-sim stop their own children.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

fn log_file(work: &Path, name: &str) -> Result<Stdio, String> {
    let path = work.join(format!("{name}.log"));
    fs::File::create(&path)
        .map(Stdio::from)
        .map_err(|e| format!("creating {}: {e}", path.display()))
}

fn wait_for_port(name: &str, port: u16, timeout: Duration) -> Result<(), String> {
    wait_until(&format!("{name} to listen on {port}"), timeout, || {
        Ok(TcpStream::connect(("127.0.0.1", port)).is_ok())
    })
}

fn wait_until(
    what: &str,
    timeout: Duration,
    mut ready: impl FnMut() -> Result<bool, String>,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready()? {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        thread::sleep(Duration::from_millis(250));
    }
}

fn start_broker(
    procs: &mut Processes,
    tansu: &Path,
    work: &Path,
    name: &str,
) -> Result<String, String> {
    let port = free_port()?;
    let url = format!("tcp://127.0.0.1:{port}");
    procs.spawn(
        &format!("tansu ({name})"),
        Command::new(tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/", "--cluster-id", name])
            .stdout(log_file(work, &format!("tansu-{name}"))?)
            .stderr(log_file(work, &format!("tansu-{name}.err"))?),
    )?;
    wait_for_port(&format!("the {name} broker"), port, Duration::from_secs(30))?;
    Ok(format!("127.0.0.1:{port}"))
}

fn start_mesos_sim(procs: &mut Processes, bin: &Path, work: &Path) -> Result<String, String> {
    let child = procs.spawn(
        "mesos-sim",
        Command::new(bin.join("mesos-sim"))
            .args(["--agents", "2", "--work-dir"])
            .arg(work.join("mesos"))
            .stdout(Stdio::piped())
            .stderr(log_file(work, "mesos-sim")?),
    )?;
    let stdout = child.stdout.take().ok_or("mesos-sim has no stdout")?;
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .map_err(|e| format!("reading mesos-sim's first line: {e}"))?;
    first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .map(|url| url.trim_end_matches('/').to_owned())
        .ok_or_else(|| format!("mesos-sim did not print its master URL (got {first:?})"))
}

#[allow(clippy::too_many_arguments)]
fn start_scheduler(
    procs: &mut Processes,
    bin: &Path,
    root: &Path,
    work: &Path,
    master: &str,
    source: &str,
    target: &str,
) -> Result<String, String> {
    let port = free_port()?;
    let config = work.join("mmm.toml");
    let write = |path: &PathBuf, text: String| {
        fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
    };
    write(
        &config,
        format!(
            "[mesos]\nmaster = \"{master}\"\nframework_name = \"mmm-demo\"\n\n\
             [api]\nbind = \"127.0.0.1:{port}\"\n\n\
             [mirror]\ntopics = [\"{TOPIC}\"]\noffset_commit_interval_ms = 2000\n\n\
             [storage]\npath = \"{state}\"\n\n\
             [executor]\ndist_dir = \"{dist}\"\n",
            state = work.join("mmm-state.json").display(),
            dist = root.join("dist").display(),
        ),
    )?;
    let consumer = work.join("kafka-consumer.properties");
    write(
        &consumer,
        format!(
            "bootstrap.servers={source}\ngroup.id=mmm-demo\nenable.auto.commit=false\n\
             auto.offset.reset=earliest\nsession.timeout.ms=6000\n"
        ),
    )?;
    let producer = work.join("kafka-producer.properties");
    write(
        &producer,
        format!("bootstrap.servers={target}\nacks=all\nlinger.ms=5\n"),
    )?;
    procs.spawn(
        "mmm-scheduler",
        Command::new(bin.join("mmm-scheduler"))
            .arg(&config)
            .arg("-c")
            .arg(&consumer)
            .arg("-p")
            .arg(&producer)
            .stdout(log_file(work, "mmm-scheduler.out")?)
            .stderr(log_file(work, "mmm-scheduler")?),
    )?;
    wait_for_port("the scheduler", port, Duration::from_secs(30))?;
    Ok(format!("http://127.0.0.1:{port}"))
}
