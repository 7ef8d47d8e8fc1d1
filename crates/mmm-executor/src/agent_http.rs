//! The executor's HTTP exchanges with its agent: https when libprocess SSL
//! is on, the agent's authentication token on every call, and never through
//! a proxy (Mesos's own executor library ignores `HTTP_PROXY` too).

use std::path::Path;
use std::time::Duration;

use mesos_proto::v1::executor::Call;
use mesos_proto::{Message as _, CONTENT_TYPE_PROTOBUF};
use thiserror::Error;

use crate::mesos_env::{AgentTls, MesosEnv, Secret};

/// Why the HTTP client could not be set up.
#[derive(Debug, Error)]
pub enum AgentHttpSetupError {
    /// A CA file or directory could not be read or holds no certificate.
    #[error("cannot use the CA certificates in {path} ({variable}): {reason}")]
    Ca {
        /// The file or directory.
        path: String,
        /// The variable naming it.
        variable: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// reqwest refused the configuration.
    #[error("cannot create the HTTP client: {0}")]
    Client(String),
}

/// Why one call to the agent failed.
#[derive(Debug, Error)]
pub enum AgentCallError {
    /// The agent could not be reached, or the exchange broke.
    #[error("{0}")]
    Transport(String),
    /// The agent answered with an error status.
    #[error("agent answered {status}: {body}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The agent's explanation.
        body: String,
    },
}

impl AgentCallError {
    /// The HTTP status, when the agent answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            AgentCallError::Status { status, .. } => Some(*status),
            AgentCallError::Transport(_) => None,
        }
    }
}

/// The agent's executor API, as this executor reaches it.
pub struct AgentHttp {
    client: reqwest::Client,
    url: String,
    token: Option<Secret>,
}

impl std::fmt::Debug for AgentHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentHttp")
            .field("url", &self.url)
            .field("authenticated", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

impl AgentHttp {
    /// A client for the agent `env` describes.
    pub fn new(env: &MesosEnv) -> Result<Self, AgentHttpSetupError> {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5));
        if env.tls.enabled {
            builder = builder.https_only(true);
            for cert in ca_certificates(&env.tls)? {
                builder = builder.add_root_certificate(cert);
            }
            if env.tls.skip_verification {
                builder = builder.danger_accept_invalid_certs(true);
            }
        }
        let client = builder
            .build()
            .map_err(|e| AgentHttpSetupError::Client(error_chain(&e)))?;
        Ok(Self {
            client,
            url: env.executor_api_url(),
            token: env.authentication_token.clone(),
        })
    }

    /// The executor API's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// POSTs `call`; a non-2xx answer is an error. SUBSCRIBE passes no
    /// timeout: its answer is the event stream.
    pub async fn send(
        &self,
        call: &Call,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, AgentCallError> {
        let mut request = self
            .client
            .post(&self.url)
            .header("Content-Type", CONTENT_TYPE_PROTOBUF)
            .header("Accept", CONTENT_TYPE_PROTOBUF)
            .body(call.encode_to_vec());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = request
            .send()
            .await
            .map_err(|e| AgentCallError::Transport(error_chain(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        // A 401's reason is in its challenge (e.g. `error_description="Invalid
        // JWT: ..."`), not in its body.
        let challenge = response
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(|c| format!(" (WWW-Authenticate: {c})"))
            .unwrap_or_default();
        let body = response.text().await.unwrap_or_default();
        let body: String = body.replace('\n', " ").chars().take(500).collect();
        Err(AgentCallError::Status {
            status: status.as_u16(),
            body: format!("{body}{challenge}"),
        })
    }
}

/// The certificates of `LIBPROCESS_SSL_CA_FILE` and `LIBPROCESS_SSL_CA_DIR`,
/// trusted besides the system's roots.
fn ca_certificates(tls: &AgentTls) -> Result<Vec<reqwest::Certificate>, AgentHttpSetupError> {
    let mut certs = Vec::new();
    if let Some(file) = &tls.ca_file {
        certs.extend(read_pem(file, "LIBPROCESS_SSL_CA_FILE")?);
    }
    if let Some(dir) = &tls.ca_dir {
        let bad = |reason: String| AgentHttpSetupError::Ca {
            path: dir.display().to_string(),
            variable: "LIBPROCESS_SSL_CA_DIR",
            reason,
        };
        let entries = std::fs::read_dir(dir).map_err(|e| bad(e.to_string()))?;
        let mut paths: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| x == "pem" || x == "crt" || x == "cer")
            })
            .collect();
        paths.sort();
        for path in paths {
            certs.extend(read_pem(&path, "LIBPROCESS_SSL_CA_DIR")?);
        }
    }
    Ok(certs)
}

fn read_pem(
    path: &Path,
    variable: &'static str,
) -> Result<Vec<reqwest::Certificate>, AgentHttpSetupError> {
    let bad = |reason: String| AgentHttpSetupError::Ca {
        path: path.display().to_string(),
        variable,
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(error_chain(&e)))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// An error with its causes (reqwest keeps the useful part in `source()`).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with(tls: AgentTls) -> MesosEnv {
        let mut env = MesosEnv::from_lookup(|k| {
            match k {
                "MESOS_FRAMEWORK_ID" => Some("f"),
                "MESOS_EXECUTOR_ID" => Some("e"),
                "MESOS_AGENT_ENDPOINT" => Some("127.0.0.1:5051"),
                _ => None,
            }
            .map(str::to_owned)
        })
        .expect("valid env");
        env.tls = tls;
        env
    }

    #[test]
    fn unreadable_or_empty_ca_files_are_named() {
        let dir = tempfile::tempdir().expect("dir");
        let missing = dir.path().join("missing.pem");
        let err = AgentHttp::new(&env_with(AgentTls {
            enabled: true,
            ca_file: Some(missing.clone()),
            ..AgentTls::default()
        }))
        .expect_err("missing CA file");
        let text = err.to_string();
        assert!(
            text.contains("LIBPROCESS_SSL_CA_FILE") && text.contains("missing.pem"),
            "{text}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let err = AgentHttp::new(&env_with(AgentTls {
            enabled: true,
            ca_dir: Some(dir.path().to_path_buf()),
            ..AgentTls::default()
        }))
        .expect_err("no certificate");
        assert!(err.to_string().contains("LIBPROCESS_SSL_CA_DIR"), "{err}");
    }

    #[test]
    fn plain_and_tls_clients_build() {
        let plain = AgentHttp::new(&env_with(AgentTls::default())).expect("plain");
        assert!(plain.url().starts_with("http://"));
        let tls = AgentHttp::new(&env_with(AgentTls {
            enabled: true,
            skip_verification: true,
            ..AgentTls::default()
        }))
        .expect("tls");
        assert!(tls.url().starts_with("https://"));
    }
}
