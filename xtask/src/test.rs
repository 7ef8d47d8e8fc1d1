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

    shell::run(shell::cargo().args(["fmt", "--all", "--check"]))?;
    shell::run(shell::cargo().args([
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
    shell::run(shell::cargo().args(["build", "--workspace", "--bins"]))?;
    shell::run(shell::cargo().args(["test", "--workspace", "--doc", "--quiet"]))?;

    let mut cmd = shell::cargo();
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
