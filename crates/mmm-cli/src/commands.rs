//! Each subcommand: the request it sends and what it prints.

use std::io::Write;
use std::thread;
use std::time::Duration;

use mmm_core::rest::{AddRequest, IdsRequest, TopicList};
use serde_json::{json, Value};

use crate::args::Command;
use crate::client::{ApiClient, ApiError};
use crate::view::{render_cluster, servers};

/// Clears the terminal and puts the cursor home, between `--watch` frames.
const CLEAR_SCREEN: &str = "\x1b[2J\x1b[H";

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The request failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// An answer that does not follow the REST contract.
    #[error("the API's answer does not have the expected shape: {0}")]
    Unreadable(#[from] serde_json::Error),
    /// Writing the output failed (a closed pipe...).
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

/// Runs `command` against `client`, writing to `out`.
pub fn run(
    command: &Command,
    client: &ApiClient,
    json_output: bool,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    match command {
        Command::Add {
            count,
            cpus,
            mem,
            topics,
            topics_regex,
        } => {
            let body = add_body(
                *count,
                *cpus,
                *mem,
                topics.as_deref(),
                topics_regex.as_deref(),
            );
            let answer = client.post("add", &body)?;
            let headline = format!("Added {count} tasks successfully.");
            print_answer(out, json_output, Some(&headline), &answer)
        }
        Command::Status { watch: false, .. } => {
            let answer = client.get("status")?;
            print_answer(out, json_output, None, &answer)
        }
        Command::Status {
            watch: true,
            interval,
        } => watch(client, json_output, Duration::from_secs(*interval), out),
        Command::Delete { ids } => ids_command(client, "delete", "Delete", ids, json_output, out),
        Command::Start { ids } => ids_command(client, "start", "Start", ids, json_output, out),
        Command::Stop { ids } => ids_command(client, "stop", "Stop", ids, json_output, out),
    }
}

/// The body of `POST /api/add`; unset options are left to the scheduler.
pub fn add_body(
    count: u32,
    cpus: Option<f64>,
    mem: Option<f64>,
    topics: Option<&[String]>,
    topics_regex: Option<&str>,
) -> AddRequest {
    let mut body = AddRequest::new(count);
    body.cpus = cpus;
    body.mem = mem;
    body.topics = topics.map(|topics| {
        TopicList(
            topics
                .iter()
                .map(|t| t.trim())
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
        )
    });
    body.topics_regex = topics_regex.map(str::to_string);
    body
}

fn ids_command(
    client: &ApiClient,
    endpoint: &str,
    verb: &str,
    ids: &[u32],
    json_output: bool,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let answer = client.post(endpoint, &IdsRequest::new(ids.to_vec()))?;
    let list: Vec<String> = ids.iter().map(u32::to_string).collect();
    let headline = format!(
        "{verb} servers request (ids={}) was sent successfully.",
        list.join(",")
    );
    print_answer(out, json_output, Some(&headline), &answer)
}

fn print_answer(
    out: &mut dyn Write,
    json_output: bool,
    headline: Option<&str>,
    answer: &Value,
) -> Result<(), CommandError> {
    if json_output {
        writeln!(out, "{}", pretty(answer))?;
    } else {
        if let Some(headline) = headline {
            writeln!(out, "{headline}")?;
        }
        write!(out, "{}", render_cluster(&servers(answer)?))?;
    }
    out.flush()?;
    Ok(())
}

/// The JSON as the API sent it, indented for reading.
pub fn pretty(answer: &Value) -> String {
    serde_json::to_string_pretty(answer).unwrap_or_else(|_| answer.to_string())
}

/// Redraws the status until the process is interrupted. A failed request is
/// shown in place of the cluster and retried, so a restarting scheduler does
/// not end the watch.
fn watch(
    client: &ApiClient,
    json_output: bool,
    interval: Duration,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    loop {
        let answer = client.get("status");
        if json_output {
            // One compact document per line, for tools reading the stream.
            match &answer {
                Ok(answer) => writeln!(out, "{answer}")?,
                Err(e) => writeln!(
                    out,
                    "{}",
                    json!({"success": false, "message": e.to_string()})
                )?,
            }
        } else {
            write!(out, "{CLEAR_SCREEN}")?;
            writeln!(out, "Every {}s (Ctrl-C to stop)\n", interval.as_secs())?;
            match &answer {
                Ok(answer) => match servers(answer) {
                    Ok(list) => write!(out, "{}", render_cluster(&list))?,
                    Err(e) => writeln!(out, "{}", CommandError::Unreadable(e))?,
                },
                Err(e) => writeln!(out, "{e}")?,
            }
        }
        out.flush()?;
        thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(request: &AddRequest) -> Value {
        serde_json::to_value(request).expect("serialises")
    }

    #[test]
    fn add_body_sends_only_what_was_given() {
        assert_eq!(
            body(&add_body(2, None, None, None, None)),
            json!({"amount": 2})
        );
        let topics = vec!["a".to_string(), " b ".to_string(), String::new()];
        assert_eq!(
            body(&add_body(1, Some(0.5), Some(128.0), Some(&topics), None)),
            json!({"amount": 1, "cpus": 0.5, "mem": 128.0, "topics": ["a", "b"]})
        );
        assert_eq!(
            body(&add_body(1, None, None, None, Some("^x"))),
            json!({"amount": 1, "topics_regex": "^x"})
        );
    }
}
