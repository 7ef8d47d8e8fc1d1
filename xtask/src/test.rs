//! `cargo xtask test`: the one command CI runs.

use crate::{prerequisites, shell};

pub fn run(args: &[String]) -> Result<(), String> {
    let all = args.iter().any(|a| a == "--all");
    if let Some(bad) = args.iter().find(|a| *a != "--all") {
        return Err(format!("unknown option {bad:?} for `test` (known: --all)"));
    }

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
    prerequisites::zookeeper()?;
    prerequisites::chromium()?;

    // The end-to-end tests run the workspace's binaries; build them all first.
    shell::run(shell::cargo().args(["build", "--workspace", "--bins"]))?;

    let mut cmd = if shell::have("cargo-nextest") {
        let mut cmd = shell::cargo();
        cmd.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
        if all {
            cmd.args(["--run-ignored", "all"]);
        }
        cmd
    } else {
        let mut cmd = shell::cargo();
        cmd.args(["test", "--workspace", "--no-fail-fast"]);
        if all {
            cmd.args(["--", "--include-ignored"]);
        }
        cmd
    };
    cmd.env("MMM_TANSU_BIN", &tansu);
    // The long fault matrix: 200,000 records per row instead of CI's 20,000.
    if all {
        cmd.env("MMM_FAULT_RECORDS", "200000");
    }
    // Doctests (nextest does not run them) go first, so that the test
    // runner's summary is the last thing printed.
    if shell::have("cargo-nextest") {
        shell::run(shell::cargo().args(["test", "--workspace", "--doc", "--quiet"]))?;
    }
    shell::run(&mut cmd)
}
