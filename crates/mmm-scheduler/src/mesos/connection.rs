//! The subscription: find the leader, SUBSCRIBE, read the event stream,
//! watch the heartbeats, and start over with backoff when any of it fails.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use mesos_proto::recordio::Decoder;
use mesos_proto::v1::scheduler as sched;
use mesos_proto::v1::{FrameworkId, FrameworkInfo};
use mesos_proto::Message;
use rand::{Rng, SeedableRng};
use reqwest::Url;
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use super::http::{base_of, error_chain, scheduler_endpoint, MesosHttp, MesosHttpError};
use super::master::MasterSource;

/// What the connection tells the scheduler.
#[derive(Debug)]
pub enum MesosInput {
    /// An event from the master, in stream order (SUBSCRIBED first).
    Event(Box<sched::Event>),
    /// The stream ended; the next subscription starts with a SUBSCRIBED again.
    Disconnected { reason: String },
}

/// The open subscription that calls are sent on.
#[derive(Debug, Clone)]
pub struct Session {
    pub endpoint: Url,
    pub stream_id: String,
    pub framework_id: FrameworkId,
}

/// Shared view of the current session; `None` while not subscribed.
pub type SessionCell = Arc<RwLock<Option<Session>>>;

/// The subscription's state, for /health and /metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SubscriptionState {
    Connecting,
    Subscribed {
        framework_id: String,
        master: String,
    },
    Disconnected {
        reason: String,
    },
}

impl SubscriptionState {
    pub fn is_subscribed(&self) -> bool {
        matches!(self, SubscriptionState::Subscribed { .. })
    }
}

/// Everything the connection needs.
#[derive(Debug)]
pub struct ConnectionConfig {
    pub source: MasterSource,
    /// The FrameworkInfo to subscribe with, without `id`.
    pub framework: FrameworkInfo,
    /// The framework id stored by an earlier run, if any.
    pub framework_id: Option<String>,
    pub http: MesosHttp,
    /// Heartbeats missed before the connection is considered dead.
    pub missed_heartbeats: u32,
    /// Give up when no master could even be reached for this long before
    /// the first subscription (a wrong address should not hang silently).
    pub give_up_unreachable_after: Option<Duration>,
}

/// How long to wait for SUBSCRIBED after the 200 answer.
const FIRST_EVENT_TIMEOUT: Duration = Duration::from_secs(30);
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(15);

/// Exponential backoff with jitter: each wait is between half and all of
/// the current step, so that many schedulers do not retry in lockstep.
#[derive(Debug)]
pub struct Backoff {
    step: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { step: BACKOFF_MIN }
    }
}

impl Backoff {
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(BACKOFF_MAX);
        let factor: f64 = rng.random_range(0.5..=1.0);
        step.mul_f64(factor)
    }

    pub fn reset(&mut self) {
        self.step = BACKOFF_MIN;
    }
}

/// Why the connection stopped trying.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConnectionStopped {
    /// No master could be reached before the first subscription in time.
    #[error("cannot reach the Mesos master: {0}")]
    Unreachable(String),
    /// The master refused the framework in a way retrying cannot cure:
    /// wrong credentials, a principal or role it refuses, no authorization.
    #[error("the Mesos master refused this framework: {0}")]
    Refused(String),
}

/// Whether a master's message is about who the framework is: its
/// principal, role(s) or authorization, which retrying does not change.
pub fn names_identity(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["principal", "role", "authoriz", "authent", "not allowed"]
        .iter()
        .any(|w| m.contains(w))
}

/// Whether a SUBSCRIBE answer is a permanent refusal: 401, 403, or a 400
/// about the framework's identity.
fn refused_for_good(e: &MesosHttpError) -> bool {
    match e {
        MesosHttpError::Refused { status, body, .. } => {
            *status == reqwest::StatusCode::UNAUTHORIZED
                || *status == reqwest::StatusCode::FORBIDDEN
                || (*status == reqwest::StatusCode::BAD_REQUEST && names_identity(body))
        }
        _ => false,
    }
}

/// Gives up for good: /health and the log say why.
fn stop_refused(state: &watch::Sender<SubscriptionState>, reason: String) -> ConnectionStopped {
    let stopped = ConnectionStopped::Refused(reason);
    tracing::error!("{stopped}; stopping");
    let _ = state.send(SubscriptionState::Disconnected {
        reason: stopped.to_string(),
    });
    stopped
}

/// Runs until `out` is closed; fails when no master was reachable before
/// the first subscription within `give_up_unreachable_after`, or when the
/// master refuses the framework for good.
pub async fn run(
    cfg: ConnectionConfig,
    session: SessionCell,
    out: mpsc::Sender<MesosInput>,
    state: watch::Sender<SubscriptionState>,
) -> Result<(), ConnectionStopped> {
    let started = tokio::time::Instant::now();
    let mut ever_subscribed = false;
    let mut framework_id = cfg.framework_id.clone().map(|value| FrameworkId { value });
    let mut backoff = Backoff::default();
    let mut leader_rx = match &cfg.source {
        MasterSource::ZooKeeper { hosts, path, tls } => loop {
            match super::master::spawn_zk_detector(hosts.clone(), path.clone(), *tls).await {
                Ok(rx) => break Some(rx),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start master detection");
                    let _ = state.send(SubscriptionState::Disconnected {
                        reason: e.to_string(),
                    });
                    tokio::time::sleep(backoff.next_delay(&mut rand::rngs::StdRng::from_os_rng()))
                        .await;
                    if out.is_closed() {
                        return Ok(());
                    }
                    if let Some(limit) = cfg.give_up_unreachable_after {
                        if started.elapsed() > limit {
                            return Err(ConnectionStopped::Unreachable(e.to_string()));
                        }
                    }
                }
            }
        },
        MasterSource::Direct(_) => None,
    };
    loop {
        if out.is_closed() {
            return Ok(());
        }
        let candidates: Vec<Url> = match (&cfg.source, &mut leader_rx) {
            (MasterSource::Direct(urls), _) => urls.clone(),
            (MasterSource::ZooKeeper { .. }, Some(rx)) => {
                let leader = rx.borrow_and_update().clone();
                match leader {
                    Some(url) => vec![url],
                    None => {
                        let _ = state.send(SubscriptionState::Disconnected {
                            reason: "no leading master in ZooKeeper".into(),
                        });
                        if rx.changed().await.is_err() {
                            return Ok(());
                        }
                        continue;
                    }
                }
            }
            (MasterSource::ZooKeeper { .. }, None) => return Ok(()),
        };
        let _ = state.send(SubscriptionState::Connecting);
        let mut last_error = String::from("no master given");
        let mut subscribed_once = false;
        let mut all_unreachable = true;
        for master in candidates {
            let mut info = cfg.framework.clone();
            info.id = framework_id.clone();
            let call = mesos_proto::calls::subscribe(info);
            let endpoint = scheduler_endpoint(&master);
            match cfg.http.subscribe(&endpoint, &call).await {
                Ok(sub) => {
                    let outcome = read_stream(
                        sub,
                        &cfg,
                        &mut framework_id,
                        &session,
                        &out,
                        &state,
                        leader_rx.as_mut(),
                        &mut subscribed_once,
                    )
                    .await;
                    *session.write().unwrap_or_else(|p| p.into_inner()) = None;
                    let outcome = match outcome {
                        Ok(reason) => reason,
                        Err(refusal) => return Err(stop_refused(&state, refusal)),
                    };
                    last_error = outcome;
                    if out
                        .send(MesosInput::Disconnected {
                            reason: last_error.clone(),
                        })
                        .await
                        .is_err()
                    {
                        return Ok(());
                    }
                    all_unreachable = false;
                    tracing::warn!(reason = %last_error, "subscription ended; subscribing again");
                    break;
                }
                Err(e) => {
                    if refused_for_good(&e) {
                        return Err(stop_refused(&state, e.to_string()));
                    }
                    last_error = e.to_string();
                    if !matches!(e, MesosHttpError::Unreachable { .. }) {
                        all_unreachable = false;
                    }
                    if matches!(e, MesosHttpError::NoLeader { .. }) {
                        tracing::info!(master = %master, "no leading master yet");
                    } else {
                        tracing::warn!(error = %e, "SUBSCRIBE failed");
                    }
                }
            }
        }
        if subscribed_once {
            backoff.reset();
            ever_subscribed = true;
        }
        if let Some(limit) = cfg.give_up_unreachable_after {
            if !ever_subscribed && all_unreachable && started.elapsed() > limit {
                return Err(ConnectionStopped::Unreachable(format!(
                    "no Mesos master reachable within {limit:?}: {last_error}"
                )));
            }
        }
        let _ = state.send(SubscriptionState::Disconnected {
            reason: last_error.clone(),
        });
        let delay = backoff.next_delay(&mut rand::rngs::StdRng::from_os_rng());
        tokio::time::sleep(delay).await;
    }
}

/// Reads one subscription's events until it ends; returns why it ended,
/// as an error when the master refused the framework for good.
#[allow(clippy::too_many_arguments)]
async fn read_stream(
    sub: super::http::Subscription,
    cfg: &ConnectionConfig,
    framework_id: &mut Option<FrameworkId>,
    session: &SessionCell,
    out: &mpsc::Sender<MesosInput>,
    state: &watch::Sender<SubscriptionState>,
    mut leader_rx: Option<&mut watch::Receiver<Option<Url>>>,
    subscribed_once: &mut bool,
) -> Result<String, String> {
    let super::http::Subscription {
        endpoint,
        stream_id,
        mut response,
    } = sub;
    let mut decoder = Decoder::default();
    let mut timeout = FIRST_EVENT_TIMEOUT;
    loop {
        let chunk = tokio::select! {
            chunk = tokio::time::timeout(timeout, response.chunk()) => chunk,
            changed = wait_leader_change(leader_rx.as_deref_mut()) => {
                return Ok(if changed {
                    format!("the leading master changed (was {})", base_of(&endpoint))
                } else {
                    "master detection stopped".to_string()
                });
            }
        };
        let chunk: Bytes = match chunk {
            Err(_) => {
                return Ok(format!(
                    "no event from {} within {timeout:?}: heartbeats missed",
                    base_of(&endpoint)
                ))
            }
            Ok(Err(e)) => {
                return Ok(format!(
                    "stream from {} broke: {}",
                    base_of(&endpoint),
                    error_chain(&e)
                ))
            }
            Ok(Ok(None)) => return Ok(format!("master {} closed the stream", base_of(&endpoint))),
            Ok(Ok(Some(chunk))) => chunk,
        };
        decoder.feed(&chunk);
        loop {
            let record = match decoder.next_record() {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    return Ok(format!(
                        "undecodable stream from {}: {e}",
                        base_of(&endpoint)
                    ))
                }
            };
            let event = match sched::Event::decode(record) {
                Ok(ev) => ev,
                Err(e) => {
                    return Ok(format!(
                        "undecodable event from {}: {e}",
                        base_of(&endpoint)
                    ))
                }
            };
            let kind = event
                .r#type
                .and_then(|t| sched::event::Type::try_from(t).ok());
            match kind {
                Some(sched::event::Type::Subscribed) => {
                    let Some(subscribed) = &event.subscribed else {
                        return Ok("SUBSCRIBED event without its subscribed field".into());
                    };
                    let id = subscribed.framework_id.clone();
                    let heartbeat = subscribed
                        .heartbeat_interval_seconds
                        .filter(|s| s.is_finite() && *s > 0.0)
                        .unwrap_or(15.0);
                    timeout = Duration::from_secs_f64(
                        heartbeat * f64::from(cfg.missed_heartbeats.max(1)),
                    );
                    *framework_id = Some(id.clone());
                    *session.write().unwrap_or_else(|p| p.into_inner()) = Some(Session {
                        endpoint: endpoint.clone(),
                        stream_id: stream_id.clone(),
                        framework_id: id.clone(),
                    });
                    *subscribed_once = true;
                    tracing::info!(framework_id = %id.value, master = %base_of(&endpoint), heartbeat_s = heartbeat, "subscribed");
                    let _ = state.send(SubscriptionState::Subscribed {
                        framework_id: id.value.clone(),
                        master: base_of(&endpoint).to_string(),
                    });
                }
                Some(sched::event::Type::Error) => {
                    let message = event
                        .error
                        .as_ref()
                        .map(|e| e.message.clone())
                        .unwrap_or_default();
                    tracing::error!(message = %message, "master sent ERROR");
                    if framework_was_removed(&message) {
                        // Mesos never accepts a removed framework id again, and it
                        // has killed the framework's tasks: subscribe as a new
                        // framework; reconciliation then relaunches every server.
                        tracing::warn!(
                            old_id = ?framework_id.as_ref().map(|f| f.value.as_str()),
                            "the master removed this framework; subscribing as a new one"
                        );
                        *framework_id = None;
                    }
                    let _ = out.send(MesosInput::Event(Box::new(event))).await;
                    if !framework_was_removed(&message) && names_identity(&message) {
                        return Err(format!("ERROR: {message}"));
                    }
                    return Ok(format!("master sent ERROR: {message}"));
                }
                Some(sched::event::Type::Heartbeat) => {
                    tracing::trace!("heartbeat");
                }
                _ => {}
            }
            if out.send(MesosInput::Event(Box::new(event))).await.is_err() {
                return Ok("scheduler stopped".into());
            }
        }
    }
}

/// Resolves when the leader changes (true) or detection stops (false);
/// never resolves without a detector.
async fn wait_leader_change(rx: Option<&mut watch::Receiver<Option<Url>>>) -> bool {
    match rx {
        None => std::future::pending().await,
        Some(rx) => rx.changed().await.is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_grows_with_jitter_up_to_the_maximum_and_resets() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut b = Backoff::default();
        let delays: Vec<Duration> = (0..12).map(|_| b.next_delay(&mut rng)).collect();
        assert!(delays[0] >= BACKOFF_MIN / 2 && delays[0] <= BACKOFF_MIN);
        assert!(delays.iter().all(|d| *d <= BACKOFF_MAX));
        assert!(delays[11] >= BACKOFF_MAX / 2, "{delays:?}");
        b.reset();
        assert!(b.next_delay(&mut rng) <= BACKOFF_MIN);
    }
}

/// Whether an ERROR event says that the master removed the framework (its
/// failover timeout passed, or an operator tore it down), as opposed to, say,
/// another scheduler having taken it over.
fn framework_was_removed(message: &str) -> bool {
    message.contains("Framework has been removed")
        || message.contains("Framework has been torn down")
}

#[cfg(test)]
mod removal_tests {
    use super::framework_was_removed;

    #[test]
    fn refusals_about_identity_are_told_apart() {
        use super::names_identity;
        for permanent in [
            "Roles { web } are not present in the master's --roles",
            "Not authorized to register framework  with roles { mirror }",
            "Authenticated principal 'a' does not match principal 'b' set in `FrameworkInfo`",
            "'FrameworkInfo.role' is not a valid role: Empty role name is invalid",
            "User 'root' is not allowed to run frameworks without --root_submissions set",
        ] {
            assert!(names_identity(permanent), "{permanent}");
        }
        for transient in ["Framework failed over", "Framework has been removed", ""] {
            assert!(!names_identity(transient), "{transient}");
        }
    }

    #[test]
    fn only_a_removal_makes_the_scheduler_forget_its_framework_id() {
        assert!(framework_was_removed("Framework has been removed"));
        assert!(!framework_was_removed("Framework failed over"));
        assert!(!framework_was_removed("Framework is not authorized"));
    }
}
