//! The Mesos fetcher, for HTTP URIs: downloads each CommandInfo.URI into the
//! sandbox, sets the run bit, or unpacks archives.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mesos_proto::v1::command_info::Uri;
use thiserror::Error;

/// Why a URI could not be fetched.
#[derive(Debug, Error)]
pub enum FetchError {
    /// Only http:// URIs are fetched.
    #[error("cannot fetch '{uri}': mesos-sim fetches only http:// URIs")]
    UnsupportedScheme { uri: String },
    /// The output file name would leave the sandbox.
    #[error(
        "cannot fetch '{uri}': output file '{name}' is not a plain file name inside the sandbox"
    )]
    BadOutputName { uri: String, name: String },
    /// The download failed or the server said no.
    #[error("failed to download '{uri}': {reason}")]
    Download { uri: String, reason: String },
    /// Writing into the sandbox failed.
    #[error("failed to write '{path}' while fetching '{uri}': {source}")]
    Write {
        uri: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The archive could not be unpacked.
    #[error("failed to extract '{path}' fetched from '{uri}': {source}")]
    Extract {
        uri: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A fault armed on purpose.
    #[error("failed to fetch '{uri}': fetch failure injected by the simulator")]
    Injected { uri: String },
}

/// Fetches one URI into `sandbox`, as the Mesos fetcher does.
pub async fn fetch(
    client: &reqwest::Client,
    uri: &Uri,
    sandbox: &Path,
) -> Result<PathBuf, FetchError> {
    let value = uri.value.clone();
    if !value.starts_with("http://") {
        return Err(FetchError::UnsupportedScheme { uri: value });
    }
    let name = match &uri.output_file {
        Some(name) => name.clone(),
        None => value
            .split(['?', '#'])
            .next()
            .and_then(|p| p.rsplit('/').next())
            .unwrap_or_default()
            .to_owned(),
    };
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(FetchError::BadOutputName { uri: value, name });
    }
    let response = client
        .get(&value)
        .send()
        .await
        .map_err(|e| FetchError::Download {
            uri: value.clone(),
            reason: e.to_string(),
        })?;
    if !response.status().is_success() {
        return Err(FetchError::Download {
            uri: value.clone(),
            reason: format!("HTTP status {}", response.status()),
        });
    }
    let body = response.bytes().await.map_err(|e| FetchError::Download {
        uri: value.clone(),
        reason: e.to_string(),
    })?;
    let path = sandbox.join(&name);
    let write_err = |source| FetchError::Write {
        uri: value.clone(),
        path: path.clone(),
        source,
    };
    tokio::fs::write(&path, &body).await.map_err(write_err)?;
    if uri.executable == Some(true) {
        let perms = std::fs::Permissions::from_mode(0o755);
        tokio::fs::set_permissions(&path, perms)
            .await
            .map_err(write_err)?;
        return Ok(path);
    }
    // `extract` defaults to true.
    if uri.extract != Some(false) && is_tarball(&name) {
        let archive = path.clone();
        let dest = sandbox.to_path_buf();
        let result = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&archive)?;
            if archive.extension().is_some_and(|e| e == "tar") {
                tar::Archive::new(file).unpack(&dest)
            } else {
                tar::Archive::new(flate2::read::GzDecoder::new(file)).unpack(&dest)
            }
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        result.map_err(|source| FetchError::Extract {
            uri: value.clone(),
            path: path.clone(),
            source,
        })?;
    }
    Ok(path)
}

fn is_tarball(name: &str) -> bool {
    name.ends_with(".tar.gz") || name.ends_with(".tgz") || name.ends_with(".tar")
}
