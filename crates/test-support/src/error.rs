//! The error type of every fallible helper in this crate.

use std::path::PathBuf;
use std::time::Duration;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while installing, starting or talking to a test service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file system or process operation failed.
    #[error("{action}: {source}")]
    Io {
        /// What was being done, naming the file or program.
        action: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The Tansu binary could not be installed.
    #[error("installing the Tansu broker binary failed: {0}")]
    Install(String),

    /// A downloaded file does not have the pinned sha256.
    #[error("{path} has sha256 {actual}, expected {expected}")]
    ChecksumMismatch {
        /// The downloaded file.
        path: PathBuf,
        /// The pinned hash.
        expected: String,
        /// The hash of the file on disk.
        actual: String,
    },

    /// A condition was not reached in time.
    #[error("timed out after {waited:?} waiting for {what}{}", log_hint(.log))]
    Timeout {
        /// The awaited condition.
        what: String,
        /// How long was waited.
        waited: Duration,
        /// The log file of the process concerned, if any.
        log: Option<PathBuf>,
    },

    /// A child process ended while it should have been running.
    #[error("{name} exited unexpectedly ({status}){}", log_hint(.log))]
    Exited {
        /// The process name.
        name: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its log file, if any.
        log: Option<PathBuf>,
    },

    /// A Kafka client operation failed.
    #[error("{action}: {source}")]
    Kafka {
        /// What was being done, naming the topic or broker.
        action: String,
        /// The client error.
        #[source]
        source: rdkafka::error::KafkaError,
    },

    /// Fewer records than expected arrived before the deadline.
    #[error("consumed {got} of {expected} records from topic {topic} within {waited:?}")]
    Incomplete {
        /// The topic read.
        topic: String,
        /// Records expected.
        expected: usize,
        /// Records read.
        got: usize,
        /// How long was waited.
        waited: Duration,
    },

    /// Not every produced record was acknowledged.
    #[error("{delivered} of {expected} records to topic {topic} were acknowledged; first failures: {}", .failures.join("; "))]
    Delivery {
        /// The topic written.
        topic: String,
        /// Records acknowledged.
        delivered: usize,
        /// Records produced.
        expected: usize,
        /// The first delivery errors.
        failures: Vec<String>,
    },

    /// A workspace binary has not been built.
    #[error("binary {name} not found at {path}: run `cargo build -p <package of {name}>` (or `cargo build --workspace`) first")]
    MissingBinary {
        /// The binary name.
        name: String,
        /// Where it was looked for.
        path: PathBuf,
    },

    /// A required system package or program is missing and could not be installed.
    #[error("{0}")]
    Unavailable(String),

    /// An argument was rejected before doing anything.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

fn log_hint(log: &Option<PathBuf>) -> String {
    match log {
        Some(path) => format!("; see its log {}", path.display()),
        None => String::new(),
    }
}

impl Error {
    pub(crate) fn io(action: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            action: action.into(),
            source,
        }
    }

    pub(crate) fn kafka(action: impl Into<String>, source: rdkafka::error::KafkaError) -> Self {
        Error::Kafka {
            action: action.into(),
            source,
        }
    }
}
