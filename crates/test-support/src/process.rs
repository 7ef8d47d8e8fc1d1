//! Child processes that never outlive the test that started them.

use std::fs::File;
use std::io;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::sys;

/// A running child process, alone in its own process group, killed with its whole group when the
/// guard is dropped (also while unwinding from a panic) and then reaped.
///
/// Children also get `PR_SET_PDEATHSIG = SIGKILL`, so they die even when the test process itself
/// is killed and no destructor runs. The kernel ties that signal to the spawning *thread*, so all
/// guards spawn from one thread that lives as long as the process: a child started from a
/// short-lived thread (a `spawn_blocking` task, a scoped thread) keeps running.
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    child: Child,
    log: Option<PathBuf>,
    exit: Option<ExitStatus>,
}

impl ChildGuard {
    /// Spawns `command` in a new process group. `name` appears in errors and logs.
    ///
    /// Stdin is closed; stdout and stderr are left as the command sets them.
    pub fn spawn(name: impl Into<String>, mut command: Command) -> Result<ChildGuard> {
        let name = name.into();
        command.stdin(Stdio::null());
        command.process_group(0);
        sys::kill_child_with_parent(&mut command);
        let program = command.get_program().to_string_lossy().into_owned();
        let child = spawn_on_lasting_thread(command)
            .map_err(|source| Error::io(format!("starting {name} ({program})"), source))?;
        tracing::debug!(name, pid = child.id(), "started child process");
        Ok(ChildGuard {
            name,
            child,
            log: None,
            exit: None,
        })
    }

    /// Like [`ChildGuard::spawn`], with stdout and stderr appended to the file `log`.
    pub fn spawn_logged(
        name: impl Into<String>,
        mut command: Command,
        log: &Path,
    ) -> Result<ChildGuard> {
        let name = name.into();
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|source| Error::io(format!("opening log file {}", log.display()), source))?;
        let err = out.try_clone().map_err(|source| {
            Error::io(format!("duplicating log file {}", log.display()), source)
        })?;
        command.stdout(out).stderr(err);
        let mut guard = ChildGuard::spawn(name, command)?;
        guard.log = Some(log.to_path_buf());
        Ok(guard)
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log file, when spawned with [`ChildGuard::spawn_logged`].
    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// The exit status if the process has ended (it is reaped then), `None` while it runs.
    pub fn try_exit_status(&mut self) -> Result<Option<ExitStatus>> {
        if self.exit.is_none() {
            self.exit = self
                .child
                .try_wait()
                .map_err(|source| Error::io(format!("checking on {}", self.name), source))?;
        }
        Ok(self.exit)
    }

    /// Fails with [`Error::Exited`] when the process has ended.
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.try_exit_status()? {
            None => Ok(()),
            Some(status) => Err(Error::Exited {
                name: self.name.clone(),
                status,
                log: self.log.clone(),
            }),
        }
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the whole process group.
    pub fn signal(&mut self, signal: i32) -> Result<()> {
        self.ensure_running()?;
        sys::signal_group(self.pid(), signal).map_err(|source| {
            Error::io(format!("sending signal {signal} to {}", self.name), source)
        })
    }

    /// Waits up to `timeout` for the process to end by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit_status()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILLs the process group and reaps the process. Calling it again does nothing.
    pub fn kill(&mut self) -> Result<()> {
        if self.exit.is_some() {
            return Ok(());
        }
        // The group may contain children of the child; ESRCH means it is already empty.
        if let Err(err) = sys::signal_group(self.pid(), libc::SIGKILL) {
            if err.raw_os_error() != Some(libc::ESRCH) {
                tracing::warn!(name = %self.name, %err, "could not kill process group");
            }
            // Fall back to the leader alone, which std can always signal while unreaped.
            let _ = self.child.kill();
        }
        let status = self
            .child
            .wait()
            .map_err(|source| Error::io(format!("reaping {}", self.name), source))?;
        tracing::debug!(name = %self.name, %status, "child process stopped");
        self.exit = Some(status);
        Ok(())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Err(err) = self.kill() {
            tracing::warn!(name = %self.name, %err, "could not stop child process");
        }
    }
}

type SpawnJob = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns on a thread that never ends, so that PR_SET_PDEATHSIG fires only when the whole test
/// process ends.
fn spawn_on_lasting_thread(command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (jobs, inbox) = mpsc::channel::<SpawnJob>();
        let started = std::thread::Builder::new()
            .name("child-spawner".into())
            .spawn(move || {
                for (mut command, reply) in inbox {
                    let _ = reply.send(command.spawn());
                }
            });
        if let Err(err) = started {
            tracing::error!(%err, "could not start the child spawner thread");
        }
        Mutex::new(jobs)
    });
    let (reply, answer) = mpsc::channel();
    let sent = spawner
        .lock()
        .map_err(|_| io::Error::other("child spawner lock poisoned"))?
        .send((command, reply));
    if sent.is_err() {
        return Err(io::Error::other("child spawner thread is not running"));
    }
    answer
        .recv()
        .map_err(|_| io::Error::other("child spawner thread ended"))?
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
///
/// Another process may take it before anyone binds it again, so never use it for a server that
/// must get it: start servers with [`spawn_on_free_port`] (which retries and checks that the
/// listener is the server's own), or on port 0 and read the port with [`wait_for_listening_port`].
/// It suits an address where nothing is expected to listen.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|source| Error::io("binding 127.0.0.1:0 to find a free port", source))?;
    let port = listener
        .local_addr()
        .map_err(|source| Error::io("reading the address of a bound socket", source))?
        .port();
    Ok(port)
}

/// How often [`spawn_on_free_port`] tries a new port when the server could not bind its port.
const START_ATTEMPTS: u32 = 3;

/// Starts a server that takes its port on the command line: `command(port)` with a free port,
/// then waits until that very process listens on it. When it exits instead (another process took
/// the port between the probe and the server's bind), starts it again on a new port.
pub fn spawn_on_free_port(
    name: &str,
    log: &Path,
    timeout: Duration,
    mut command: impl FnMut(u16) -> Command,
) -> Result<(ChildGuard, u16)> {
    let mut attempt = 1;
    loop {
        let port = free_port()?;
        let mut child =
            ChildGuard::spawn_logged(format!("{name} on port {port}"), command(port), log)?;
        match wait_for_port(&mut child, port, timeout) {
            Ok(()) => return Ok((child, port)),
            Err(err) if attempt < START_ATTEMPTS => {
                tracing::warn!(attempt, port, %err, "{name} did not start; retrying on another port");
                attempt += 1;
            }
            Err(err) => return Err(err),
        }
    }
}

/// Waits until `child` itself listens on TCP `port` (a listener of another process does not
/// count), failing when the child exits first.
pub fn wait_for_port(child: &mut ChildGuard, port: u16, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        child.ensure_running()?;
        if listening_ports(child.pid()).contains(&port) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!("{} to listen on 127.0.0.1:{port}", child.name()),
                waited: timeout,
                log: child.log_path().map(Path::to_path_buf),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `child` listens on a TCP port and returns it: for a server started on port 0.
/// The process must listen on exactly one port.
pub fn wait_for_listening_port(child: &mut ChildGuard, timeout: Duration) -> Result<u16> {
    let deadline = Instant::now() + timeout;
    loop {
        child.ensure_running()?;
        match listening_ports(child.pid()).as_slice() {
            [port] => return Ok(*port),
            [] => {}
            several => {
                return Err(Error::InvalidArgument(format!(
                    "{} listens on several ports: {several:?}",
                    child.name()
                )))
            }
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!("{} to listen on a port", child.name()),
                waited: timeout,
                log: child.log_path().map(Path::to_path_buf),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The TCP ports on which process `pid` has a listening socket (IPv4 or IPv6), from /proc: the
/// kernel's word on who owns a port, where a successful connect only says that someone does.
pub fn listening_ports(pid: u32) -> Vec<u16> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let inodes: std::collections::HashSet<String> = fds
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            target
                .strip_prefix("socket:[")
                .and_then(|rest| rest.strip_suffix(']'))
                .map(str::to_owned)
        })
        .collect();
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            const LISTEN: &str = "0A";
            if fields.len() > 9 && fields[3] == LISTEN && inodes.contains(fields[9]) {
                let port = fields[1]
                    .rsplit(':')
                    .next()
                    .and_then(|hex| u16::from_str_radix(hex, 16).ok());
                if let Some(port) = port.filter(|p| !ports.contains(p)) {
                    ports.push(port);
                }
            }
        }
    }
    ports
}

/// Finds a binary of this workspace, for tests that run it as a separate process.
///
/// Uses `CARGO_BIN_EXE_<name>` when set (cargo sets it for integration tests of the package that
/// owns the binary), else `target/<profile>/<name>`, found from the running executable (tests live
/// in `target/<profile>/deps/`, so that is `current_exe().parent().parent()`). Fails with a message saying to build it when it is missing.
pub fn bin_path(name: &str) -> Result<PathBuf> {
    if name.is_empty() || name.contains('/') {
        return Err(Error::InvalidArgument(format!(
            "binary name {name:?} must be a plain file name"
        )));
    }
    if let Some(path) = std::env::var_os(format!("CARGO_BIN_EXE_{name}")) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::MissingBinary {
                name: name.to_owned(),
                path,
            })
        };
    }
    let exe = std::env::current_exe()
        .map_err(|source| Error::io("finding the running test executable", source))?;
    // Test executables live in target/<profile>/deps; binaries run from target/<profile>.
    let exe_dir = exe.parent();
    let profile_dir = match exe_dir {
        Some(dir) if dir.file_name().is_some_and(|n| n == "deps") => dir.parent(),
        other => other,
    }
    .ok_or_else(|| Error::MissingBinary {
        name: name.to_owned(),
        path: exe.clone(),
    })?;
    let path = profile_dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::MissingBinary {
            name: name.to_owned(),
            path,
        })
    }
}
