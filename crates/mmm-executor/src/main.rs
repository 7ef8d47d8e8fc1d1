//! `mmm-executor`: started by a Mesos agent in the task's sandbox; mirrors
//! Kafka topics as the task's `TaskInfo.data` describes.

use std::process::ExitCode;

use anyhow::Context;
use mmm_executor::executor::{Executor, ExecutorOptions, Exit};
use mmm_executor::logging;
use mmm_executor::mesos_env::MesosEnv;

fn main() -> ExitCode {
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

/// jemalloc serves every allocation of the process: with the `unprefixed` build its `malloc` and
/// `free` replace glibc's, so librdkafka, which allocates and frees each record, uses it too.
///
/// Across a long link each record is freed 100 ms or more after it was allocated, when its
/// delivery report arrives, and is no longer in the CPU's caches. glibc's `free` reads and writes
/// the headers of the freed chunk and its neighbours to coalesce them, and its `malloc` walks the
/// bins that this leaves; jemalloc keeps its metadata apart and caches freed blocks per thread.
/// At 100 ms (200-byte records) the executor needed 2.4 to 2.6 s of CPU per 200 MB instead of
/// 3.0 to 4.1 s, and moved 95 to 105 MB/s instead of 63 to 87 (docs/performance.md).
///
/// Its options are built in (`JEMALLOC_SYS_WITH_MALLOC_CONF` in `.cargo/config.toml`): one arena
/// and small thread caches keep the LAN's peak RSS where glibc had it (59 MB); freed pages go
/// back to the system after a second, from a background thread. `MALLOC_CONF` overrides them.
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
