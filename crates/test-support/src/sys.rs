//! The few raw system calls the process helpers need.
//!
//! This is the only module of the crate that may use `unsafe`: `prctl`, `getppid` and `kill`
//! have no safe wrapper in std.
#![allow(unsafe_code)]

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes the child of `command` die with the process that spawns it (PR_SET_PDEATHSIG).
///
/// The kernel sends the signal when the *thread* that forked the child exits, so callers must
/// spawn from a thread that lives as long as the process (see `process::spawn_on_lasting_thread`).
pub(crate) fn kill_child_with_parent(command: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the hook only calls `die_with_parent`, which makes async-signal-safe system calls
    // and allocates nothing on its success path.
    unsafe {
        command.pre_exec(move || die_with_parent(parent));
    }
}

/// Asks the kernel to SIGKILL the calling process when its parent dies.
///
/// Meant to run in a `pre_exec` hook, between fork and exec. `expected_parent` is the pid of the
/// process that spawned us: if it already died before the `prctl` took effect, we have been
/// re-parented and the signal would never come, so the spawn fails instead.
fn die_with_parent(expected_parent: u32) -> io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) only changes a flag of the calling process; getppid has no
    // preconditions. Both are async-signal-safe, as required between fork and exec.
    let (rc, parent) = unsafe {
        let rc = libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        (rc, libc::getppid())
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if i64::from(parent) != i64::from(expected_parent) {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(())
}

/// Sends `signal` to every process of the process group `pgid`.
pub(crate) fn signal_group(pgid: u32, signal: i32) -> io::Result<()> {
    let pgid = libc::pid_t::try_from(pgid)
        .map_err(|_| io::Error::other(format!("process group id {pgid} out of range")))?;
    if pgid <= 1 {
        // kill(-1) or kill(0) would signal far more than one group.
        return Err(io::Error::other(format!(
            "refusing to signal process group {pgid}"
        )));
    }
    // SAFETY: kill has no memory-safety preconditions; a negative pid addresses exactly the group
    // `pgid`, which the guard created for its own child.
    let rc = unsafe { libc::kill(-pgid, signal) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether the process runs as root (effective uid 0).
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
