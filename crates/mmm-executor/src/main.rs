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
