//! Reading a file that holds a secret (the API token, the Mesos secret, the
//! ZooKeeper credentials): refused when group or others may read it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A secret file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("cannot read the {what} {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the {what} {} has mode {mode:04o}: group and others may read it; \
         make it readable by its owner only (chmod 600)", path.display()
    )]
    TooOpen {
        what: &'static str,
        path: PathBuf,
        mode: u32,
    },
    #[error("the {what} {} is empty", path.display())]
    Empty { what: &'static str, path: PathBuf },
}

/// The file's text without its trailing line break, after checking that only
/// its owner may read it.
pub fn read(path: &Path, what: &'static str) -> Result<String, SecretFileError> {
    let read_error = |source| SecretFileError::Read {
        what,
        path: path.to_path_buf(),
        source,
    };
    let mode = std::fs::metadata(path)
        .map_err(read_error)?
        .permissions()
        .mode()
        & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretFileError::TooOpen {
            what,
            path: path.to_path_buf(),
            mode,
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    let secret = text.trim_end_matches(['\n', '\r']).to_string();
    if secret.trim().is_empty() {
        return Err(SecretFileError::Empty {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_others_may_read_is_refused_naming_it_and_its_mode() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret\n").expect("write");
        for mode in [0o644, 0o640, 0o604] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            let err = read(&path, "Mesos secret file")
                .expect_err("too open")
                .to_string();
            assert!(
                err.contains(&path.display().to_string()) && err.contains(&format!("{mode:04o}")),
                "{err}"
            );
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(read(&path, "Mesos secret file").expect("private"), "s3cret");
        std::fs::write(&path, "\n").expect("write");
        assert!(read(&path, "x")
            .expect_err("empty")
            .to_string()
            .contains("empty"));
    }
}
