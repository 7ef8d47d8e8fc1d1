//! Which master to talk to: the `[mesos].master` setting parsed, and the
//! leader found in ZooKeeper for `zk://` addresses.

use std::time::Duration;

use mmm_core::config::MasterSpec;
use reqwest::Url;
use serde::Deserialize;
use thiserror::Error;
use tokio::sync::watch;
use zookeeper_client as zk;

/// Where the masters are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterSource {
    /// One or more masters to try in order; a non-leader redirects to the leader.
    Direct(Vec<Url>),
    /// Masters elected in ZooKeeper under `path`, reached over https when
    /// `tls` (`[mesos] master_scheme = "https"`).
    ZooKeeper {
        hosts: String,
        path: String,
        tls: bool,
    },
}

/// A `master` setting that cannot be understood.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid Mesos master address {spec:?}: {reason}")]
pub struct MasterSpecError {
    pub spec: String,
    pub reason: String,
}

impl MasterSource {
    /// The masters named by the validated configuration; `master_tls` is
    /// `[mesos] master_scheme = "https"` (already applied to direct masters).
    pub fn from_spec(spec: &MasterSpec, master_tls: bool) -> Result<Self, MasterSpecError> {
        match spec {
            MasterSpec::Direct(endpoints) => endpoints
                .iter()
                .map(|e| {
                    let base = e.base_url();
                    Url::parse(&base).map_err(|err| MasterSpecError {
                        spec: base.clone(),
                        reason: err.to_string(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(MasterSource::Direct),
            MasterSpec::ZooKeeper { hosts, path } => Ok(MasterSource::ZooKeeper {
                hosts: hosts.join(","),
                path: path.clone(),
                tls: master_tls,
            }),
        }
    }
}

/// The part of a master's `json.info_*` znode that locates it.
#[derive(Debug, Deserialize)]
struct MasterInfoJson {
    address: Option<AddressJson>,
    hostname: Option<String>,
    port: Option<u16>,
}

#[derive(Debug, Deserialize)]
struct AddressJson {
    ip: Option<String>,
    hostname: Option<String>,
    port: u16,
}

/// Why a master's znode could not be read as a MasterInfo.
#[derive(Debug, Error)]
pub enum DetectError {
    #[error("ZooKeeper {hosts} unreachable: {reason}")]
    Connect { hosts: String, reason: String },
    #[error("ZooKeeper {op} on {path} failed: {source}")]
    Zk {
        op: &'static str,
        path: String,
        source: zk::Error,
    },
    #[error("master znode {path} holds no usable MasterInfo JSON: {reason}")]
    BadInfo { path: String, reason: String },
}

/// The leader's URL from the JSON of its znode. Over https the host name is
/// used when the master gives one, since certificates name hosts; over http
/// the IP, as Mesos's own library does.
pub fn leader_url_from_json(path: &str, data: &[u8], tls: bool) -> Result<Url, DetectError> {
    let bad = |reason: String| DetectError::BadInfo {
        path: path.to_string(),
        reason,
    };
    let info: MasterInfoJson = serde_json::from_slice(data).map_err(|e| bad(e.to_string()))?;
    let (host, port) = match info.address {
        Some(a) => {
            let host = if tls {
                a.hostname.or(a.ip)
            } else {
                a.ip.or(a.hostname)
            };
            (
                host.ok_or_else(|| bad("address has neither ip nor hostname".into()))?,
                a.port,
            )
        }
        None => (
            info.hostname
                .ok_or_else(|| bad("no address and no hostname".into()))?,
            info.port
                .ok_or_else(|| bad("no address and no port".into()))?,
        ),
    };
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    let scheme = if tls { "https" } else { "http" };
    Url::parse(&format!("{scheme}://{host}:{port}")).map_err(|e| bad(e.to_string()))
}

/// The lowest-numbered `json.info_*` child, the leader by Mesos's convention.
pub fn leader_znode(children: &[String]) -> Option<&str> {
    children
        .iter()
        .filter_map(|c| {
            let seq = c.strip_prefix("json.info_")?;
            seq.parse::<u64>().ok().map(|n| (n, c.as_str()))
        })
        .min_by_key(|(n, _)| *n)
        .map(|(_, c)| c)
}

/// Follows the leader elected in ZooKeeper; publishes its URL (or `None`
/// while there is none) on a watch channel.
pub async fn spawn_zk_detector(
    hosts: String,
    path: String,
    tls: bool,
) -> Result<watch::Receiver<Option<Url>>, DetectError> {
    let client = connect(&hosts).await?;
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let mut client = client;
        loop {
            match follow_leader(&client, &path, tls, &tx).await {
                Ok(()) => return, // nobody listens any more
                Err(e) => {
                    tracing::warn!(error = %e, "ZooKeeper master detection interrupted; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if tx.is_closed() {
                        return;
                    }
                    match connect(&hosts).await {
                        Ok(c) => client = c,
                        Err(e) => tracing::warn!(error = %e, "ZooKeeper reconnect failed"),
                    }
                }
            }
        }
    });
    Ok(rx)
}

async fn connect(hosts: &str) -> Result<zk::Client, DetectError> {
    let attempt = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .with_fail_eagerly()
        .connect(hosts);
    tokio::time::timeout(Duration::from_secs(15), attempt)
        .await
        .map_err(|_| DetectError::Connect {
            hosts: hosts.to_string(),
            reason: "timed out".into(),
        })?
        .map_err(|e| DetectError::Connect {
            hosts: hosts.to_string(),
            reason: e.to_string(),
        })
}

async fn follow_leader(
    client: &zk::Client,
    path: &str,
    tls: bool,
    tx: &watch::Sender<Option<Url>>,
) -> Result<(), DetectError> {
    loop {
        let (children, watcher) = match client.list_and_watch_children(path).await {
            Ok(x) => x,
            Err(zk::Error::NoNode) => {
                // No master has registered yet: wait for the path to appear.
                tx.send_if_modified(|cur| cur.take().is_some());
                let (stat, exists_watcher) =
                    client
                        .check_and_watch_stat(path)
                        .await
                        .map_err(|source| DetectError::Zk {
                            op: "exists",
                            path: path.to_string(),
                            source,
                        })?;
                if stat.is_none() {
                    exists_watcher.changed().await;
                }
                continue;
            }
            Err(source) => {
                return Err(DetectError::Zk {
                    op: "get_children",
                    path: path.to_string(),
                    source,
                })
            }
        };
        let leader = match leader_znode(&children) {
            None => None,
            Some(name) => {
                let znode = format!("{path}/{name}");
                match client.get_data(&znode).await {
                    Ok((data, _)) => match leader_url_from_json(&znode, &data, tls) {
                        Ok(url) => Some(url),
                        Err(e) => {
                            tracing::warn!(error = %e, "ignoring the leader's znode");
                            None
                        }
                    },
                    // Gone between the listing and the read: the watch fires next.
                    Err(zk::Error::NoNode) => None,
                    Err(source) => {
                        return Err(DetectError::Zk {
                            op: "get_data",
                            path: znode,
                            source,
                        })
                    }
                }
            }
        };
        let changed = tx.send_if_modified(|cur| {
            if *cur != leader {
                *cur = leader.clone();
                true
            } else {
                false
            }
        });
        if changed {
            match &leader {
                Some(url) => tracing::info!(leader = %url, "Mesos leader detected in ZooKeeper"),
                None => tracing::warn!(path, "no Mesos leader in ZooKeeper"),
            }
        }
        if tx.is_closed() {
            return Ok(());
        }
        let event = watcher.changed().await;
        if event.session_state.is_terminated() {
            return Err(DetectError::Zk {
                op: "watch",
                path: path.to_string(),
                source: zk::Error::SessionExpired,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(spec: &str) -> MasterSource {
        MasterSource::from_spec(&MasterSpec::parse(spec).expect("valid spec"), false)
            .expect("valid")
    }

    #[test]
    fn direct_masters_become_base_urls() {
        match source("127.0.0.1:5050,http://m1:5051,https://m2:443") {
            MasterSource::Direct(u) => {
                let u: Vec<&str> = u.iter().map(Url::as_str).collect();
                assert_eq!(
                    u,
                    ["http://127.0.0.1:5050/", "http://m1:5051/", "https://m2/"]
                );
            }
            other => panic!("expected direct masters, got {other:?}"),
        }
    }

    #[test]
    fn zookeeper_masters_keep_hosts_and_path() {
        assert_eq!(
            source("zk://z1:2181,z2:2181/mesos"),
            MasterSource::ZooKeeper {
                hosts: "z1:2181,z2:2181".into(),
                path: "/mesos".into(),
                tls: false,
            }
        );
    }

    #[test]
    fn leader_is_the_lowest_sequence_number() {
        let children: Vec<String> = [
            "json.info_0000000012",
            "log_replicas",
            "json.info_0000000003",
            "info_0000000001",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(leader_znode(&children), Some("json.info_0000000003"));
        assert_eq!(leader_znode(&[]), None);
    }

    #[test]
    fn master_info_json_gives_the_url() {
        let json = br#"{"address":{"hostname":"m","ip":"127.0.0.1","port":5051},"hostname":"m","id":"x","ip":16777343,"port":5051,"pid":"master@127.0.0.1:5051"}"#;
        let url = leader_url_from_json("/mesos/json.info_1", json, false).expect("valid");
        assert_eq!(url.as_str(), "http://127.0.0.1:5051/");
        let url = leader_url_from_json("/mesos/json.info_1", json, true).expect("valid");
        assert_eq!(url.as_str(), "https://m:5051/", "https names the host");
        let err = leader_url_from_json("/mesos/json.info_1", b"not json", false).expect_err("bad");
        assert!(err.to_string().contains("/mesos/json.info_1"), "{err}");
    }
}
