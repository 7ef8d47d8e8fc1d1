//! `mmm-cli`: drives the Mirror Maker on Mesos scheduler through its REST API.
//!
//! Exit codes: 0 success, 1 the API refused the request (or could not be
//! reached, or did not answer with its JSON), 2 usage errors.

mod args;
mod client;
mod commands;
mod endpoint;
mod view;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

use crate::args::Cli;
use crate::client::{ApiClient, ApiError};
use crate::commands::CommandError;
use crate::endpoint::{resolve_api, resolve_token, ApiBase, UsageError, API_ENV, TOKEN_ENV};

const EXIT_REFUSED: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    // clap prints usage errors and exits with 2 itself.
    let cli = Cli::parse();
    let client = match settings(&cli) {
        Ok((base, token)) => ApiClient::new(base, token),
        Err(e) => {
            eprintln!("mmm-cli: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match client {
        Ok(client) => execute(&cli, &client),
        Err(e) => {
            eprintln!("mmm-cli: {e}");
            ExitCode::from(EXIT_REFUSED)
        }
    }
}

fn settings(cli: &Cli) -> Result<(ApiBase, Option<String>), UsageError> {
    let api_env = std::env::var(API_ENV).ok();
    let token_env = std::env::var(TOKEN_ENV).ok();
    let base = resolve_api(cli.api.as_deref(), api_env.as_deref())?;
    let token = resolve_token(cli.token_file.as_deref(), token_env.as_deref())?;
    Ok((base, token))
}

fn execute(cli: &Cli, client: &ApiClient) -> ExitCode {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match commands::run(&cli.command, client, cli.json, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CommandError::Api(ApiError::Refused { message, body })) => {
            if let (true, Some(body)) = (cli.json, body) {
                // A failed write here changes nothing: the exit code says it.
                let _ = writeln!(out, "{}", commands::pretty(&body));
                let _ = out.flush();
            }
            eprintln!("mmm-cli: the API refused the request: {message}");
            ExitCode::from(EXIT_REFUSED)
        }
        Err(CommandError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mmm-cli: {e}");
            ExitCode::from(EXIT_REFUSED)
        }
    }
}
