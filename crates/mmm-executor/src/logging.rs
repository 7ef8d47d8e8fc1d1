//! Logs go to stderr (the sandbox's `stderr` file) and to `executor.log` in
//! the sandbox, so they survive when Mesos rotates or truncates stderr.

use std::path::Path;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

/// The file in the sandbox that receives the executor's log.
pub const LOG_FILE: &str = "executor.log";

/// The logging configuration the scheduler serves from `dist/` next to the
/// executor; Mesos fetches it into the sandbox.
pub const CONFIG_FILE: &str = "mmm-executor-logging.toml";

/// Log lines the file writer queues before it drops new ones (it never blocks replication).
const LOG_QUEUE_LINES: usize = 8_192;

/// What the logging configuration holds.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LoggingConfig {
    /// tracing's EnvFilter directives, e.g. `info,librdkafka=warn`.
    filter: Option<String>,
}

/// The filter directives: `RUST_LOG` first, then the sandbox's
/// configuration file, then `info`. A file that cannot be read or parsed is
/// reported on stderr (logging is not up yet) and ignored, so a bad logging
/// file never stops the mirroring.
fn directives(sandbox: Option<&Path>) -> String {
    if let Ok(env) = std::env::var(EnvFilter::DEFAULT_ENV) {
        return env;
    }
    let Some(path) = sandbox.map(|d| d.join(CONFIG_FILE)).filter(|p| p.exists()) else {
        return "info".into();
    };
    let parsed = std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|text| toml::from_str::<LoggingConfig>(&text).map_err(|e| e.to_string()));
    match parsed {
        Ok(LoggingConfig { filter: Some(f) }) if EnvFilter::try_new(&f).is_ok() => f,
        Ok(LoggingConfig { filter: Some(f) }) => {
            eprintln!("{}: invalid filter {f:?}; logging at info", path.display());
            "info".into()
        }
        Ok(LoggingConfig { filter: None }) => "info".into(),
        Err(e) => {
            eprintln!("{}: {e}; logging at info", path.display());
            "info".into()
        }
    }
}

/// Installs the global subscriber; keep the guard alive until exit so the
/// file gets every line. The level comes from [`directives`].
pub fn init(sandbox: Option<&Path>) -> Option<WorkerGuard> {
    let directives = directives(sandbox);
    let filter = || EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    // Mesos writes stderr to a sandbox file shown in its UI, where colour
    // codes are noise; colour only for a person at a terminal.
    let stderr = fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_filter(filter());
    let (file, guard) = match sandbox {
        Some(dir) => {
            let appender = tracing_appender::rolling::never(dir, LOG_FILE);
            // The default queue of 128,000 lines is a 4 MB array, touched when it is created: a
            // sixteenth of the executor's memory on a LAN, for a log of a few lines a minute.
            let (writer, guard) = NonBlockingBuilder::default()
                .buffered_lines_limit(LOG_QUEUE_LINES)
                .finish(appender);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_file_sets_the_filter_and_bad_files_fall_back_to_info() {
        if std::env::var(EnvFilter::DEFAULT_ENV).is_ok() {
            return; // RUST_LOG wins by design; nothing to check here
        }
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(directives(Some(dir.path())), "info");
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "filter = \"debug,librdkafka=warn\"\n",
        )
        .expect("write");
        assert_eq!(directives(Some(dir.path())), "debug,librdkafka=warn");
        std::fs::write(dir.path().join(CONFIG_FILE), "filter = 3\n").expect("write");
        assert_eq!(directives(Some(dir.path())), "info");
        std::fs::write(dir.path().join(CONFIG_FILE), "level = \"debug\"\n").expect("write");
        assert_eq!(directives(Some(dir.path())), "info");
    }
}
