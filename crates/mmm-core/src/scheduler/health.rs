//! When a task's launch attempts are forgotten.
//!
//! A task that reaches TASK_RUNNING and then fails on the same record again
//! would relaunch forever if TASK_RUNNING reset the attempts. They are reset
//! only once the task has been Running for `[scheduler] healthy_after_ms` and
//! its executor does not report a problem, so a crash loop ends Failed after
//! `max_launch_attempts` with the last failure's message.

use super::Scheduler;
use crate::model::{Server, ServerState};

/// The `health` value of an executor metrics document that reports no problem.
pub const HEALTH_OK: &str = "ok";

/// Whether the executor's latest metrics report a problem. No metrics, or an
/// executor too old to report health, count as healthy.
pub(crate) fn reports_problem(server: &Server) -> bool {
    server
        .metrics
        .as_ref()
        .and_then(|m| m.document.get("health"))
        .and_then(|h| h.as_str())
        .is_some_and(|h| h != HEALTH_OK)
}

/// Since when `server` is Running, if it is.
fn running_since(server: &Server) -> Option<u64> {
    if server.state != ServerState::Running {
        return None;
    }
    server
        .history
        .iter()
        .rev()
        .find(|c| c.state == ServerState::Running)
        .map(|c| c.at_ms)
}

impl Scheduler {
    /// Forgets the launch attempts of tasks that have run healthy long enough.
    pub(super) fn forget_attempts_of_healthy_tasks(&mut self, now_ms: u64) {
        let after = self.settings.tuning.healthy_after_ms;
        for server in self.cluster.servers.values_mut() {
            if server.launch_attempts == 0 || reports_problem(server) {
                continue;
            }
            if running_since(server).is_some_and(|since| now_ms.saturating_sub(since) >= after) {
                tracing::info!(
                    server = server.id,
                    attempts = server.launch_attempts,
                    "ran healthy: launch attempts reset"
                );
                server.launch_attempts = 0;
                self.dirty = true;
            }
        }
    }
}
