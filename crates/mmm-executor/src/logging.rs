//! Logs go to stderr (the sandbox's `stderr` file) and to `executor.log` in
//! the sandbox, so they survive when Mesos rotates or truncates stderr.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

/// The file in the sandbox that receives the executor's log.
pub const LOG_FILE: &str = "executor.log";

/// Installs the global subscriber; keep the guard alive until exit so the
/// file gets every line. `RUST_LOG` chooses the level (default `info`).
pub fn init(sandbox: Option<&Path>) -> Option<WorkerGuard> {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter());
    let (file, guard) = match sandbox {
        Some(dir) => {
            let appender = tracing_appender::rolling::never(dir, LOG_FILE);
            let (writer, guard) = tracing_appender::non_blocking(appender);
            (
                Some(
                    fmt::layer()
                        .with_ansi(false)
                        .with_writer(writer)
                        .with_filter(filter()),
                ),
                Some(guard),
            )
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
    guard
}

use tracing_subscriber::Layer as _;
