//! `cargo xtask dist`: release binaries, `dist/` (what the scheduler serves
//! to Mesos's fetcher) with its SHA-256 manifest, and an installable tarball.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::shell;

/// The binaries of a release, in `bin/` of the tarball.
pub const BINARIES: [&str; 3] = ["mmm-scheduler", "mmm-executor", "mmm-cli"];
/// What `dist/` holds besides its manifest: exactly what executors fetch.
const DIST_FILES: [&str; 2] = ["mmm-executor", "mmm-executor-logging.toml"];
/// The manifest's name; the scheduler checks it at start.
pub const MANIFEST: &str = "MANIFEST.sha256";

pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(bad) = args.first() {
        return Err(format!("`dist` takes no options, got {bad:?}"));
    }
    let root = shell::root();
    build_release()?;
    let dist = fill_dist(&root)?;
    eprintln!("dist/ ready: {}", dist.display());
    let tarball = package(&root)?;
    eprintln!("package: {}", tarball.display());
    Ok(())
}

pub fn build_release() -> Result<(), String> {
    let mut cmd = shell::cargo();
    cmd.args(["build", "--release"]);
    for bin in BINARIES {
        cmd.args(["--bin", bin]);
    }
    shell::run(&mut cmd)
}

/// Copies the executor and its logging configuration into `dist/` and writes
/// the manifest. Anything else in `dist/` except its README is removed, so
/// that the directory is exactly what the manifest lists.
pub fn fill_dist(root: &Path) -> Result<PathBuf, String> {
    let dist = root.join("dist");
    fs::create_dir_all(&dist).map_err(|e| format!("creating {}: {e}", dist.display()))?;
    for entry in fs::read_dir(&dist).map_err(|e| format!("reading {}: {e}", dist.display()))? {
        let entry = entry.map_err(|e| format!("reading {}: {e}", dist.display()))?;
        if entry.file_name() != "README.md" && entry.path().is_file() {
            fs::remove_file(entry.path())
                .map_err(|e| format!("removing {}: {e}", entry.path().display()))?;
        }
    }
    copy(
        &root.join("target/release/mmm-executor"),
        &dist.join(DIST_FILES[0]),
    )?;
    copy(
        &root.join("config/mmm-executor-logging.toml"),
        &dist.join(DIST_FILES[1]),
    )?;

    let sums = shell::output(
        Command::new("sha256sum")
            .args(DIST_FILES)
            .current_dir(&dist),
    )?;
    fs::write(dist.join(MANIFEST), format!("{sums}\n"))
        .map_err(|e| format!("writing {}: {e}", dist.join(MANIFEST).display()))?;
    Ok(dist)
}

fn package(root: &Path) -> Result<PathBuf, String> {
    let version = env!("CARGO_PKG_VERSION");
    let name = format!("mmm-{version}-{}-linux", std::env::consts::ARCH);
    let staging = root.join("target/package").join(&name);
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(|e| format!("cleaning {}: {e}", staging.display()))?;
    }
    fs::create_dir_all(staging.join("bin"))
        .map_err(|e| format!("creating {}: {e}", staging.display()))?;
    for bin in BINARIES {
        copy(
            &root.join("target/release").join(bin),
            &staging.join("bin").join(bin),
        )?;
    }
    shell::run(
        Command::new("cp")
            .args(["-r", "config", "dist", "scripts"])
            .arg(&staging)
            .current_dir(root),
    )?;
    copy(&root.join("README.md"), &staging.join("README.md"))?;
    let tarball = root.join("target/package").join(format!("{name}.tar.gz"));
    shell::run(
        Command::new("tar")
            .arg("czf")
            .arg(&tarball)
            .arg(&name)
            .current_dir(root.join("target/package")),
    )?;
    Ok(tarball)
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))
}
