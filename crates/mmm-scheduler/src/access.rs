//! Who may call the API: the bearer token (re-read when its file changes, so
//! it can be rotated without a restart) and the hosts a request may name.
//!
//! The Host and Origin headers are both chosen by whoever sends the request;
//! comparing them with each other proves nothing. A web page served under a
//! name the attacker controls, rebound in DNS to the scheduler's address,
//! sends its own name in both. So both must name the scheduler itself: its
//! advertised URL, its bound address, or an operator's `[api] allowed_hosts`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::secret_file::{self, SecretFileError};

/// The token file, read again whenever its modification time or size changes.
pub struct TokenFile {
    path: PathBuf,
    current: Mutex<Loaded>,
}

impl std::fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

struct Loaded {
    stamp: Option<(SystemTime, u64)>,
    token: Arc<str>,
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl TokenFile {
    /// Reads the token, refusing a file others may read.
    pub fn open(path: &Path) -> Result<TokenFile, SecretFileError> {
        let stamp = stamp(path);
        let token: Arc<str> = secret_file::read(path, "API token file")?.trim().into();
        Ok(TokenFile {
            path: path.to_path_buf(),
            current: Mutex::new(Loaded { stamp, token }),
        })
    }

    /// The token in force: the file's, re-read when it changed. A file that
    /// became unreadable, empty or readable by others keeps the last good
    /// token in force, with a warning.
    pub fn token(&self) -> Arc<str> {
        let mut current = match self.current.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = stamp(&self.path);
        if now != current.stamp {
            match secret_file::read(&self.path, "API token file") {
                Ok(text) => {
                    current.token = text.trim().into();
                    tracing::info!(file = %self.path.display(), "API token reloaded");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "keeping the previous API token");
                }
            }
            current.stamp = now;
        }
        current.token.clone()
    }
}

/// What the API checks before it handles a request.
#[derive(Debug)]
pub struct Access {
    /// When set, mutating calls need `Authorization: Bearer <token>`.
    pub token: Option<TokenFile>,
    /// The `Host` values (lower case, `host` or `host:port`) a request may
    /// carry; `None` accepts any host (only for tests of other things).
    allowed_hosts: Option<Vec<String>>,
}

impl Access {
    /// The rules of a running scheduler.
    pub fn new(token: Option<TokenFile>, allowed_hosts: Vec<String>) -> Access {
        Access {
            token,
            allowed_hosts: Some(
                allowed_hosts
                    .into_iter()
                    .map(|h| h.trim().to_ascii_lowercase())
                    .filter(|h| !h.is_empty())
                    .collect(),
            ),
        }
    }

    /// No token and any host: for tests that exercise something else.
    pub fn open() -> Access {
        Access {
            token: None,
            allowed_hosts: None,
        }
    }

    /// Whether a `Host` header value (or an Origin's authority) names this
    /// scheduler. An allowed entry without a port matches any port.
    pub fn host_allowed(&self, host: &str) -> bool {
        let Some(allowed) = &self.allowed_hosts else {
            return true;
        };
        let host = host.trim().to_ascii_lowercase();
        let name = host_name(&host);
        allowed
            .iter()
            .any(|a| *a == host || (!has_port(a) && a == name))
    }
}

/// `host` without its port; brackets of an IPv6 literal kept.
fn host_name(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.find(']').map_or(authority, |i| &authority[..=i]);
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(name, _)| name)
}

fn has_port(authority: &str) -> bool {
    host_name(authority).len() != authority.len()
}

/// The authority of a URL (`http://h:1/x` gives `h:1`).
pub fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
}

/// The hosts a scheduler bound to `bound` and reached as `advertised` answers
/// to, plus the operator's extra names.
pub fn allowed_hosts(
    advertised: &str,
    bound: std::net::SocketAddr,
    extra: &[String],
) -> Vec<String> {
    let mut hosts = vec![authority(advertised).to_string()];
    if !bound.ip().is_unspecified() {
        hosts.push(bound.to_string());
    }
    // A wildcard bind listens on loopback too; a page must be served from
    // these names to send them, so they cannot be rebound.
    if bound.ip().is_loopback() || bound.ip().is_unspecified() {
        hosts.push(format!("localhost:{}", bound.port()));
        hosts.push(format!("127.0.0.1:{}", bound.port()));
        hosts.push(format!("[::1]:{}", bound.port()));
    }
    hosts.extend(extra.iter().cloned());
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_exactly_or_by_name_without_port() {
        let bound = "127.0.0.1:7000".parse().expect("addr");
        let access = Access::new(
            None,
            allowed_hosts(
                "http://mmm.example:7000",
                bound,
                &["Proxy.Example".to_string()],
            ),
        );
        for ok in [
            "mmm.example:7000",
            "MMM.example:7000",
            "127.0.0.1:7000",
            "localhost:7000",
            "proxy.example",
            "proxy.example:443",
        ] {
            assert!(access.host_allowed(ok), "{ok}");
        }
        for refused in [
            "evil.example:7000",
            "mmm.example:7001",
            "127.0.0.1:7001",
            "",
            "mmm.example.evil:7000",
        ] {
            assert!(!access.host_allowed(refused), "{refused}");
        }
        assert_eq!(authority("https://u:p@h:1/x?y"), "h:1");
        assert_eq!(host_name("[::1]:7000"), "[::1]");
    }

    #[test]
    fn a_rotated_token_is_used_without_a_restart() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let file = TokenFile::open(&path).expect("open");
        assert_eq!(&*file.token(), "first");
        // A different length changes the stamp even within one mtime tick.
        std::fs::write(&path, "second-token\n").expect("write");
        assert_eq!(&*file.token(), "second-token");
        // A file turned world-readable is not trusted: the last token stays.
        std::fs::write(&path, "third\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(&*file.token(), "second-token");
    }
}
