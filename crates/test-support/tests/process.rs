//! Child process guards, free ports and workspace binaries.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mmm_test_support::{
    bin_path, free_port, listening_ports, spawn_on_free_port, wait_for_listening_port,
    wait_for_port, ChildGuard, Error,
};

fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits (with a deadline) for a process that is not our child to disappear.
fn wait_gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !process_exists(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn drop_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pid_file = dir.path().join("grandchild.pid");
    let mut command = Command::new("sh");
    command.arg("-c").arg(format!(
        "sleep 300 & echo $! > {}; wait",
        pid_file.display()
    ));
    let guard = ChildGuard::spawn("shell", command).expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(10);
    let grandchild: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "grandchild pid never written");
        std::thread::sleep(Duration::from_millis(10));
    };
    let shell = guard.pid();
    assert!(process_exists(grandchild));
    drop(guard);
    assert!(!process_exists(shell), "shell {shell} survived");
    // The grandchild is reaped by init, not by us, so give it a moment.
    assert!(wait_gone(grandchild), "grandchild {grandchild} survived");
}

#[test]
fn a_child_that_exits_is_reported_with_its_status() {
    let mut command = Command::new("sh");
    command.args(["-c", "exit 3"]);
    let mut guard = ChildGuard::spawn("failing shell", command).expect("spawn");
    let status = guard
        .wait_timeout(Duration::from_secs(10))
        .expect("wait")
        .expect("exited");
    assert_eq!(status.code(), Some(3));
    let err = guard.ensure_running().expect_err("it exited");
    assert!(err.to_string().contains("failing shell"), "{err}");
    assert!(matches!(
        guard.signal(libc::SIGTERM),
        Err(Error::Exited { .. })
    ));
}

#[test]
fn a_spawn_failure_names_the_program() {
    let err = ChildGuard::spawn("ghost", Command::new("/nonexistent/program")).expect_err("fails");
    assert!(err.to_string().contains("/nonexistent/program"), "{err}");
}

/// The kernel kills children (PR_SET_PDEATHSIG) when a test process dies without unwinding.
/// The test runs itself again in a child process playing the dying test.
#[test]
fn children_die_when_the_test_process_is_killed() {
    if std::env::var_os("MMM_PARENT_ROLE").is_some() {
        let mut command = Command::new("sleep");
        command.arg("300");
        let guard = ChildGuard::spawn("sleeper", command).expect("spawn");
        println!("child-pid {}", guard.pid());
        std::thread::sleep(Duration::from_secs(300));
        return;
    }
    let mut parent = Command::new(std::env::current_exe().expect("test exe"))
        .args([
            "--exact",
            "children_die_when_the_test_process_is_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("MMM_PARENT_ROLE", "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("parent starts");
    let stdout = parent.stdout.take().expect("stdout piped");
    // Read in a thread so that a silent parent fails the test at the deadline, not after 300 s.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // The harness prints "test NAME ... " on the same line before the test's output.
            if let Some((_, pid)) = line.split_once("child-pid ") {
                let _ = tx.send(pid.trim().parse::<u32>().ok());
                return;
            }
        }
    });
    let child_pid = rx.recv_timeout(Duration::from_secs(60)).ok().flatten();
    if child_pid.is_none() {
        let _ = parent.kill();
        let _ = parent.wait();
    }
    let child_pid = child_pid.expect("parent printed its child's pid");
    assert!(process_exists(child_pid));
    parent.kill().expect("kill parent"); // SIGKILL: no destructor runs
    parent.wait().expect("reap parent");
    assert!(
        wait_gone(child_pid),
        "child {child_pid} outlived its killed parent"
    );
}

#[test]
fn free_port_can_be_bound() {
    let port = free_port().expect("free port");
    assert_ne!(port, 0);
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("port is bindable");
}

/// A python3 server listening on `port` (0: any), printing the port it got.
fn python_server(port: u16) -> Command {
    let mut command = Command::new("python3");
    command.arg("-c").arg(format!(
        "import socket, time\n\
         s = socket.socket()\n\
         s.bind(('127.0.0.1', {port}))\n\
         s.listen()\n\
         print(s.getsockname()[1], flush=True)\n\
         time.sleep(120)\n"
    ));
    command
}

#[test]
fn the_port_of_a_server_on_port_0_is_read_from_the_kernel() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("server.log");
    let mut server =
        ChildGuard::spawn_logged("python server", python_server(0), &log).expect("spawn");
    let port = wait_for_listening_port(&mut server, Duration::from_secs(30)).expect("port");
    // It prints right after listen(): wait for the line.
    let deadline = Instant::now() + Duration::from_secs(30);
    let printed = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.ends_with('\n') || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(printed.trim(), port.to_string(), "the port the server got");
    assert_eq!(listening_ports(server.pid()), vec![port]);
}

#[test]
fn another_process_listening_on_the_port_is_not_mistaken_for_the_server() {
    // This test process holds the port; the server cannot bind it and exits.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("server.log");
    let mut server =
        ChildGuard::spawn_logged("python server", python_server(port), &log).expect("spawn");
    let err = wait_for_port(&mut server, port, Duration::from_secs(30))
        .expect_err("the listener on the port is not the server's");
    assert!(matches!(err, Error::Exited { .. }), "{err}");

    // A sleeping process never listens: ready never comes, even though the port answers.
    let mut sleeper = ChildGuard::spawn("sleep", {
        let mut c = Command::new("sleep");
        c.arg("60");
        c
    })
    .expect("spawn");
    let err = wait_for_port(&mut sleeper, port, Duration::from_millis(500))
        .expect_err("a port answered by another process");
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
}

#[test]
fn spawn_on_free_port_starts_a_server_that_listens_on_the_port_given() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, port) = spawn_on_free_port(
        "python server",
        &dir.path().join("server.log"),
        Duration::from_secs(30),
        python_server,
    )
    .expect("started");
    assert!(listening_ports(server.pid()).contains(&port));
}

#[test]
fn bin_path_finds_built_binaries_and_explains_missing_ones() {
    let found = bin_path("install-tansu").expect("install-tansu is built for these tests");
    assert!(found.is_file());
    let err = bin_path("no-such-binary").expect_err("missing");
    let text = err.to_string();
    assert!(
        text.contains("no-such-binary") && text.contains("cargo build"),
        "{text}"
    );
    assert!(matches!(bin_path("../x"), Err(Error::InvalidArgument(_))));
}
