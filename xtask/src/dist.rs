//! `cargo xtask dist`: release binaries, `dist/` (what the scheduler serves
//! to Mesos's fetcher) with its SHA-256 manifest, and an installable tarball.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::prerequisites::{self, Task};
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
    prerequisites::ensure(Task::Build)?;
    let root = shell::root();
    build_release()?;
    let release = shell::target_dir().join("release");
    let dist = fill_dist(&root, &release)?;
    eprintln!("dist/ ready: {}", dist.display());
    let tarball = package(&root, &release, &shell::target_dir().join("package"))?;
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

/// Copies the executor (from the `release` build directory) and its logging
/// configuration into `<root>/dist/` and writes the manifest. Anything else
/// in `dist/` except its README is removed, so that the directory is exactly
/// what the manifest lists.
pub fn fill_dist(root: &Path, release: &Path) -> Result<PathBuf, String> {
    let dist = root.join("dist");
    fs::create_dir_all(&dist).map_err(|e| format!("creating {}: {e}", dist.display()))?;
    for entry in fs::read_dir(&dist).map_err(|e| format!("reading {}: {e}", dist.display()))? {
        let entry = entry.map_err(|e| format!("reading {}: {e}", dist.display()))?;
        if entry.file_name() != "README.md" && entry.path().is_file() {
            fs::remove_file(entry.path())
                .map_err(|e| format!("removing {}: {e}", entry.path().display()))?;
        }
    }
    copy(&release.join("mmm-executor"), &dist.join(DIST_FILES[0]))?;
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

/// Writes `<out>/mmm-<version>-<arch>-linux.tar.gz`: `bin/` (the release
/// binaries), `config/`, `dist/` and the README, under one top directory.
fn package(root: &Path, release: &Path, out: &Path) -> Result<PathBuf, String> {
    let version = env!("CARGO_PKG_VERSION");
    let name = format!("mmm-{version}-{}-linux", std::env::consts::ARCH);
    let staging = out.join(&name);
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(|e| format!("cleaning {}: {e}", staging.display()))?;
    }
    fs::create_dir_all(staging.join("bin"))
        .map_err(|e| format!("creating {}: {e}", staging.display()))?;
    for bin in BINARIES {
        copy(&release.join(bin), &staging.join("bin").join(bin))?;
    }
    shell::run(
        Command::new("cp")
            .args(["-r", "config", "dist", "scripts"])
            .arg(&staging)
            .current_dir(root),
    )?;
    copy(&root.join("README.md"), &staging.join("README.md"))?;
    let tarball = out.join(format!("{name}.tar.gz"));
    shell::run(
        Command::new("tar")
            .arg("czf")
            .arg(&tarball)
            .arg(&name)
            .current_dir(out),
    )?;
    Ok(tarball)
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace root with the files `dist` reads, and a release directory
    /// with stand-in binaries.
    fn fake_workspace() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("root");
        let release = dir.path().join("release");
        for d in [
            root.join("config"),
            root.join("dist"),
            root.join("scripts"),
            release.clone(),
        ] {
            fs::create_dir_all(&d).expect("mkdir");
        }
        fs::write(root.join("README.md"), "readme\n").expect("write");
        fs::write(root.join("config/mmm.toml"), "[mesos]\n").expect("write");
        fs::write(
            root.join("config/mmm-executor-logging.toml"),
            "filter = \"info\"\n",
        )
        .expect("write");
        fs::write(root.join("dist/README.md"), "served to executors\n").expect("write");
        fs::write(root.join("scripts/mmm.sh"), "#!/bin/sh\n").expect("write");
        fs::write(root.join("dist/stale-file"), "old").expect("write");
        for bin in BINARIES {
            fs::write(release.join(bin), format!("binary {bin}\n")).expect("write");
        }
        (dir, root, release)
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn dist_holds_exactly_what_its_manifest_lists_with_matching_hashes() {
        let (_dir, root, release) = fake_workspace();
        let dist = fill_dist(&root, &release).expect("fill dist");
        assert_eq!(
            names_in(&dist),
            [
                MANIFEST,
                "README.md",
                "mmm-executor",
                "mmm-executor-logging.toml"
            ]
        );
        let manifest = fs::read_to_string(dist.join(MANIFEST)).expect("manifest");
        let listed: Vec<&str> = manifest
            .lines()
            .map(|l| l.split_once("  ").expect("`<sha256>  <file>` lines").1)
            .collect();
        assert_eq!(listed, DIST_FILES);
        for line in manifest.lines() {
            let (hash, _) = line.split_once("  ").expect("two fields");
            assert!(
                hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()),
                "{line}"
            );
        }
        // The hashes are those of the files: sha256sum agrees, and a changed
        // file no longer matches.
        let check = || {
            Command::new("sha256sum")
                .args(["--check", "--quiet", MANIFEST])
                .current_dir(&dist)
                .output()
                .expect("sha256sum runs")
                .status
                .success()
        };
        assert!(check(), "the manifest matches dist/");
        fs::write(dist.join("mmm-executor"), "tampered").expect("write");
        assert!(!check(), "a changed executor fails the manifest");
    }

    #[test]
    fn the_package_has_bin_config_dist_and_readme_under_one_directory() {
        let (_dir, root, release) = fake_workspace();
        fill_dist(&root, &release).expect("fill dist");
        let out = root.join("out");
        let tarball = package(&root, &release, &out).expect("package");
        let name = format!(
            "mmm-{}-{}-linux",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH
        );
        assert_eq!(tarball, out.join(format!("{name}.tar.gz")));
        let listing = shell::output(Command::new("tar").arg("tzf").arg(&tarball)).expect("tar");
        let mut files: Vec<&str> = listing.lines().filter(|l| !l.ends_with('/')).collect();
        files.sort_unstable();
        let mut expected: Vec<String> = vec![
            format!("{name}/README.md"),
            format!("{name}/config/mmm-executor-logging.toml"),
            format!("{name}/config/mmm.toml"),
            format!("{name}/dist/{MANIFEST}"),
            format!("{name}/dist/README.md"),
            format!("{name}/dist/mmm-executor"),
            format!("{name}/dist/mmm-executor-logging.toml"),
            format!("{name}/scripts/mmm.sh"),
        ];
        expected.extend(BINARIES.iter().map(|b| format!("{name}/bin/{b}")));
        expected.sort();
        assert_eq!(files, expected);
        let staged = out.join(&name).join("bin/mmm-cli");
        assert_eq!(
            fs::read_to_string(staged).expect("staged cli"),
            "binary mmm-cli\n"
        );
    }
}
