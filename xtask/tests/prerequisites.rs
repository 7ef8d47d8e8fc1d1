//! `cargo xtask prerequisites` on a machine that lacks a tool: simulated with
//! a PATH holding every tool of this machine except `make`.

use std::path::Path;
use std::process::Command;

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

/// A directory of links to the programs `names` as found on this PATH.
fn path_with(dir: &Path, names: &[&str]) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        if let Some(found) = std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
        {
            std::os::unix::fs::symlink(found, dir.join(name)).expect("link");
        }
    }
}

#[test]
fn a_missing_make_is_named_with_the_command_that_installs_it() {
    let bin = tempfile::tempdir().expect("temp dir");
    path_with(
        bin.path(),
        &[
            "cc",
            "c++",
            "pkg-config",
            "python3",
            "java",
            "cargo-nextest",
            "apt-get",
        ],
    );
    let output = Command::new(XTASK)
        .args(["prerequisites", "test"])
        .env("PATH", bin.path())
        .output()
        .expect("xtask runs");
    assert!(!output.status.success(), "a missing tool fails the check");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("make "))
        .unwrap_or_else(|| panic!("no line for make in:\n{stderr}"));
    assert!(
        line.ends_with("apt-get install -y --no-install-recommends make"),
        "the line gives the command: {line}"
    );
    if bin.path().join("apt-get").exists() {
        let paste = stderr
            .lines()
            .find(|l| l.contains("apt-get update && apt-get install"))
            .unwrap_or_else(|| panic!("no command to paste in:\n{stderr}"));
        assert!(paste.split_whitespace().any(|w| w == "make"), "{paste}");
    } else {
        assert!(stderr.contains("no apt-get"), "{stderr}");
    }
    // What this machine has is not reported missing.
    if bin.path().join("pkg-config").exists() {
        assert!(
            !stderr
                .lines()
                .any(|l| l.trim_start().starts_with("pkg-config ")),
            "{stderr}"
        );
    }
}

#[test]
fn the_build_needs_less_than_the_tests() {
    let bin = tempfile::tempdir().expect("temp dir");
    let output = Command::new(XTASK)
        .args(["prerequisites", "dist"])
        .env("PATH", bin.path())
        .env_remove("CC")
        .output()
        .expect("xtask runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cargo xtask dist"), "{stderr}");
    assert!(stderr.contains("build-essential"), "{stderr}");
    assert!(
        !stderr.contains("chromium"),
        "the build needs no browser: {stderr}"
    );
}

#[test]
fn an_unknown_task_is_refused_by_name() {
    let output = Command::new(XTASK)
        .args(["prerequisites", "deploy"])
        .output()
        .expect("xtask runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("\"deploy\""));
}
