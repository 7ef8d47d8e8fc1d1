//! Killing an executor with everything it started.

/// Sends SIGKILL to the process group led by `pid` (each executor is started
/// as the leader of its own group), and to `pid` itself in case it left it.
pub(crate) fn kill(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid <= 1 {
        return;
    }
    signal(-pid);
    signal(pid);
}

// Sending a signal has no memory-safety preconditions; libc::kill is only
// `unsafe` because it is an FFI call. The pid is checked above never to be
// 0, 1 or -1, which would signal the caller's group or every process.
#[allow(unsafe_code)]
fn signal(target: libc::pid_t) {
    // SAFETY: plain syscall with integer arguments; no pointers involved.
    unsafe {
        libc::kill(target, libc::SIGKILL);
    }
}
