//! What the binary does with bad start-up input: a non-zero exit and a
//! one-line cause on stderr, before touching anything.

mod common;

use std::fs;
use std::process::Output;

use common::Scheduler;
use mesos_sim::{MesosSim, SimConfig};

fn run(cmd: &mut std::process::Command) -> Output {
    cmd.env("MMM_MASTER_CONNECT_TIMEOUT_SECS", "1")
        .output()
        .expect("run mmm-scheduler")
}

fn last_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

fn assert_refused(out: &Output, needle: &str) {
    assert!(!out.status.success(), "must fail");
    let line = last_line(out);
    assert!(line.starts_with("mmm-scheduler: "), "{line}");
    assert!(line.contains(needle), "{line:?} should name {needle:?}");
}

#[test]
fn missing_and_invalid_files_are_named() {
    let s = Scheduler::new("127.0.0.1:1", "");
    fs::remove_file(s.path("producer.properties")).expect("rm");
    assert_refused(&run(&mut s.command()), "producer.properties");

    fs::write(s.path("producer.properties"), "acks=sometimes\n").expect("write");
    assert_refused(&run(&mut s.command()), "acks");

    fs::write(
        s.path("producer.properties"),
        "bootstrap.servers=127.0.0.1:9\n",
    )
    .expect("write");
    fs::write(s.path("mmm.toml"), "[mesos]\nmaster = 5050\n").expect("write");
    assert_refused(&run(&mut s.command()), "master");
}

#[test]
fn short_options_and_an_unreachable_master() {
    let s = Scheduler::new("127.0.0.1:1", "");
    let out = run(
        std::process::Command::new(env!("CARGO_BIN_EXE_mmm-scheduler"))
            .arg("--config")
            .arg(s.path("mmm.toml"))
            .arg("-c")
            .arg(s.path("consumer.properties"))
            .arg("-p")
            .arg(s.path("producer.properties"))
            .current_dir(s.dir.path()),
    );
    assert_refused(&out, "cannot reach the Mesos master");
}

#[test]
fn a_corrupt_state_file_is_an_error_not_a_fresh_start() {
    let s = Scheduler::new("127.0.0.1:1", "");
    fs::create_dir_all(s.path("state")).expect("mkdir");
    fs::write(
        s.path("state/mmm-state.json"),
        "{\"version\": 1, \"servers\": [tru",
    )
    .expect("write");
    let out = run(&mut s.command());
    assert_refused(&out, "corrupt");
    assert_eq!(
        fs::read_to_string(s.path("state/mmm-state.json")).expect("read"),
        "{\"version\": 1, \"servers\": [tru",
        "the corrupt file is left for the operator"
    );
}

#[test]
fn a_dist_that_does_not_match_its_manifest_is_refused() {
    let s = Scheduler::new("127.0.0.1:1", "");
    fs::write(
        s.path("dist/MANIFEST.sha256"),
        format!("{}  mmm-executor\n", "0".repeat(64)),
    )
    .expect("write");
    assert_refused(&run(&mut s.command()), "does not match");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_scheduler_on_the_same_state_refuses_to_start() {
    let sim = MesosSim::start(SimConfig::with_agents(1).fast())
        .await
        .expect("sim");
    let mut s = Scheduler::new(&sim.master_url(), "");
    s.start().await;
    s.wait_subscribed().await;
    let out = tokio::task::spawn_blocking({
        let mut cmd = s.command();
        move || run(&mut cmd)
    })
    .await
    .expect("join");
    assert_refused(&out, "locked by another running scheduler");
    sim.shutdown().await;
}

#[test]
fn the_original_mmm_properties_and_a_log_file_are_accepted() {
    let s = Scheduler::new("127.0.0.1:1", "");
    let port = mmm_test_support::free_port().expect("port");
    fs::write(
        s.path("mmm.properties"),
        format!(
            "# the original's format\nmesos.master=127.0.0.1:1\nmesos.framework.name=legacy\nmmm.api=127.0.0.1:{port}\nmmm.topics=t1,t2\nmmm.offset.commit.interval.ms=60000\n"
        ),
    )
    .expect("write");
    let log = s.path("scheduler.log");
    let out = run(
        std::process::Command::new(env!("CARGO_BIN_EXE_mmm-scheduler"))
            .arg(s.path("mmm.properties"))
            .arg("--consumer-config")
            .arg(s.path("consumer.properties"))
            .arg("--producer-config")
            .arg(s.path("producer.properties"))
            .arg("--log-file")
            .arg(&log)
            .current_dir(s.dir.path()),
    );
    // The configuration was understood: the scheduler got as far as the master.
    assert_refused(&out, "cannot reach the Mesos master");
    let logged = fs::read_to_string(&log).expect("log file");
    assert!(logged.contains(&format!("127.0.0.1:{port}")), "{logged}");
    assert!(
        !logged.contains("hunter2-consumer"),
        "a secret leaked into the log"
    );
}
