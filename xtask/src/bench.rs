//! `cargo xtask bench <what>`: each benchmark prints its figures next to the
//! limit it is held to, measured in the same run. Extra arguments go to the
//! benchmark (`cargo xtask bench api --secs 5`; `-- --help` lists them).

use std::process::Command;

use crate::{prerequisites, shell};

pub fn run(args: &[String]) -> Result<(), String> {
    let what = args.first().map(String::as_str);
    let extra = args.get(1..).unwrap_or_default();
    let extra = match extra.first().map(String::as_str) {
        Some("--") => &extra[1..],
        _ => extra,
    };
    match what {
        Some("executor") => executor("executor-bench", extra),
        Some("wan") => executor("wan-bench", extra),
        Some("api") => load("mmm-bench-api", extra),
        Some("scheduler") => load("mmm-bench-scheduler", extra),
        _ => Err("usage: cargo xtask bench executor|wan|api|scheduler [args...]".into()),
    }
}

/// Builds the release executor, then runs one of its benchmark examples.
fn executor(example: &str, extra: &[String]) -> Result<(), String> {
    let tansu = prerequisites::tansu()?;
    shell::run(shell::cargo().args([
        "build",
        "--release",
        "-p",
        "mmm-executor",
        "--bin",
        "mmm-executor",
    ]))?;
    let mut cmd = shell::cargo();
    cmd.args([
        "run",
        "--release",
        "-p",
        "mmm-executor",
        "--example",
        example,
        "--",
    ])
    .args(extra)
    .env("MMM_TANSU_BIN", &tansu);
    shell::run(&mut cmd)
}

/// Builds the release scheduler, mesos-sim and its test executor, and the
/// load generator `bench`, then runs it from target/release, where it finds
/// the other binaries.
fn load(bench: &str, extra: &[String]) -> Result<(), String> {
    shell::run(shell::cargo().args([
        "build",
        "--release",
        "-p",
        "mmm-scheduler",
        "--bin",
        "mmm-scheduler",
        "-p",
        "mesos-sim",
        "--bin",
        "mesos-sim",
        "--bin",
        "sim-test-executor",
        "-p",
        "mmm-e2e",
        "--bin",
        bench,
    ]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| shell::root().join(dir))
        .unwrap_or_else(|| shell::root().join("target"));
    let mut cmd = Command::new(target.join("release").join(bench));
    cmd.current_dir(shell::root()).args(extra);
    shell::run(&mut cmd)
}
