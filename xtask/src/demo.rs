//! `cargo xtask demo [--keep]`: the whole system mirroring data on this machine.
//!
//! Two Tansu brokers (source and target), mesos-sim with two agents, and the
//! scheduler serving `dist/`; then the operator's view: `mmm-cli add 2`,
//! tasks reaching Running, data arriving on the target, status, delete.
//! Everything started here is stopped on the way out, also on failure and on
//! Ctrl-C. With `--keep` the system stays up after the scripted part (the
//! tasks keep running and a slow producer keeps feeding them) until Ctrl-C.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::prerequisites::{self, Task};
use crate::{dist, interrupt, listen, shell};

const TOPIC: &str = "demo-orders";
const PARTITIONS: u32 = 4;
const RECORDS: u64 = 1_000_000;
/// Records per second of the producer that keeps running with `--keep`.
const STEADY_RATE: u64 = 200;

pub fn run(args: &[String]) -> Result<(), String> {
    let keep = match args {
        [] => false,
        [flag] if flag == "--keep" => true,
        _ => return Err(format!("`demo` takes only --keep, got {args:?}")),
    };
    prerequisites::ensure(Task::Demo)?;
    interrupt::catch()?;
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
    let bin = shell::target_dir().join("release");
    dist::fill_dist(&root, &bin)?;
    let tansu = prerequisites::tansu()?;

    let started = Instant::now();
    let work = shell::target_dir().join("demo");
    if work.exists() {
        fs::remove_dir_all(&work).map_err(|e| format!("cleaning {}: {e}", work.display()))?;
    }
    fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    let mut procs = Processes::new(&work);

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

    if keep {
        return keep_running(&mut procs, &kafka, &bin, &api, &master, &source, &target);
    }

    step("mmm-cli delete 1 2");
    println!("{}", cli(&["delete", "1", "2"])?);
    wait_until("the tasks to be removed", Duration::from_secs(60), || {
        let json = cli(&["status", "--json"]).unwrap_or_default();
        Ok(!json.contains("\"id\""))
    })?;

    step("stopping everything");
    procs.stop_all()?;
    println!(
        "\ndemo finished in {:.0} s after the build: {RECORDS} records mirrored from {TOPIC} on the source to the target.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `--keep`: a steady producer, the addresses to explore, and a wait for
/// Ctrl-C (or for a part of the system to die), then everything stops.
fn keep_running(
    procs: &mut Processes,
    kafka: &Path,
    bin: &Path,
    api: &str,
    master: &str,
    source: &str,
    target: &str,
) -> Result<(), String> {
    step(&format!(
        "starting a steady producer: {STEADY_RATE} records/s to {TOPIC}"
    ));
    let work = procs.work.clone();
    procs.spawn(
        "steady producer",
        Command::new(kafka)
            .args(["--bootstrap", source, "produce", TOPIC])
            .args(["--count", &u64::MAX.to_string()])
            .args(["--rate", &STEADY_RATE.to_string()])
            .stdout(log_file(&work, "steady-producer")?)
            .stderr(log_file(&work, "steady-producer.err")?),
    )?;
    println!(
        "\n==> the system keeps running: explore it\n\
         \n  status page:   {api}/\
         \n  CLI:           export MMM_API={api}/api\
         \n                 {cli} status     ({cli} --help for the other commands)\
         \n  source Kafka:  {source} (topic {TOPIC}, {STEADY_RATE} records/s)\
         \n  target Kafka:  {target}\
         \n  Mesos master:  {master} (mesos-sim)\
         \n  logs:          {logs}/*.log\
         \n\n  stop:          press Ctrl-C (stops everything the demo started)\n",
        cli = bin.join("mmm-cli").display(),
        logs = work.display(),
    );
    let outcome = loop {
        if interrupt::interrupted() {
            break Ok(());
        }
        if let Some(dead) = procs.first_exited() {
            break Err(format!("{dead} stopped by itself; stopping the rest"));
        }
        thread::sleep(Duration::from_millis(200));
    };
    step("stopping everything");
    procs.stop_all()?;
    println!("stopped: nothing the demo started is running");
    outcome
}

fn step(what: &str) {
    println!("\n==> {what}");
}

/// Children started by the demo, each in its own process group (so that
/// Ctrl-C reaches only the demo, which stops them in order), stopped in
/// reverse order when dropped.
struct Processes {
    work: PathBuf,
    children: Vec<(String, Child)>,
}

impl Processes {
    fn new(work: &Path) -> Processes {
        Processes {
            work: work.to_path_buf(),
            children: Vec::new(),
        }
    }

    fn spawn(&mut self, name: &str, cmd: &mut Command) -> Result<&mut Child, String> {
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {name} (`{}`): {e}", shell::describe(cmd)))?;
        self.children.push((name.to_owned(), child));
        let last = self.children.len() - 1;
        Ok(&mut self.children[last].1)
    }

    fn get(&mut self, pid: u32) -> Option<&mut Child> {
        self.children
            .iter_mut()
            .find(|(_, c)| c.id() == pid)
            .map(|(_, c)| c)
    }

    /// Forgets a child that failed to start (killing what may be left of it).
    fn discard(&mut self, pid: u32) {
        if let Some(index) = self.children.iter().position(|(_, c)| c.id() == pid) {
            let (_, mut child) = self.children.remove(index);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The name of the first child that has exited, if any.
    fn first_exited(&mut self) -> Option<String> {
        self.children
            .iter_mut()
            .find_map(|(name, c)| matches!(c.try_wait(), Ok(Some(_))).then(|| name.clone()))
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
                Ok(None) if interrupt::interrupted() => return Err("interrupted".into()),
                Ok(None) => thread::sleep(Duration::from_millis(100)),
                Err(e) => return Err(format!("waiting for {what}: {e}")),
            }
        }
    }

    /// Stops every child, newest first: SIGTERM so the scheduler and
    /// mesos-sim stop their own children, SIGKILL to the group after 10 s;
    /// then kills any executor still running in a sandbox of the demo.
    fn stop_all(&mut self) -> Result<(), String> {
        while let Some((_, mut child)) = self.children.pop() {
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
            // The child leads its own process group: whatever it left behind goes too.
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
        let left = pids_working_under(&self.work);
        for pid in &left {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "processes {left:?} were still running in {} and were killed",
                self.work.display()
            ))
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        if let Err(e) = self.stop_all() {
            eprintln!("xtask: {e}");
        }
    }
}

/// The processes whose working directory is under `dir` (the executors run
/// in sandboxes of mesos-sim's work directory).
fn pids_working_under(dir: &Path) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| {
            fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(&dir))
        })
        .collect()
}

fn log_file(work: &Path, name: &str) -> Result<Stdio, String> {
    let path = work.join(format!("{name}.log"));
    fs::File::create(&path)
        .map(Stdio::from)
        .map_err(|e| format!("creating {}: {e}", path.display()))
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
        if interrupt::interrupted() {
            return Err(format!("interrupted while waiting for {what}"));
        }
        if Instant::now() > deadline {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        thread::sleep(Duration::from_millis(250));
    }
}

/// Starts a broker on a free port. Tansu takes its port on the command line
/// (it also advertises it), so the port is picked first; when another
/// process takes it before Tansu binds, Tansu exits and a new port is tried.
/// Ready means the broker process itself listens there.
fn start_broker(
    procs: &mut Processes,
    tansu: &Path,
    work: &Path,
    name: &str,
) -> Result<String, String> {
    let mut attempt = 1;
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| format!("finding a free port: {e}"))?;
        let url = format!("tcp://127.0.0.1:{port}");
        let pid = procs
            .spawn(
                &format!("tansu ({name})"),
                Command::new(tansu)
                    .args(["broker", "--listener-url", &url])
                    .args(["--advertised-listener-url", &url])
                    .args(["--storage-engine", "memory://tansu/", "--cluster-id", name])
                    .stdout(log_file(work, &format!("tansu-{name}"))?)
                    .stderr(log_file(work, &format!("tansu-{name}.err"))?),
            )?
            .id();
        let listening = wait_until(
            &format!("the {name} broker to listen on {port}"),
            Duration::from_secs(30),
            || match procs.get(pid).map(Child::try_wait) {
                Some(Ok(None)) => Ok(listen::listening_ports(pid).contains(&port)),
                _ => Err(format!("the {name} broker exited")),
            },
        );
        match listening {
            Ok(()) => return Ok(format!("127.0.0.1:{port}")),
            Err(e) if attempt < 3 && !interrupt::interrupted() => {
                procs.discard(pid);
                eprintln!("{e}; retrying on another port");
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

fn start_mesos_sim(procs: &mut Processes, bin: &Path, work: &Path) -> Result<String, String> {
    let out = work.join("mesos-sim.out.log");
    let stdout = fs::File::create(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    // mesos-sim binds port 0 and prints the URL it got.
    procs.spawn(
        "mesos-sim",
        Command::new(bin.join("mesos-sim"))
            .args(["--agents", "2", "--work-dir"])
            .arg(work.join("mesos"))
            .stdout(stdout)
            .stderr(log_file(work, "mesos-sim")?),
    )?;
    let mut url = None;
    wait_until(
        "mesos-sim to print its master URL",
        Duration::from_secs(30),
        || {
            url = fs::read_to_string(&out)
                .unwrap_or_default()
                .split_whitespace()
                .find(|w| w.starts_with("http://"))
                .map(|u| u.trim_end_matches('/').to_owned());
            Ok(url.is_some())
        },
    )?;
    url.ok_or_else(|| "mesos-sim printed no master URL".into())
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
    let config = work.join("mmm.toml");
    let write = |path: &PathBuf, text: String| {
        fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
    };
    // Port 0: the scheduler binds a free port, read back from the kernel.
    write(
        &config,
        format!(
            "[mesos]\nmaster = \"{master}\"\nframework_name = \"mmm-demo\"\n\n\
             [api]\nbind = \"127.0.0.1:0\"\n\n\
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
    let pid = procs
        .spawn(
            "mmm-scheduler",
            Command::new(bin.join("mmm-scheduler"))
                .arg(&config)
                .arg("-c")
                .arg(&consumer)
                .arg("-p")
                .arg(&producer)
                .stdout(log_file(work, "mmm-scheduler.out")?)
                .stderr(log_file(work, "mmm-scheduler")?),
        )?
        .id();
    let mut port = 0;
    wait_until("the scheduler to listen", Duration::from_secs(30), || {
        match procs.get(pid).map(Child::try_wait) {
            Some(Ok(None)) => {}
            _ => {
                return Err(format!(
                    "the scheduler exited; see {}",
                    work.join("mmm-scheduler.log").display()
                ))
            }
        }
        port = listen::listening_ports(pid).first().copied().unwrap_or(0);
        Ok(port != 0)
    })?;
    wait_until("the scheduler's /ping", Duration::from_secs(30), || {
        Ok(listen::http_get(port, "/ping").is_some_and(|b| b.trim() == "pong"))
    })?;
    Ok(format!("http://127.0.0.1:{port}"))
}
