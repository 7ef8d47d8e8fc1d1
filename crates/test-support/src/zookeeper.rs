//! A standalone ZooKeeper server from Debian's `zookeeper` package, for tests of `zk://` URLs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::process::{free_port, wait_for_port, ChildGuard};
use crate::sys;

/// The server jar of Debian's package; its manifest's Class-Path names every dependency.
const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
/// An SLF4J binding, so the server logs to stderr (and so to the log file) instead of nowhere.
const SLF4J_BINDING_JAR: &str = "/usr/share/java/slf4j-simple.jar";
const MAIN_CLASS: &str = "org.apache.zookeeper.server.ZooKeeperServerMain";
/// A JVM start on a busy two-core machine can take several seconds.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const START_ATTEMPTS: u32 = 3;

/// A standalone ZooKeeper server on a free port of 127.0.0.1, with its data in a temp dir.
///
/// Installs Debian's `zookeeper` package on first use when missing (needs root). The server runs
/// as a separate JVM process, killed (with its process group) and reaped on drop. Four-letter
/// commands `ruok`, `stat`, `srvr`, `mntr`, `conf` and `envi` are enabled; the admin HTTP server
/// is disabled so that it does not take port 8080. Sessions may last 1 to 60 seconds.
#[derive(Debug)]
pub struct ZooKeeperServer {
    child: ChildGuard,
    port: u16,
    dir: tempfile::TempDir,
}

impl ZooKeeperServer {
    /// Starts a server and returns once it answers `ruok` with `imok` and `srvr` with its mode
    /// (it says "not currently serving requests" for a moment after `imok`).
    pub fn start() -> Result<ZooKeeperServer> {
        ensure_installed()?;
        let java = java_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("mmm-zookeeper-")
            .tempdir()
            .map_err(|source| Error::io("creating a temp dir for ZooKeeper", source))?;
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data)
            .map_err(|source| Error::io(format!("creating {}", data.display()), source))?;
        let mut attempt = 1;
        loop {
            let port = free_port()?;
            match launch(&java, dir.path(), &data, port) {
                Ok(child) => return Ok(ZooKeeperServer { child, port, dir }),
                // Another process may have bound the port between our probe and the server's bind.
                Err(err) if attempt < START_ATTEMPTS => {
                    tracing::warn!(attempt, port, %err, "ZooKeeper did not start; retrying on another port");
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// `127.0.0.1:PORT`, the connect string for clients (`zk://127.0.0.1:PORT/chroot` in URLs).
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The client port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// The server's stdout and stderr.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("zookeeper.log")
    }

    /// Sends a four-letter command (e.g. `ruok`, `srvr`, `mntr`) and returns the answer.
    pub fn four_letter(&self, command: &str) -> Result<String> {
        four_letter(self.port, command)
    }

    /// Kills the server and reaps it.
    pub fn stop(&mut self) -> Result<()> {
        self.child.kill()
    }
}

fn launch(java: &Path, dir: &Path, data: &Path, port: u16) -> Result<ChildGuard> {
    let config = dir.join("zoo.cfg");
    let text = format!(
        "tickTime=500\n\
         initLimit=10\n\
         syncLimit=5\n\
         minSessionTimeout=1000\n\
         maxSessionTimeout=60000\n\
         dataDir={}\n\
         clientPort={port}\n\
         clientPortAddress=127.0.0.1\n\
         maxClientCnxns=0\n\
         admin.enableServer=false\n\
         4lw.commands.whitelist=ruok,stat,srvr,mntr,conf,envi\n",
        data.display()
    );
    std::fs::write(&config, text)
        .map_err(|source| Error::io(format!("writing {}", config.display()), source))?;

    let mut classpath = ZOOKEEPER_JAR.to_owned();
    if Path::new(SLF4J_BINDING_JAR).is_file() {
        classpath = format!("{classpath}:{SLF4J_BINDING_JAR}");
    }
    let mut command = Command::new(java);
    command
        .args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
        .arg("-Djava.net.preferIPv4Stack=true")
        .arg("-Dzookeeper.admin.enableServer=false")
        .arg("-Dzookeeper.jmx.log4j.disable=true")
        .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
        .args(["-cp", &classpath, MAIN_CLASS])
        .arg(&config)
        .env_remove("JAVA_TOOL_OPTIONS")
        .env_remove("JDK_JAVA_OPTIONS");
    let log = dir.join("zookeeper.log");
    let mut child = ChildGuard::spawn_logged(format!("zookeeper on port {port}"), command, &log)?;
    wait_for_port(&mut child, port, READY_TIMEOUT)?;
    let started = Instant::now();
    loop {
        child.ensure_running()?;
        // `ruok` answers imok as soon as the port is open, before sessions are accepted; `srvr`
        // reports a mode only once the server is serving.
        match four_letter(port, "ruok").and_then(|ruok| Ok((ruok, four_letter(port, "srvr")?))) {
            Ok((ruok, srvr)) if ruok == "imok" && srvr.contains("Mode: ") => return Ok(child),
            Ok((ruok, srvr)) => tracing::debug!(port, ruok, srvr, "ZooKeeper not ready yet"),
            Err(err) => tracing::debug!(port, %err, "ZooKeeper not ready yet"),
        }
        if started.elapsed() >= READY_TIMEOUT {
            return Err(Error::Timeout {
                what: format!("ZooKeeper on port {port} to answer ruok with imok and serve"),
                waited: started.elapsed(),
                log: Some(log),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn four_letter(port: u16, command: &str) -> Result<String> {
    if command.len() != 4 || !command.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(Error::InvalidArgument(format!(
            "{command:?} is not a four-letter ZooKeeper command"
        )));
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let action = || format!("sending {command} to ZooKeeper at {addr}");
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|source| Error::io(action(), source))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|source| Error::io(action(), source))?;
    stream
        .write_all(command.as_bytes())
        .map_err(|source| Error::io(action(), source))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|source| Error::io(action(), source))?;
    Ok(answer)
}

fn java_binary() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("JAVA_HOME") {
        let java = Path::new(&home).join("bin").join("java");
        if java.is_file() {
            return Ok(java);
        }
    }
    let candidates = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    candidates
        .into_iter()
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("java"))
        .find(|java| java.is_file())
        .ok_or_else(|| {
            Error::Unavailable(
                "no java found (JAVA_HOME, PATH): install Debian's zookeeper package, which \
                 brings a Java runtime"
                    .into(),
            )
        })
}

/// Installs Debian's `zookeeper` package when its server jar is missing.
pub(crate) fn ensure_installed() -> Result<()> {
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _installing = INSTALLING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if Path::new(ZOOKEEPER_JAR).is_file() {
        return Ok(());
    }
    if !sys::is_root() {
        return Err(Error::Unavailable(format!(
            "{ZOOKEEPER_JAR} is missing and installing it needs root: run \
             `sudo apt-get install -y zookeeper`"
        )));
    }
    tracing::info!("installing Debian's zookeeper package");
    let first = apt_get(&["install", "-y", "--no-install-recommends", "zookeeper"]);
    if first.is_ok() && Path::new(ZOOKEEPER_JAR).is_file() {
        return Ok(());
    }
    // The package lists may be missing or stale on a fresh machine.
    apt_get(&["update"])?;
    apt_get(&["install", "-y", "--no-install-recommends", "zookeeper"])?;
    if Path::new(ZOOKEEPER_JAR).is_file() {
        Ok(())
    } else {
        Err(Error::Unavailable(format!(
            "apt-get installed zookeeper but {ZOOKEEPER_JAR} is still missing"
        )))
    }
}

fn apt_get(args: &[&str]) -> Result<()> {
    let output = Command::new("apt-get")
        .args(["-o", "DPkg::Lock::Timeout=300"])
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| Error::io(format!("running apt-get {}", args.join(" ")), source))?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(Error::Unavailable(format!(
            "apt-get {} failed ({}): {}",
            args.join(" "),
            output.status,
            stderr.trim()
        )))
    }
}
