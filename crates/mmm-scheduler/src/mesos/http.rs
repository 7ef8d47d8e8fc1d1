//! The scheduler API's HTTP exchanges: SUBSCRIBE and the calls after it,
//! following a non-leader's redirect to the leader.

use std::time::Duration;

use mesos_proto::v1::scheduler as sched;
use mesos_proto::{Message, CONTENT_TYPE_PROTOBUF, STREAM_ID_HEADER};
use reqwest::{header, StatusCode, Url};
use thiserror::Error;

/// The scheduler API's path on a master.
pub const SCHEDULER_PATH: &str = "/api/v1/scheduler";
/// A chain of redirects longer than this is a loop.
const MAX_REDIRECTS: usize = 5;
/// Calls other than SUBSCRIBE are short; one that hangs is dropped.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Why an exchange with a master failed.
#[derive(Debug, Error)]
pub enum MesosHttpError {
    #[error("master {url} unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("master {url} has no leader yet (503)")]
    NoLeader { url: String },
    #[error("master {url} redirected to an invalid location {location:?}")]
    BadRedirect { url: String, location: String },
    #[error("master {url} redirected to {location:?}: refusing to leave https for http")]
    InsecureRedirect { url: String, location: String },
    #[error("more than {MAX_REDIRECTS} redirects starting at {url}")]
    TooManyRedirects { url: String },
    #[error("master {url} answered {status}: {body}")]
    Refused {
        url: String,
        status: StatusCode,
        body: String,
    },
    #[error("master {url} answered SUBSCRIBE without a {STREAM_ID_HEADER} header")]
    NoStreamId { url: String },
    #[error("master {from} redirected to {url}, another host, which asks for credentials: they are sent only to the masters configured or found in ZooKeeper")]
    CredentialsWithheld { from: String, url: String },
}

impl MesosHttpError {
    /// True when the answer means that the subscription is gone (403: the
    /// stream closed or another scheduler failed over this framework).
    pub fn ends_subscription(&self) -> bool {
        matches!(self, MesosHttpError::Refused { status, .. } if *status == StatusCode::FORBIDDEN)
    }
}

/// The URL a redirect leads to. Mesos answers `Location: //host:port/api/v1/scheduler`:
/// no scheme, so the one of the request is kept.
pub fn resolve_redirect(current: &Url, location: &str) -> Result<Url, MesosHttpError> {
    let bad = || MesosHttpError::BadRedirect {
        url: current.to_string(),
        location: location.to_string(),
    };
    let location = location.trim();
    if location.is_empty() {
        return Err(bad());
    }
    // Url::join resolves scheme-relative (`//h:p/x`), absolute-path and
    // absolute references the way RFC 3986 says.
    let url = current.join(location).map_err(|_| bad())?;
    match url.scheme() {
        // Credentials and the stream must never go out in clear.
        "http" if current.scheme() == "https" => Err(MesosHttpError::InsecureRedirect {
            url: current.to_string(),
            location: location.to_string(),
        }),
        "http" | "https" if url.host_str().is_some() => Ok(url),
        _ => Err(bad()),
    }
}

/// The scheduler endpoint on a master given by its base URL.
pub fn scheduler_endpoint(master: &Url) -> Url {
    let mut url = master.clone();
    url.set_path(SCHEDULER_PATH);
    url.set_query(None);
    url
}

/// The base URL (scheme, host, port) of an endpoint URL.
pub fn base_of(endpoint: &Url) -> Url {
    let mut url = endpoint.clone();
    url.set_path("/");
    url.set_query(None);
    url
}

/// Why the client could not be built.
#[derive(Debug, Error)]
pub enum MesosClientError {
    #[error("cannot use the CA file {path} ([mesos].ca_file): {reason}")]
    CaFile { path: String, reason: String },
    #[error("cannot create the HTTP client: {0}")]
    Client(String),
}

/// A client for one framework's exchanges with the masters.
#[derive(Clone)]
pub struct MesosHttp {
    client: reqwest::Client,
    credentials: Option<(String, String)>,
    /// Where credentials may go besides the endpoint a call starts at: the
    /// configured masters.
    masters: Vec<Url>,
}

// The secret never reaches a log line through `{:?}`.
impl std::fmt::Debug for MesosHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MesosHttp")
            .field("principal", &self.credentials.as_ref().map(|(p, _)| p))
            .field("masters", &self.masters)
            .finish_non_exhaustive()
    }
}

/// An open SUBSCRIBE stream.
#[derive(Debug)]
pub struct Subscription {
    /// The endpoint of the master that answered (the leader).
    pub endpoint: Url,
    pub stream_id: String,
    pub response: reqwest::Response,
}

impl MesosHttp {
    /// `credentials` = (principal, secret) for HTTP basic authentication.
    pub fn new(credentials: Option<(String, String)>) -> Result<Self, MesosClientError> {
        Self::with_ca_file(credentials, None)
    }

    /// Like [`MesosHttp::new`], trusting the certificates of `ca_file` (PEM)
    /// besides the system's roots. Mesos traffic never goes through a proxy:
    /// `HTTP_PROXY` and friends are for other traffic, and the SUBSCRIBE
    /// stream would not survive most proxies.
    pub fn with_ca_file(
        credentials: Option<(String, String)>,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Self, MesosClientError> {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .tcp_keepalive(Duration::from_secs(30));
        if let Some(path) = ca_file {
            let bad = |reason: String| MesosClientError::CaFile {
                path: path.display().to_string(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(error_chain(&e)))?;
            if certs.is_empty() {
                return Err(bad("no PEM certificate in it".into()));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| MesosClientError::Client(error_chain(&e)))?;
        Ok(Self {
            client,
            credentials,
            masters: Vec::new(),
        })
    }

    /// Credentials also follow redirects to these masters (the configured
    /// list), and to no other host.
    pub fn with_masters(mut self, masters: &[Url]) -> Self {
        self.masters = masters.to_vec();
        self
    }

    /// Whether a redirect from `start` to `next` may carry the credentials.
    fn may_receive_credentials(&self, start: &Url, next: &Url) -> bool {
        let same = |a: &Url, b: &Url| {
            a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
        };
        same(start, next) || self.masters.iter().any(|m| same(m, next))
    }

    async fn post(
        &self,
        endpoint: &Url,
        body: &[u8],
        stream_id: Option<&str>,
        streaming: bool,
    ) -> Result<(Url, reqwest::Response), MesosHttpError> {
        let mut url = endpoint.clone();
        let mut with_credentials = true;
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self
                .client
                .post(url.clone())
                .header(header::CONTENT_TYPE, CONTENT_TYPE_PROTOBUF)
                .header(header::ACCEPT, CONTENT_TYPE_PROTOBUF)
                .body(body.to_vec());
            if !streaming {
                req = req.timeout(CALL_TIMEOUT);
            }
            if let Some(id) = stream_id {
                req = req.header(STREAM_ID_HEADER, id);
            }
            if let Some((principal, secret)) =
                self.credentials.as_ref().filter(|_| with_credentials)
            {
                req = req.basic_auth(principal, Some(secret));
            }
            let response = req.send().await.map_err(|e| MesosHttpError::Unreachable {
                url: url.to_string(),
                reason: error_chain(&e),
            })?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let next = resolve_redirect(&url, &location)?;
                if with_credentials
                    && self.credentials.is_some()
                    && !self.may_receive_credentials(endpoint, &next)
                {
                    tracing::warn!(to = %next, "redirected to a master that is not configured: following without credentials");
                    with_credentials = false;
                }
                tracing::debug!(from = %url, to = %next, "following the master's redirect to the leader");
                url = next;
                continue;
            }
            if status == StatusCode::SERVICE_UNAVAILABLE {
                return Err(MesosHttpError::NoLeader {
                    url: url.to_string(),
                });
            }
            if status == StatusCode::UNAUTHORIZED && !with_credentials && self.credentials.is_some()
            {
                return Err(MesosHttpError::CredentialsWithheld {
                    from: endpoint.to_string(),
                    url: url.to_string(),
                });
            }
            if !status.is_success() {
                let body = response.text().await.unwrap_or_default();
                return Err(MesosHttpError::Refused {
                    url: url.to_string(),
                    status,
                    body: body.chars().take(500).collect(),
                });
            }
            return Ok((url, response));
        }
        Err(MesosHttpError::TooManyRedirects {
            url: endpoint.to_string(),
        })
    }

    /// Sends SUBSCRIBE to `endpoint` (or the leader it redirects to).
    pub async fn subscribe(
        &self,
        endpoint: &Url,
        call: &sched::Call,
    ) -> Result<Subscription, MesosHttpError> {
        let (endpoint, response) = self
            .post(endpoint, &call.encode_to_vec(), None, true)
            .await?;
        let stream_id = response
            .headers()
            .get(STREAM_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| MesosHttpError::NoStreamId {
                url: endpoint.to_string(),
            })?;
        Ok(Subscription {
            endpoint,
            stream_id,
            response,
        })
    }

    /// Sends one call on an open subscription.
    pub async fn call(
        &self,
        endpoint: &Url,
        stream_id: &str,
        call: &sched::Call,
    ) -> Result<(), MesosHttpError> {
        self.post(endpoint, &call.encode_to_vec(), Some(stream_id), false)
            .await
            .map(|_| ())
    }
}

/// An error with its causes, which reqwest keeps in `source()`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test url")
    }

    #[test]
    fn debug_output_names_the_principal_but_never_the_secret() {
        let http = MesosHttp::new(Some(("mmm".into(), "s3cret-value".into()))).expect("client");
        let text = format!("{http:?}");
        assert!(text.contains("mmm"), "{text}");
        assert!(!text.contains("s3cret-value"), "{text}");
    }

    #[test]
    fn scheme_less_location_keeps_the_request_scheme() {
        let cur = url("http://10.0.0.1:5050/api/v1/scheduler");
        let next = resolve_redirect(&cur, "//10.0.0.2:5051/api/v1/scheduler").expect("valid");
        assert_eq!(next.as_str(), "http://10.0.0.2:5051/api/v1/scheduler");
        let cur = url("https://m1:5050/api/v1/scheduler");
        let next = resolve_redirect(&cur, "//m2:5050/master/api/v1/scheduler").expect("valid");
        assert_eq!(next.as_str(), "https://m2:5050/master/api/v1/scheduler");
    }

    #[test]
    fn absolute_and_path_locations_resolve() {
        let cur = url("http://m1:5050/api/v1/scheduler");
        assert_eq!(
            resolve_redirect(&cur, "http://m3:1/api/v1/scheduler")
                .expect("valid")
                .as_str(),
            "http://m3:1/api/v1/scheduler"
        );
        assert_eq!(
            resolve_redirect(&cur, "/master/api/v1/scheduler")
                .expect("valid")
                .as_str(),
            "http://m1:5050/master/api/v1/scheduler"
        );
    }

    #[test]
    fn https_is_never_left_for_http() {
        let cur = url("https://m1:5050/api/v1/scheduler");
        for downgrade in ["http://m2:5050/api/v1/scheduler", "http://m1:5050/x"] {
            let err = resolve_redirect(&cur, downgrade).expect_err(downgrade);
            assert!(
                matches!(err, MesosHttpError::InsecureRedirect { .. }),
                "{downgrade}: {err}"
            );
            assert!(err.to_string().contains("refusing to leave https"), "{err}");
        }
        // An upgrade is fine.
        let cur = url("http://m1:5050/api/v1/scheduler");
        let next = resolve_redirect(&cur, "https://m2:5050/api/v1/scheduler").expect("upgrade");
        assert_eq!(next.scheme(), "https");
    }

    #[test]
    fn unreadable_or_empty_ca_files_are_named() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("ca.pem");
        let err = MesosHttp::with_ca_file(None, Some(&path)).expect_err("missing");
        assert!(
            err.to_string().contains("[mesos].ca_file") && err.to_string().contains("ca.pem"),
            "{err}"
        );
        std::fs::write(&path, "no certificate here\n").expect("write");
        let err = MesosHttp::with_ca_file(None, Some(&path)).expect_err("empty");
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
    }

    #[test]
    fn empty_or_foreign_locations_are_refused() {
        let cur = url("http://m1:5050/api/v1/scheduler");
        for bad in ["", "   ", "ftp://x/y", "//"] {
            let err = resolve_redirect(&cur, bad).expect_err(bad);
            assert!(
                matches!(err, MesosHttpError::BadRedirect { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn endpoint_and_base() {
        let base = url("http://m:5050/");
        let ep = scheduler_endpoint(&base);
        assert_eq!(ep.as_str(), "http://m:5050/api/v1/scheduler");
        assert_eq!(base_of(&ep), base);
    }

    /// Serves one HTTP exchange with a canned response; returns the request.
    async fn answer(listener: TcpListener, response: String) -> String {
        let (mut sock, _) = listener.accept().await.expect("accept");
        let mut buf = vec![0u8; 4096];
        let mut req = Vec::new();
        loop {
            let n = sock.read(&mut buf).await.expect("read");
            req.extend_from_slice(&buf[..n]);
            if n == 0 || req.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        sock.write_all(response.as_bytes()).await.expect("write");
        sock.shutdown().await.expect("shutdown");
        String::from_utf8_lossy(&req).into_owned()
    }

    /// A master that redirects once (scheme-less) to a second one, which
    /// answers with a stream id: the client ends at the second.
    #[tokio::test]
    async fn subscribe_follows_a_scheme_less_redirect() {
        let leader = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let leader_addr = leader.local_addr().expect("addr");
        let follower = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let follower_addr = follower.local_addr().expect("addr");

        let f = tokio::spawn(answer(
            follower,
            format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: //{leader_addr}/api/v1/scheduler\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        ));
        let l = tokio::spawn(answer(
            leader,
            "HTTP/1.1 200 OK\r\nMesos-Stream-Id: abc\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
        ));
        let http = MesosHttp::new(None).expect("client");
        let start = scheduler_endpoint(&url(&format!("http://{follower_addr}")));
        let sub = http
            .subscribe(&start, &sched::Call::default())
            .await
            .expect("subscribed after redirect");
        assert_eq!(sub.stream_id, "abc");
        assert_eq!(sub.endpoint.port(), Some(leader_addr.port()));
        let follower_req = f.await.expect("follower");
        let leader_req = l.await.expect("leader");
        assert!(
            follower_req.starts_with("POST /api/v1/scheduler"),
            "{follower_req}"
        );
        assert!(
            leader_req.starts_with("POST /api/v1/scheduler"),
            "{leader_req}"
        );
        assert!(leader_req
            .to_ascii_lowercase()
            .contains("content-type: application/x-protobuf"));
    }

    /// A redirect to another host gets no credentials, and its 401 says so.
    #[tokio::test]
    async fn credentials_are_not_sent_to_the_host_a_redirect_names() {
        let other = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let other_addr = other.local_addr().expect("addr");
        let first = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let first_addr = first.local_addr().expect("addr");
        let f = tokio::spawn(answer(
            first,
            format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: //{other_addr}/api/v1/scheduler\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        ));
        let o = tokio::spawn(answer(
            other,
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"mesos-master-scheduler\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
        ));
        let http = MesosHttp::new(Some(("mmm".into(), "s3cret".into()))).expect("client");
        let start = scheduler_endpoint(&url(&format!("http://{first_addr}")));
        let err = http
            .subscribe(&start, &sched::Call::default())
            .await
            .expect_err("the other host refuses");
        assert!(
            matches!(err, MesosHttpError::CredentialsWithheld { .. }),
            "{err}"
        );
        let first_req = f.await.expect("first").to_ascii_lowercase();
        let other_req = o.await.expect("other").to_ascii_lowercase();
        assert!(first_req.contains("authorization: basic"), "{first_req}");
        assert!(!other_req.contains("authorization"), "{other_req}");
    }

    /// Credentials follow a redirect only to a configured master.
    #[tokio::test]
    async fn credentials_follow_redirects_only_to_configured_masters() {
        for configured in [false, true] {
            let leader = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let leader_addr = leader.local_addr().expect("addr");
            let follower = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let follower_addr = follower.local_addr().expect("addr");
            let f = tokio::spawn(answer(
                follower,
                format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: //{leader_addr}/api/v1/scheduler\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                ),
            ));
            let l = tokio::spawn(answer(
                leader,
                "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_string(),
            ));
            let masters: Vec<Url> = if configured {
                vec![url(&format!("http://{leader_addr}"))]
            } else {
                Vec::new()
            };
            let http = MesosHttp::new(Some(("mmm".into(), "s3cret".into())))
                .expect("client")
                .with_masters(&masters);
            let start = scheduler_endpoint(&url(&format!("http://{follower_addr}")));
            http.call(&start, "s", &sched::Call::default())
                .await
                .expect("accepted by the leader");
            let to_follower = f.await.expect("follower").to_ascii_lowercase();
            let to_leader = l.await.expect("leader").to_ascii_lowercase();
            assert!(
                to_follower.contains("authorization: basic"),
                "{to_follower}"
            );
            assert_eq!(
                to_leader.contains("authorization: basic"),
                configured,
                "configured={configured}: {to_leader}"
            );
        }
    }

    /// Calls carry the stream id, protobuf content type and basic auth;
    /// 503 means no leader and 403 ends the subscription.
    #[tokio::test]
    async fn calls_carry_stream_id_and_credentials_and_map_errors() {
        let master = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = master.local_addr().expect("addr");
        let served = tokio::spawn(answer(
            master,
            "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
        ));
        let http = MesosHttp::new(Some(("mmm".into(), "s3cret".into()))).expect("client");
        let endpoint = scheduler_endpoint(&url(&format!("http://{addr}")));
        http.call(&endpoint, "stream-1", &sched::Call::default())
            .await
            .expect("accepted");
        let request = served.await.expect("served").to_ascii_lowercase();
        assert!(request.contains("mesos-stream-id: stream-1"), "{request}");
        // base64("mmm:s3cret")
        assert!(
            request.contains("authorization: basic bw1tonmzy3jlda=="),
            "{request}"
        );

        for (status, check) in [
            ("503 Service Unavailable", "no leader"),
            ("403 Forbidden", "403"),
        ] {
            let master = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = master.local_addr().expect("addr");
            let served = tokio::spawn(answer(
                master,
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
            ));
            let endpoint = scheduler_endpoint(&url(&format!("http://{addr}")));
            let err = http
                .call(&endpoint, "s", &sched::Call::default())
                .await
                .expect_err(status);
            served.await.expect("served");
            assert!(err.to_string().contains(check), "{err}");
            assert_eq!(err.ends_subscription(), status.starts_with("403"));
        }
    }
}
