//! The files served to executors from `[executor].dist_dir`, checked
//! against `MANIFEST.sha256` when there is one.
//!
//! Every served file is copied at start into a private directory (mode 0700)
//! and checked there, and requests are answered from that copy: a file
//! swapped in `dist_dir` afterwards is never served. The copy's files are
//! held open and the directory is removed at once, so a scheduler that is
//! killed leaves nothing behind in the temporary directory; requests reopen
//! the held files through `/proc/self/fd`. The executor's sha256 is
//! taken from the copy too, and its launch command checks the fetched file
//! against it before running it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use thiserror::Error;

/// The manifest's file name, in `sha256sum` format.
pub const MANIFEST: &str = "MANIFEST.sha256";

/// Why the dist directory cannot be served.
#[derive(Debug, Error)]
pub enum DistError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{manifest} line {line}: expected \"<sha256>  <file>\", got {text:?}")]
    BadLine {
        manifest: PathBuf,
        line: usize,
        text: String,
    },
    #[error("{manifest} line {line}: file name {name:?} is not a plain name inside the directory")]
    BadName {
        manifest: PathBuf,
        line: usize,
        name: String,
    },
    #[error("{file}: sha256 {actual} does not match {expected} in {manifest}")]
    Mismatch {
        file: PathBuf,
        manifest: PathBuf,
        expected: String,
        actual: String,
    },
}

/// Why a requested file is not served.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RefusedPath {
    #[error("path {0:?} leaves the dist directory")]
    Outside(String),
    #[error("no such file {0:?}")]
    NotFound(String),
}

/// The dist directory as verified at start.
#[derive(Debug, Clone)]
pub struct Dist {
    dir: PathBuf,
    /// The directory's canonical form, to catch symlinks that lead out.
    canonical: Option<PathBuf>,
    /// The files the manifest lists; `None` without a manifest.
    listed: Option<BTreeSet<String>>,
    /// The private copy served, and each file's sha256.
    copy: Arc<Copy>,
}

#[derive(Debug)]
struct Copy {
    /// Where each copied file is reopened.
    place: Place,
    sha256: BTreeMap<String, String>,
}

/// Where the private copy lives.
#[derive(Debug)]
enum Place {
    /// Nothing to serve.
    Nothing,
    /// The copied files, open, their directory already removed.
    Held(BTreeMap<String, fs::File>),
    /// Without `/proc/self/fd` the directory stays until the scheduler
    /// ends (and is left behind if it is killed).
    Directory(tempfile::TempDir),
}

/// Opens each copied file and removes the directory.
fn hold(private: tempfile::TempDir, names: &[String]) -> Result<Place, DistError> {
    if !Path::new(PROC_FD).is_dir() {
        return Ok(Place::Directory(private));
    }
    let mut held = BTreeMap::new();
    for name in names {
        let path = private.path().join(name);
        let file = fs::File::open(&path).map_err(|source| DistError::Read { path, source })?;
        held.insert(name.clone(), file);
    }
    let dir = private.path().to_path_buf();
    private
        .close()
        .map_err(|source| DistError::Read { path: dir, source })?;
    Ok(Place::Held(held))
}

/// Every open file of this process, reopenable by number (Linux).
const PROC_FD: &str = "/proc/self/fd";

impl Dist {
    /// Verifies `dir`'s manifest, if any. A missing directory is allowed
    /// (nothing is served), so that a scheduler can run without executors built.
    pub fn open(dir: &Path) -> Result<Self, DistError> {
        let canonical = fs::canonicalize(dir).ok();
        let mut dist = Self {
            dir: dir.to_path_buf(),
            canonical,
            listed: None,
            copy: Arc::new(Copy {
                place: Place::Nothing,
                sha256: BTreeMap::new(),
            }),
        };
        let manifest = dir.join(MANIFEST);
        let expected = match fs::read_to_string(&manifest) {
            Ok(text) => Some(parse_manifest(&manifest, &text)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(DistError::Read {
                    path: manifest,
                    source,
                })
            }
        };
        let names: Vec<String> = match &expected {
            Some(expected) => expected.keys().cloned().collect(),
            None => dist.walk(Path::new("")),
        };
        if names.is_empty() && expected.is_none() {
            return Ok(dist);
        }
        let private = tempfile::Builder::new()
            .prefix("mmm-dist-")
            .tempdir()
            .map_err(|source| DistError::Read {
                path: std::env::temp_dir(),
                source,
            })?;
        let mut sha256 = BTreeMap::new();
        for name in &names {
            let source = dir.join(name);
            let actual = copy_hashed(&source, &private.path().join(name))?;
            if let Some(hash) = expected.as_ref().and_then(|e| e.get(name)) {
                if !actual.eq_ignore_ascii_case(hash) {
                    return Err(DistError::Mismatch {
                        file: source,
                        manifest: manifest.clone(),
                        expected: hash.to_ascii_lowercase(),
                        actual,
                    });
                }
            }
            sha256.insert(name.clone(), actual);
        }
        dist.listed = expected.map(|e| e.into_keys().collect());
        dist.copy = Arc::new(Copy {
            place: hold(private, &names)?,
            sha256,
        });
        Ok(dist)
    }

    /// Every file below `rel` that [`Dist::resolve`] would serve.
    fn walk(&self, rel: &Path) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.dir.join(rel)) else {
            return Vec::new();
        };
        let mut names = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let rel = rel.join(entry.file_name());
            let Some(name) = rel.to_str().map(str::to_string) else {
                continue;
            };
            match entry.file_type() {
                Ok(t) if t.is_dir() => names.extend(self.walk(&rel)),
                Ok(_) if name != MANIFEST && self.resolve(&name).is_ok() => names.push(name),
                _ => {}
            }
        }
        names
    }

    /// The sha256 (hex) of a served file, from the private copy.
    pub fn sha256(&self, name: &str) -> Option<&str> {
        self.copy.sha256.get(name).map(String::as_str)
    }

    /// The private copy of the file `request` names, after the same checks
    /// as [`Dist::resolve`].
    pub fn served(&self, request: &str) -> Result<PathBuf, RefusedPath> {
        self.resolve(request)?;
        use std::os::fd::AsRawFd;
        if !self.copy.sha256.contains_key(request) {
            return Err(RefusedPath::NotFound(request.to_string()));
        }
        match &self.copy.place {
            Place::Held(files) => files
                .get(request)
                .map(|f| Path::new(PROC_FD).join(f.as_raw_fd().to_string()))
                .ok_or_else(|| RefusedPath::NotFound(request.to_string())),
            Place::Directory(dir) => Ok(dir.path().join(request)),
            Place::Nothing => Err(RefusedPath::NotFound(request.to_string())),
        }
    }

    /// The names of every file served, `executor` first when present: the
    /// manifest's list, or the directory's regular files without one.
    pub fn files(&self, executor: &str) -> Vec<String> {
        let mut names: Vec<String> = match &self.listed {
            Some(listed) => listed.iter().cloned().collect(),
            None => self
                .copy
                .sha256
                .keys()
                .filter(|n| !n.starts_with('.') && !n.contains('/'))
                .cloned()
                .collect(),
        };
        names.retain(|n| self.has(n));
        names.sort_by_key(|n| (n != executor, n.clone()));
        names
    }

    /// Whether the directory has `name` to serve.
    pub fn has(&self, name: &str) -> bool {
        self.resolve(name).is_ok()
    }

    /// The file `request` names, checked to be inside the directory (and in
    /// the manifest when there is one).
    pub fn resolve(&self, request: &str) -> Result<PathBuf, RefusedPath> {
        let rel = Path::new(request);
        if request.is_empty()
            || request.contains('\0')
            || request.contains('\\')
            || rel.is_absolute()
            || rel.components().any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(RefusedPath::Outside(request.to_string()));
        }
        if let Some(listed) = &self.listed {
            if !listed.contains(request) {
                return Err(RefusedPath::NotFound(request.to_string()));
            }
        }
        let path = self.dir.join(rel);
        let canonical =
            fs::canonicalize(&path).map_err(|_| RefusedPath::NotFound(request.to_string()))?;
        let root = self
            .canonical
            .as_ref()
            .ok_or_else(|| RefusedPath::NotFound(request.to_string()))?;
        if !canonical.starts_with(root) {
            return Err(RefusedPath::Outside(request.to_string()));
        }
        if !canonical.is_file() {
            return Err(RefusedPath::NotFound(request.to_string()));
        }
        Ok(canonical)
    }
}

/// The manifest's names and hashes, checked for shape.
fn parse_manifest(manifest: &Path, text: &str) -> Result<BTreeMap<String, String>, DistError> {
    let mut listed = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let bad_line = || DistError::BadLine {
            manifest: manifest.to_path_buf(),
            line: line_no,
            text: line.to_string(),
        };
        // sha256sum writes "<hex>  <name>" (text mode) or "<hex> *<name>" (binary).
        let (hash, rest) = line.split_once(' ').ok_or_else(bad_line)?;
        let name = rest
            .strip_prefix(' ')
            .or_else(|| rest.strip_prefix('*'))
            .ok_or_else(bad_line)?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) || name.is_empty() {
            return Err(bad_line());
        }
        let rel = Path::new(name);
        if rel.is_absolute() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(DistError::BadName {
                manifest: manifest.to_path_buf(),
                line: line_no,
                name: name.to_string(),
            });
        }
        listed.insert(name.to_string(), hash.to_ascii_lowercase());
    }
    Ok(listed)
}

/// Copies `from` to `to` (created, owner-only) and returns the sha256 of
/// the bytes written: what is checked is exactly what is served.
fn copy_hashed(from: &Path, to: &Path) -> Result<String, DistError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let read_err = |source| DistError::Read {
        path: from.to_path_buf(),
        source,
    };
    let write_err = |source| DistError::Read {
        path: to.to_path_buf(),
        source,
    };
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(write_err)?;
    }
    let mut input = fs::File::open(from).map_err(read_err)?;
    let mut output = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(write_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = input.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        output.write_all(&buf[..n]).map_err(write_err)?;
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    #[test]
    fn serves_plain_names_and_refuses_escapes() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("dist");
        fs::create_dir(&dir).expect("mkdir");
        fs::write(dir.join("mmm-executor"), b"bin").expect("write");
        fs::write(root.path().join("secret"), b"s").expect("write");
        std::os::unix::fs::symlink(root.path().join("secret"), dir.join("link")).expect("symlink");
        let dist = Dist::open(&dir).expect("open");
        assert!(dist
            .resolve("mmm-executor")
            .expect("served")
            .ends_with("mmm-executor"));
        for bad in [
            "../secret",
            "/etc/passwd",
            "a/../../secret",
            "./mmm-executor",
            "",
            "link",
            "..\\secret",
        ] {
            assert!(
                matches!(dist.resolve(bad), Err(RefusedPath::Outside(_))),
                "{bad:?}: {:?}",
                dist.resolve(bad)
            );
        }
        assert_eq!(
            dist.resolve("nope"),
            Err(RefusedPath::NotFound("nope".into()))
        );
        assert_eq!(dist.files("mmm-executor"), ["mmm-executor"]);
        fs::write(dir.join("a-log.toml"), b"l").expect("write");
        let dist = Dist::open(&dir).expect("open");
        assert_eq!(dist.files("mmm-executor"), ["mmm-executor", "a-log.toml"]);
    }

    #[test]
    fn files_are_served_from_the_copy_checked_at_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("mmm-executor"), b"bin").expect("write");
        fs::write(
            dir.path().join(MANIFEST),
            format!("{}  mmm-executor\n", sha(b"bin")),
        )
        .expect("write");
        let dist = Dist::open(dir.path()).expect("open");
        fs::write(dir.path().join("mmm-executor"), b"swapped").expect("write");
        let served = dist.served("mmm-executor").expect("served");
        assert_eq!(fs::read(&served).expect("read"), b"bin");
        assert_eq!(dist.sha256("mmm-executor"), Some(sha(b"bin").as_str()));
        assert!(!served.starts_with(dir.path()));
    }

    #[test]
    fn the_private_copy_leaves_no_directory_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("mmm-executor"), b"bin").expect("write");
        let dist = Dist::open(dir.path()).expect("open");
        let Place::Held(files) = &dist.copy.place else {
            panic!("the copy is still a directory a killed scheduler would leave behind");
        };
        assert_eq!(files.len(), 1);
        let served = dist.served("mmm-executor").expect("served");
        assert!(served.starts_with(PROC_FD), "{}", served.display());
        assert_eq!(fs::read(&served).expect("read"), b"bin");
        assert_eq!(fs::read(&served).expect("read twice"), b"bin");
    }

    #[test]
    fn manifest_lists_what_is_served_and_must_match() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("mmm-executor"), b"bin").expect("write");
        fs::write(dir.path().join("extra"), b"x").expect("write");
        fs::write(
            dir.path().join(MANIFEST),
            format!("{}  mmm-executor\n", sha(b"bin")),
        )
        .expect("write");
        let dist = Dist::open(dir.path()).expect("matching manifest");
        assert!(dist.has("mmm-executor"));
        assert_eq!(
            dist.resolve("extra"),
            Err(RefusedPath::NotFound("extra".into()))
        );

        fs::write(dir.path().join("mmm-executor"), b"tampered").expect("write");
        let err = Dist::open(dir.path()).expect_err("mismatch");
        let msg = err.to_string();
        assert!(
            msg.contains("mmm-executor") && msg.contains("does not match"),
            "{msg}"
        );
    }

    #[test]
    fn malformed_manifest_lines_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(MANIFEST), "nothex  file\n").expect("write");
        let msg = Dist::open(dir.path()).expect_err("bad").to_string();
        assert!(msg.contains("line 1"), "{msg}");
        fs::write(dir.path().join(MANIFEST), format!("{}  ../x\n", sha(b""))).expect("write");
        let msg = Dist::open(dir.path()).expect_err("bad").to_string();
        assert!(msg.contains("\"../x\""), "{msg}");
        fs::write(
            dir.path().join(MANIFEST),
            format!("{}  missing\n", sha(b"")),
        )
        .expect("write");
        let msg = Dist::open(dir.path()).expect_err("bad").to_string();
        assert!(msg.contains("missing"), "{msg}");
    }
}
