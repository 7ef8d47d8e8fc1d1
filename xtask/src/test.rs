//! `cargo xtask test`: the one command CI runs.
//!
//! The tests run under cargo-nextest with `.config/nextest.toml`: a deadline
//! per test and the heavy end-to-end tests one at a time. Doctests (which
//! nextest does not run) go first, so that nextest's summary line is the
//! last thing printed.

use crate::prerequisites::{self, Task};
use crate::shell;

pub fn run(args: &[String]) -> Result<(), String> {
    let all = args.iter().any(|a| a == "--all");
    if let Some(bad) = args.iter().find(|a| *a != "--all") {
        return Err(format!("unknown option {bad:?} for `test` (known: --all)"));
    }
    prerequisites::ensure(Task::Test)?;
    warn_if_disk_is_short();

    shell::run(cargo().args(["fmt", "--all", "--check"]))?;
    shell::run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;

    let tansu = prerequisites::tansu()?;
    eprintln!("tansu: {}", tansu.display());

    // The end-to-end tests run the workspace's binaries; build them all first.
    shell::run(cargo().args(["build", "--workspace", "--bins"]))?;
    shell::run(cargo().args(["test", "--workspace", "--doc", "--quiet"]))?;

    let mut cmd = cargo();
    cmd.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    if all {
        cmd.args(["--run-ignored", "all"]);
        // The long fault matrix: 200,000 records per row instead of CI's 20,000.
        cmd.env("MMM_FAULT_RECORDS", "200000");
    }
    cmd.env("MMM_TANSU_BIN", &tansu);
    // nextest's own summary says what failed; nothing is printed after it.
    shell::run(&mut cmd).map_err(|_| String::new())
}

/// `cargo`, without incremental compilation under CI: a fresh clone builds
/// once, and the incremental caches would only take disk.
fn cargo() -> std::process::Command {
    let mut cmd = shell::cargo();
    if std::env::var_os("CI").is_some() && std::env::var_os("CARGO_INCREMENTAL").is_none() {
        cmd.env("CARGO_INCREMENTAL", "0");
    }
    cmd
}

/// What a cold build of every test needs in the target directory, with room to spare: a fresh
/// clone's CI run left 3.9 GB.
const COLD_BUILD_BYTES: u64 = 6 << 30;

/// Says so up front when the disk is too short for a cold build, instead of
/// letting the linker fail half-way with "No space left on device".
fn warn_if_disk_is_short() {
    let target = shell::target_dir();
    let probe = target
        .ancestors()
        .find(|dir| dir.exists())
        .map_or_else(shell::root, std::path::Path::to_path_buf);
    let Ok(out) = shell::output(std::process::Command::new("df").args(["-Pk"]).arg(&probe)) else {
        return;
    };
    let free_kib = out
        .lines()
        .nth(1)
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|field| field.parse::<u64>().ok());
    if let Some(free) = free_kib.map(|kib| kib * 1024) {
        if free < COLD_BUILD_BYTES {
            eprintln!(
                "warning: {:.1} GiB free at {}; a cold build of the tests needs about {} GiB",
                free as f64 / f64::from(1u32 << 30),
                probe.display(),
                COLD_BUILD_BYTES >> 30
            );
        }
    }
}
