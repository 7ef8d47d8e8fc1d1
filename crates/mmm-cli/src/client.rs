//! Talks to the REST API: one request, one JSON answer.

use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder};
use serde_json::Value;

use crate::endpoint::ApiBase;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A request that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No answer at all.
    #[error("cannot reach the mmm API at {url}: {cause}")]
    Unreachable {
        /// The URL tried.
        url: String,
        /// The innermost cause (connection refused, timeout...).
        cause: String,
    },
    /// The API answered with an error status or `success: false`.
    #[error("the API refused the request: {message}")]
    Refused {
        /// Its message, or the HTTP status when it gave none.
        message: String,
        /// Its JSON answer, when it sent one.
        body: Option<Value>,
    },
    /// An answer that is not the API's JSON.
    #[error("the answer from {url} is not the mmm API's JSON ({problem})")]
    NotApiJson {
        /// The URL asked.
        url: String,
        /// What was wrong.
        problem: String,
    },
}

/// A blocking client of one API base.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: Client,
    base: ApiBase,
    token: Option<String>,
}

impl ApiClient {
    /// A client for `base`, sending `token` as a bearer token when set.
    pub fn new(base: ApiBase, token: Option<String>) -> Result<ApiClient, ApiError> {
        let http = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| ApiError::Unreachable {
                url: base.url(""),
                cause: innermost(&e),
            })?;
        Ok(ApiClient { http, base, token })
    }

    /// `GET <base>/<endpoint>`.
    pub fn get(&self, endpoint: &str) -> Result<Value, ApiError> {
        let url = self.base.url(endpoint);
        self.send(self.http.get(&url), url)
    }

    /// `POST <base>/<endpoint>` with a JSON body.
    pub fn post(&self, endpoint: &str, body: &impl serde::Serialize) -> Result<Value, ApiError> {
        let url = self.base.url(endpoint);
        self.send(self.http.post(&url).json(body), url)
    }

    fn send(&self, request: RequestBuilder, url: String) -> Result<Value, ApiError> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .map_err(|e| ApiError::Unreachable {
                url: url.clone(),
                cause: innermost(&e),
            })?;
        let status = response.status();
        let text = response.text().map_err(|e| ApiError::Unreachable {
            url: url.clone(),
            cause: innermost(&e),
        })?;
        let body: Option<Value> = serde_json::from_str(&text).ok();
        let success = body
            .as_ref()
            .and_then(|b| b.get("success"))
            .and_then(Value::as_bool);
        if status.is_client_error() || status.is_server_error() || success == Some(false) {
            let message = body
                .as_ref()
                .and_then(|b| b.get("message"))
                .and_then(Value::as_str)
                .filter(|m| !m.trim().is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| describe_status(status, &text));
            return Err(ApiError::Refused { message, body });
        }
        match (body, success) {
            (Some(body), Some(true)) => Ok(body),
            (Some(_), _) => Err(ApiError::NotApiJson {
                url,
                problem: "no \"success\" field".to_string(),
            }),
            (None, _) => Err(ApiError::NotApiJson {
                url,
                problem: format!("HTTP {status}, body {}", snippet(&text)),
            }),
        }
    }
}

fn describe_status(status: reqwest::StatusCode, text: &str) -> String {
    if text.trim().is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {}", snippet(text))
    }
}

/// The first line of a body, shortened, for a one-line message.
fn snippet(text: &str) -> String {
    const MAX: usize = 120;
    let line = text.lines().next().unwrap_or("").trim();
    if text.trim().is_empty() {
        return "empty".to_string();
    }
    match line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}...", &line[..cut]),
        None => format!("{line:?}"),
    }
}

/// The deepest cause of an error: "Connection refused (os error 111)"
/// rather than reqwest's wrapper sentences.
fn innermost(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    if error.is_timeout() && !text.contains("timed out") {
        format!("timed out ({text})")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_keeps_one_short_line() {
        assert_eq!(snippet(""), "empty");
        assert_eq!(snippet("not found\nmore"), "\"not found\"");
        let long = "x".repeat(500);
        assert_eq!(snippet(&long).len(), 120 + 2 + 3);
    }
}
