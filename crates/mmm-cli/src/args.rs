//! The command line, as documented in the project's interface contracts.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Command-line client of the Mirror Maker on Mesos REST API.
#[derive(Debug, Parser)]
#[command(name = "mmm-cli", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// Base URL of the REST API, e.g. http://127.0.0.1:7000/api [env: MMM_API]
    #[arg(long, global = true, value_name = "URL")]
    pub api: Option<String>,

    /// File holding the API token, sent as "Authorization: Bearer <token>"
    /// [env: MMM_API_TOKEN holds the token itself]
    #[arg(long, global = true, value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// Print the API's JSON response instead of the human layout
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

const AFTER_HELP: &str = "\
The API base URL comes from --api, else from MMM_API. A URL without a path
gets /api appended (http://host:7000 means http://host:7000/api); a URL
without a scheme gets http:// prepended.

Exit codes: 0 success, 1 the API refused the request or could not be
reached, 2 usage errors.";

/// What to ask the API.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add mirroring tasks
    Add {
        /// How many tasks to add
        #[arg(value_parser = clap::value_parser!(u32).range(1..))]
        count: u32,
        /// CPUs per task (default: the scheduler's)
        #[arg(long, value_name = "F")]
        cpus: Option<f64>,
        /// Memory per task in MB (default: the scheduler's)
        #[arg(long, value_name = "F")]
        mem: Option<f64>,
        /// Topics to mirror, comma-separated
        #[arg(long, value_name = "a,b", value_delimiter = ',', num_args = 1..)]
        topics: Option<Vec<String>>,
        /// A regex of the topics to mirror, instead of a list
        #[arg(long, value_name = "R", conflicts_with = "topics")]
        topics_regex: Option<String>,
    },
    /// Show the tasks and their states
    Status {
        /// Redraw every few seconds until interrupted (Ctrl-C)
        #[arg(long)]
        watch: bool,
        /// Seconds between redraws with --watch
        #[arg(long, value_name = "SECS", default_value_t = 2,
              value_parser = clap::value_parser!(u64).range(1..))]
        interval: u64,
    },
    /// Stop and remove tasks
    Delete {
        /// The task ids
        #[arg(required = true, num_args = 1..)]
        ids: Vec<u32>,
    },
    /// Start stopped, failed or finished tasks
    Start {
        /// The task ids
        #[arg(required = true, num_args = 1..)]
        ids: Vec<u32>,
    },
    /// Stop tasks, keeping them
    Stop {
        /// The task ids
        #[arg(required = true, num_args = 1..)]
        ids: Vec<u32>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn json_is_accepted_after_the_subcommand() {
        let cli = Cli::try_parse_from(["mmm-cli", "status", "--json"]).expect("valid");
        assert!(cli.json);
    }

    #[test]
    fn topics_split_on_commas() {
        let cli = Cli::try_parse_from(["mmm-cli", "add", "2", "--topics", "a,b"]).expect("valid");
        match cli.command {
            Command::Add { count, topics, .. } => {
                assert_eq!(count, 2);
                assert_eq!(topics, Some(vec!["a".to_string(), "b".to_string()]));
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn zero_count_and_missing_ids_are_usage_errors() {
        assert!(Cli::try_parse_from(["mmm-cli", "add", "0"]).is_err());
        assert!(Cli::try_parse_from(["mmm-cli", "delete"]).is_err());
        assert!(Cli::try_parse_from(["mmm-cli", "stop", "x"]).is_err());
        assert!(Cli::try_parse_from([
            "mmm-cli",
            "add",
            "1",
            "--topics",
            "a",
            "--topics-regex",
            "b"
        ])
        .is_err());
    }
}
