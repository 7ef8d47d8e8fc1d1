//! `mmm-executor`: started by a Mesos agent in the task's sandbox; mirrors
//! Kafka topics as the task's `TaskInfo.data` describes.

use std::process::ExitCode;

use anyhow::Context;
use mmm_executor::executor::{Executor, ExecutorOptions, Exit};
use mmm_executor::logging;
use mmm_executor::mesos_env::MesosEnv;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let env = match MesosEnv::from_process() {
        Ok(env) => env,
        Err(e) => {
            eprintln!("mmm-executor: {e}");
            return ExitCode::from(2);
        }
    };
    // As Mesos's executor library does: the token is for the agent only, not
    // for librdkafka or anything else this process starts. No other thread
    // runs yet.
    std::env::remove_var("MESOS_EXECUTOR_AUTHENTICATION_TOKEN");
    let _log_guard = logging::init(env.sandbox.as_deref());
    match run(env) {
        Ok(Exit::Clean) => ExitCode::SUCCESS,
        Ok(Exit::TaskFailed) => ExitCode::from(1),
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("mmm-executor: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// glibc gives each thread that meets contention an arena of its own, up to 8 per core, and an
/// arena keeps the high-water mark of what its thread allocated. Every target producer has its
/// own broker threads building produce requests, so across a long link (several producers) the
/// freed request buffers of each stayed mapped: with 6 producers at 100 ms, 277.7 MB peak RSS
/// with glibc's default, 196.1 MB with 2 arenas, at the same rate, and the same LAN rate
/// (docs/performance.md). An operator's `MALLOC_ARENA_MAX` wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn limit_malloc_arenas() {
    const ARENAS: libc::c_int = 2;
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    // SAFETY: called first in `main`, before any other thread exists; mallopt only changes
    // glibc's allocation policy, and a refusal (return value 0) leaves the default in place.
    let applied = unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENAS) };
    if applied == 0 {
        eprintln!("mmm-executor: could not limit malloc arenas; glibc's default applies");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn run(env: MesosEnv) -> anyhow::Result<Exit> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let options = ExecutorOptions::from_process_env().context("reading MMM_EXECUTOR_* settings")?;
    let executor = Executor::new(env, options)?;
    let exit = runtime.block_on(executor.run())?;
    // The replication thread has drained and committed (or ran out of grace
    // period); the process ends without waiting for it any longer.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    Ok(exit)
}
