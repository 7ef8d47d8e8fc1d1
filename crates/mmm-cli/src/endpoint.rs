//! Where requests go: the API base URL and the optional bearer token.

use std::path::{Path, PathBuf};

/// The environment variable naming the API base URL.
pub const API_ENV: &str = "MMM_API";
/// The environment variable holding the API token itself.
pub const TOKEN_ENV: &str = "MMM_API_TOKEN";

/// A problem with the command line or environment; nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// Neither `--api` nor `MMM_API`.
    #[error(
        "no API URL: pass --api URL or set {API_ENV} (for example {API_ENV}=http://127.0.0.1:7000/api)"
    )]
    NoApi,
    /// A URL that is not http(s)://host[:port][/path].
    #[error("invalid API URL {url:?} ({source_name}): {problem}")]
    BadApi {
        /// The value as given.
        url: String,
        /// "--api" or "MMM_API".
        source_name: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The token file could not be read.
    #[error("cannot read the token file {}: {source}", path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The token file or variable holds nothing.
    #[error("the API token from {0} is empty")]
    EmptyToken(String),
}

/// The normalised API base, without a trailing slash, e.g.
/// `http://127.0.0.1:7000/api`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiBase(String);

impl ApiBase {
    /// The URL of one endpoint below the base, e.g. `status`.
    pub fn url(&self, endpoint: &str) -> String {
        format!("{}/{endpoint}", self.0)
    }
}

/// Picks the base from `--api`, else `MMM_API`.
pub fn resolve_api(flag: Option<&str>, env: Option<&str>) -> Result<ApiBase, UsageError> {
    let (raw, source_name) = match (flag, env) {
        (Some(flag), _) => (flag, "--api"),
        (None, Some(env)) if !env.trim().is_empty() => (env, API_ENV),
        _ => return Err(UsageError::NoApi),
    };
    normalise(raw.trim()).map_err(|problem| UsageError::BadApi {
        url: raw.to_string(),
        source_name,
        problem,
    })
}

fn normalise(raw: &str) -> Result<ApiBase, String> {
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("http://{raw}")
    };
    let (scheme, rest) = with_scheme
        .split_once("://")
        .ok_or_else(|| "expected scheme://host".to_string())?;
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "only http:// and https:// are supported, got {scheme}://"
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err("no host".to_string());
    }
    if authority.contains(['?', '#', ' ', '@']) {
        return Err("the host part has a character a host cannot have".to_string());
    }
    if path.contains(['?', '#']) {
        return Err("a query or fragment cannot be part of the base URL".to_string());
    }
    let path = path.trim_end_matches('/');
    // The original's MMM_API ended in /api; a bare host:port means the same.
    let path = if path.is_empty() { "/api" } else { path };
    Ok(ApiBase(format!("{scheme}://{authority}{path}")))
}

/// The token from `--token-file`, else `MMM_API_TOKEN`, if any.
pub fn resolve_token(file: Option<&Path>, env: Option<&str>) -> Result<Option<String>, UsageError> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| UsageError::TokenFile {
            path: path.to_path_buf(),
            source,
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(UsageError::EmptyToken(path.display().to_string()));
        }
        return Ok(Some(token.to_string()));
    }
    match env {
        Some(token) if token.trim().is_empty() => Err(UsageError::EmptyToken(TOKEN_ENV.into())),
        Some(token) => Ok(Some(token.trim().to_string())),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(flag: Option<&str>, env: Option<&str>) -> String {
        resolve_api(flag, env).expect("valid").url("status")
    }

    #[test]
    fn flag_wins_over_environment() {
        assert_eq!(
            base(Some("http://a:1/api"), Some("http://b:2/api")),
            "http://a:1/api/status"
        );
        assert_eq!(base(None, Some("http://b:2/api/")), "http://b:2/api/status");
    }

    #[test]
    fn bare_host_gets_scheme_and_api_path() {
        assert_eq!(
            base(Some("127.0.0.1:7000"), None),
            "http://127.0.0.1:7000/api/status"
        );
        assert_eq!(
            base(Some("http://h:7000/"), None),
            "http://h:7000/api/status"
        );
        assert_eq!(
            base(Some("http://h/mmm/api"), None),
            "http://h/mmm/api/status"
        );
    }

    #[test]
    fn missing_api_names_both_ways() {
        let text = resolve_api(None, None).expect_err("no api").to_string();
        assert!(text.contains("--api") && text.contains("MMM_API"), "{text}");
        assert!(resolve_api(None, Some("  ")).is_err());
    }

    #[test]
    fn bad_urls_name_the_value_and_where_it_came_from() {
        let text = resolve_api(None, Some("ftp://h/api"))
            .expect_err("ftp")
            .to_string();
        assert!(
            text.contains("ftp://h/api") && text.contains("MMM_API"),
            "{text}"
        );
        assert_eq!(
            base(Some("https://h:7000"), None),
            "https://h:7000/api/status"
        );
        let text = resolve_api(Some("http:///api"), None)
            .expect_err("no host")
            .to_string();
        assert!(text.contains("--api") && text.contains("no host"), "{text}");
        assert!(resolve_api(Some("http://h/api?x=1"), None).is_err());
    }

    #[test]
    fn token_file_is_trimmed_and_must_not_be_empty() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").expect("write");
        assert_eq!(
            resolve_token(Some(&path), Some("other")).expect("readable"),
            Some("s3cret".to_string())
        );
        std::fs::write(&path, "\n").expect("write");
        let text = resolve_token(Some(&path), None)
            .expect_err("empty")
            .to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        let missing = dir.path().join("missing");
        let text = resolve_token(Some(&missing), None)
            .expect_err("missing")
            .to_string();
        assert!(text.contains("missing"), "{text}");
        assert_eq!(resolve_token(None, None).expect("none"), None);
        assert_eq!(
            resolve_token(None, Some("t")).expect("env"),
            Some("t".to_string())
        );
    }
}
