//! Where the scheduler's state document lives between runs: a local file
//! (the default) or one ZooKeeper znode.
//!
//! The store deals in bytes; [`crate::state`] knows what they mean. Both
//! kinds hold an exclusive lock for as long as the scheduler runs, so that a
//! second scheduler started on the same state refuses to start instead of
//! launching duplicates of every task.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;
use zookeeper_client as zk;

/// How long to wait for ZooKeeper before giving up at start.
const ZK_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Short sessions let a restarted scheduler take the lock over soon after a
/// crash of the previous one (the old lock znode lives until its session expires).
const ZK_SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the state could not be read, written or locked.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot read state file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write state file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot open lock file {path}: {source}")]
    LockOpen { path: PathBuf, source: io::Error },
    #[error(
        "state {location} is locked by another running scheduler (lock {lock}); stop it first"
    )]
    Locked { location: String, lock: String },
    #[error("invalid ZooKeeper storage address {spec:?}: {reason}")]
    BadZkAddress { spec: String, reason: String },
    #[error("ZooKeeper {hosts} unreachable: {reason}")]
    ZkConnect { hosts: String, reason: String },
    #[error("ZooKeeper operation {op} on {path} failed: {source}")]
    Zk {
        op: &'static str,
        path: String,
        source: zk::Error,
    },
    #[error("state znode {path} was changed by another writer (expected version {expected})")]
    ZkConflict { path: String, expected: i32 },
    #[error("state store task failed: {0}")]
    Join(String),
}

/// The state store in use.
#[derive(Debug)]
pub enum Store {
    File(FileStore),
    Zk(ZkStore),
}

impl Store {
    /// Opens the store named by `spec`: `zk://hosts/path` or a file path, and locks it.
    pub async fn open(spec: &str) -> Result<Self, StoreError> {
        if let Some(rest) = spec.strip_prefix("zk://") {
            let (hosts, path) = split_zk_address(spec, rest)?;
            Ok(Store::Zk(ZkStore::open(&hosts, &path).await?))
        } else {
            let path = PathBuf::from(spec);
            tokio::task::spawn_blocking(move || FileStore::open(&path))
                .await
                .map_err(|e| StoreError::Join(e.to_string()))?
                .map(Store::File)
        }
    }

    /// Opens the store the validated configuration names; on ZooKeeper,
    /// waits as a standby for as long as another scheduler holds the lock,
    /// telling `standby` where that leader's API is. `holder` is what this
    /// scheduler leaves in the lock for standbys to read: its API's URL.
    /// `zk_auth` is the `user:password` of ZooKeeper digest authentication.
    pub async fn open_spec_or_stand_by(
        spec: &mmm_core::config::StorageSpec,
        zk_auth: Option<&str>,
        holder: &str,
        standby: &tokio::sync::watch::Sender<Option<String>>,
    ) -> Result<Self, StoreError> {
        match spec {
            mmm_core::config::StorageSpec::ZooKeeper { hosts, path } => Ok(Store::Zk(
                ZkStore::open_as(&hosts.join(","), path, zk_auth, holder, Some(standby)).await?,
            )),
            other => Self::open_spec(other, zk_auth).await,
        }
    }

    /// Opens the store the validated configuration names; `zk_auth` is the
    /// `user:password` of ZooKeeper digest authentication.
    pub async fn open_spec(
        spec: &mmm_core::config::StorageSpec,
        zk_auth: Option<&str>,
    ) -> Result<Self, StoreError> {
        match spec {
            mmm_core::config::StorageSpec::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || FileStore::open(&path))
                    .await
                    .map_err(|e| StoreError::Join(e.to_string()))?
                    .map(Store::File)
            }
            mmm_core::config::StorageSpec::ZooKeeper { hosts, path } => Ok(Store::Zk(
                ZkStore::open_with_auth(&hosts.join(","), path, zk_auth).await?,
            )),
        }
    }

    /// The stored document; `None` on a fresh start (nothing stored yet).
    pub async fn load(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Store::File(f) => {
                let path = f.path.clone();
                tokio::task::spawn_blocking(move || FileStore::read(&path))
                    .await
                    .map_err(|e| StoreError::Join(e.to_string()))?
            }
            Store::Zk(z) => z.load().await,
        }
    }

    /// Replaces the stored document; returns once it is durable.
    pub async fn save(&mut self, data: Vec<u8>) -> Result<(), StoreError> {
        match self {
            Store::File(f) => {
                let path = f.path.clone();
                tokio::task::spawn_blocking(move || FileStore::write_atomically(&path, &data))
                    .await
                    .map_err(|e| StoreError::Join(e.to_string()))?
            }
            Store::Zk(z) => z.save(&data).await,
        }
    }

    /// Resolves when the store's lock is lost for good (a ZooKeeper session
    /// that expired: its ephemeral lock znode is gone, and another scheduler
    /// may take over). A file lock is never lost while the process lives.
    pub fn lock_lost(&self) -> impl std::future::Future<Output = String> + Send + 'static {
        let watcher = match self {
            Store::File(_) => None,
            Store::Zk(z) => Some((z.client.state_watcher(), z.path.clone())),
        };
        async move {
            let Some((mut watcher, path)) = watcher else {
                return std::future::pending().await;
            };
            loop {
                let state = watcher.changed().await;
                if state.is_terminated() {
                    return format!(
                        "the ZooKeeper session holding the lock of {path} ended ({state:?})"
                    );
                }
            }
        }
    }

    /// Where the state lives, for messages.
    pub fn location(&self) -> String {
        match self {
            Store::File(f) => f.path.display().to_string(),
            Store::Zk(z) => format!("zk://{}{}", z.hosts, z.path),
        }
    }
}

/// `zk://h1:2181,h2:2181/some/path` -> ("h1:2181,h2:2181", "/some/path").
pub fn split_zk_address(spec: &str, rest: &str) -> Result<(String, String), StoreError> {
    let bad = |reason: &str| StoreError::BadZkAddress {
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    let slash = rest
        .find('/')
        .ok_or_else(|| bad("no znode path after the hosts"))?;
    let (hosts, path) = rest.split_at(slash);
    if hosts.is_empty() {
        return Err(bad("no hosts"));
    }
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        return Err(bad("the znode path must not be the root"));
    }
    if path.split('/').skip(1).any(str::is_empty) {
        return Err(bad("empty path segment"));
    }
    Ok((hosts.to_string(), path.to_string()))
}

/// A state file, written atomically, locked with `<path>.lock`.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    /// Held open for the lifetime of the store: the OS lock lasts as long as
    /// the descriptor, and goes away by itself when the process dies.
    _lock: File,
}

impl FileStore {
    /// Locks the state at `path`. The state file itself need not exist.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let lock_path = lock_path_of(path);
        if let Some(dir) = parent_dir(path) {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                fs::create_dir_all(dir).map_err(|source| StoreError::LockOpen {
                    path: lock_path.clone(),
                    source,
                })?;
            }
        }
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|source| StoreError::LockOpen {
                path: lock_path.clone(),
                source,
            })?;
        try_lock_exclusive(&lock).map_err(|e| match e {
            LockFailure::Held => StoreError::Locked {
                location: path.display().to_string(),
                lock: lock_path.display().to_string(),
            },
            LockFailure::Io(source) => StoreError::LockOpen {
                path: lock_path.clone(),
                source,
            },
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// The file's bytes; `None` when it does not exist.
    pub fn read(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
        match fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Temp file in the same directory, fsync, rename over, fsync the
    /// directory: after a crash the file holds either the old or the new
    /// document, never a mix.
    pub fn write_atomically(path: &Path, data: &[u8]) -> Result<(), StoreError> {
        let err = |source| StoreError::Write {
            path: path.to_path_buf(),
            source,
        };
        let dir = parent_dir(path).unwrap_or(Path::new("."));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "state".to_string());
        // A name nobody can guess ahead, created only if it does not exist
        // (never through a planted symlink), readable by the owner only: the
        // state holds the Kafka overrides.
        let tmp = dir.join(format!(".{name}.tmp-{:032x}", rand::random::<u128>()));
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, path)?;
            File::open(dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(err)
    }
}

fn parent_dir(path: &Path) -> Option<&Path> {
    path.parent()
}

/// `<path>.lock`, beside the state file.
pub fn lock_path_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

enum LockFailure {
    Held,
    Io(io::Error),
}

// std's advisory locks are flock(2) on Unix.
fn try_lock_exclusive(file: &File) -> Result<(), LockFailure> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(fs::TryLockError::WouldBlock) => Err(LockFailure::Held),
        Err(fs::TryLockError::Error(e)) => Err(LockFailure::Io(e)),
    }
}

/// The state in one znode; the lock is an ephemeral child `lock` of it.
pub struct ZkStore {
    client: zk::Client,
    hosts: String,
    path: String,
    /// The version read or written last; writes are conditional on it so
    /// that two writers never overwrite each other silently.
    version: Option<i32>,
}

impl std::fmt::Debug for ZkStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZkStore")
            .field("hosts", &self.hosts)
            .field("path", &self.path)
            .field("version", &self.version)
            .finish()
    }
}

impl ZkStore {
    /// Connects, creates the state znode and its parents, and takes the lock.
    pub async fn open(hosts: &str, path: &str) -> Result<Self, StoreError> {
        Self::open_with_auth(hosts, path, None).await
    }

    /// [`ZkStore::open`] with digest authentication (`user:password`): the
    /// znodes this scheduler creates are then readable and writable by that
    /// identity only.
    pub async fn open_with_auth(
        hosts: &str,
        path: &str,
        auth: Option<&str>,
    ) -> Result<Self, StoreError> {
        let holder = format!("pid {}", std::process::id());
        Self::open_as(hosts, path, auth, &holder, None).await
    }

    /// Like [`ZkStore::open_with_auth`], leaving `holder` in the lock. With
    /// `standby`, a lock held by another scheduler is waited for indefinitely
    /// (its holder is sent to `standby`) and taken as soon as its session
    /// ends; without, the wait ends after two session timeouts.
    pub async fn open_as(
        hosts: &str,
        path: &str,
        auth: Option<&str>,
        holder: &str,
        standby: Option<&tokio::sync::watch::Sender<Option<String>>>,
    ) -> Result<Self, StoreError> {
        let mut connector = zk::Client::connector()
            .with_session_timeout(ZK_SESSION_TIMEOUT)
            .with_fail_eagerly();
        if let Some(auth) = auth {
            connector = connector.with_auth("digest", auth.as_bytes());
        }
        let client = tokio::time::timeout(ZK_CONNECT_TIMEOUT, connector.connect(hosts))
            .await
            .map_err(|_| StoreError::ZkConnect {
                hosts: hosts.to_string(),
                reason: format!("no session within {ZK_CONNECT_TIMEOUT:?}"),
            })?
            .map_err(|e| StoreError::ZkConnect {
                hosts: hosts.to_string(),
                reason: e.to_string(),
            })?;
        let zk_err = |op, source| StoreError::Zk {
            op,
            path: path.to_string(),
            source,
        };
        let acls = if auth.is_some() {
            zk::Acls::creator_all()
        } else {
            zk::Acls::anyone_all()
        };
        let persistent = zk::CreateMode::Persistent.with_acls(acls);
        client
            .mkdir(path, &persistent)
            .await
            .map_err(|e| zk_err("mkdir", e))?;
        let lock = format!("{path}/lock");
        let ephemeral = zk::CreateMode::Ephemeral.with_acls(acls);
        // A crashed scheduler's lock lives until its session expires: wait
        // that long before deciding that another scheduler is running.
        let deadline = tokio::time::Instant::now() + ZK_SESSION_TIMEOUT * 2;
        loop {
            match client.create(&lock, holder.as_bytes(), &ephemeral).await {
                Ok(_) => break,
                Err(zk::Error::NodeExists) if standby.is_some() => {
                    let leader = match client.get_data(&lock).await {
                        Ok((data, _)) => String::from_utf8_lossy(&data).into_owned(),
                        Err(zk::Error::NoNode) => continue,
                        Err(e) => return Err(zk_err("get_data lock", e)),
                    };
                    if let Some(tx) = standby {
                        if tx.borrow().as_deref() != Some(leader.as_str()) {
                            tracing::info!(lock = %lock, leader = %leader, "standby: another scheduler leads; taking over when its ZooKeeper session ends");
                        }
                        tx.send_replace(Some(leader));
                    }
                    match client.check_and_watch_stat(&lock).await {
                        Ok((None, _)) => {}
                        Ok((Some(_), watcher)) => {
                            watcher.changed().await;
                        }
                        Err(e) => return Err(zk_err("watch lock", e)),
                    }
                }
                Err(zk::Error::NodeExists) if tokio::time::Instant::now() < deadline => {
                    tracing::info!(lock = %lock, "state lock held; waiting for it to be released or expire");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(zk::Error::NodeExists) => {
                    return Err(StoreError::Locked {
                        location: format!("zk://{hosts}{path}"),
                        lock,
                    })
                }
                Err(e) => return Err(zk_err("create lock", e)),
            }
        }
        Ok(Self {
            client,
            hosts: hosts.to_string(),
            path: path.to_string(),
            version: None,
        })
    }

    async fn load(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        match self.client.get_data(&self.path).await {
            Ok((data, stat)) => {
                self.version = Some(stat.version);
                Ok(if data.is_empty() { None } else { Some(data) })
            }
            Err(zk::Error::NoNode) => {
                self.version = None;
                Ok(None)
            }
            Err(source) => Err(StoreError::Zk {
                op: "get_data",
                path: self.path.clone(),
                source,
            }),
        }
    }

    async fn save(&mut self, data: &[u8]) -> Result<(), StoreError> {
        match self.client.set_data(&self.path, data, self.version).await {
            Ok(stat) => {
                self.version = Some(stat.version);
                Ok(())
            }
            Err(zk::Error::BadVersion) => Err(StoreError::ZkConflict {
                path: self.path.clone(),
                expected: self.version.unwrap_or(-1),
            }),
            Err(source) => Err(StoreError::Zk {
                op: "set_data",
                path: self.path.clone(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_a_fresh_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        assert!(FileStore::read(&path).expect("read").is_none());
    }

    #[test]
    fn atomic_write_replaces_the_whole_file_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        FileStore::write_atomically(&path, b"first document, rather long").expect("write 1");
        FileStore::write_atomically(&path, b"second").expect("write 2");
        assert_eq!(fs::read(&path).expect("read"), b"second");
        let names: Vec<String> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["state.json".to_string()]);
    }

    #[test]
    fn write_into_a_missing_directory_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("no-such-dir").join("state.json");
        let err = FileStore::write_atomically(&path, b"x").expect_err("must fail");
        assert!(err.to_string().contains("state.json"), "{err}");
    }

    #[test]
    fn unreadable_state_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A directory where the file should be: reading it fails.
        let path = dir.path().join("state.json");
        fs::create_dir(&path).expect("mkdir");
        let err = FileStore::read(&path).expect_err("must fail");
        assert!(err.to_string().contains("state.json"), "{err}");
    }

    #[test]
    fn second_open_of_the_same_state_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        let first = FileStore::open(&path).expect("first lock");
        let err = FileStore::open(&path).expect_err("second must be refused");
        let msg = err.to_string();
        assert!(msg.contains("locked by another running scheduler"), "{msg}");
        assert!(msg.contains("state.json.lock"), "{msg}");
        drop(first);
        FileStore::open(&path).expect("lock free again");
    }

    #[test]
    fn open_creates_the_state_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("state.json");
        let _s = FileStore::open(&path).expect("open");
        assert!(lock_path_of(&path).exists());
    }

    #[test]
    fn zk_addresses_split_into_hosts_and_path() {
        let spec = "zk://h1:2181,h2:2181/mmm/state/";
        let (hosts, path) = split_zk_address(spec, &spec[5..]).expect("valid");
        assert_eq!(hosts, "h1:2181,h2:2181");
        assert_eq!(path, "/mmm/state");
        for bad in ["zk://h1:2181", "zk:///mmm", "zk://h:1/", "zk://h:1/a//b"] {
            let err = split_zk_address(bad, &bad[5..]).expect_err(bad);
            assert!(err.to_string().contains(bad), "{err}");
        }
    }
}
