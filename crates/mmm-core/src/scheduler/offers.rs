//! Offer handling: take what fits, decline the rest in the same round.

use std::collections::BTreeSet;

use mesos_proto::v1;

use super::launch::{task_info, LaunchIds};
use super::placement::{constraints_allow, Remaining};
use super::{Action, Scheduler};
use crate::model::{ServerId, ServerState};

impl Scheduler {
    pub(super) fn on_offers(&mut self, offers: Vec<v1::Offer>, now_ms: u64, out: &mut Vec<Action>) {
        let mut pending: Vec<ServerId> = self
            .cluster
            .servers
            .values()
            .filter(|s| Self::is_pending(s, now_ms))
            .map(|s| s.id)
            .collect();
        let mut busy_hosts: BTreeSet<String> = self
            .cluster
            .servers
            .values()
            .filter(|s| s.task_id.is_some())
            .filter_map(|s| s.hostname.clone())
            .collect();
        let mut launches = Vec::new();
        let mut declined = Vec::new();
        let mut seen = BTreeSet::new();
        for offer in offers {
            // an offer id listed twice is answered once
            if !seen.insert(offer.id.value.clone()) {
                continue;
            }
            let mut remaining = Remaining::of(&offer);
            let mut tasks = Vec::new();
            let mut placed = Vec::new();
            for &id in &pending {
                let Some(server) = self.cluster.servers.get(&id) else {
                    continue;
                };
                // each launch has a new executor, which needs its own share
                let (exec_cpus, exec_mem) =
                    (self.settings.executor_cpus, self.settings.executor_mem);
                if !remaining.fits(server.task.cpus + exec_cpus, server.task.mem + exec_mem)
                    || !constraints_allow(&self.settings.tuning.constraints, &offer, &busy_hosts)
                {
                    continue;
                }
                let resources = remaining.take(server.task.cpus, server.task.mem);
                let executor_resources = remaining.take(exec_cpus, exec_mem);
                busy_hosts.insert(offer.hostname.clone());
                tasks.push(self.launch_on(id, &offer, resources, executor_resources, now_ms));
                placed.push(id);
            }
            pending.retain(|id| !placed.contains(id));
            if tasks.is_empty() {
                declined.push(offer.id);
            } else {
                launches.push(Action::Launch {
                    offer_id: offer.id,
                    tasks,
                    refuse_seconds: self.settings.tuning.refuse_seconds,
                });
            }
        }
        out.extend(launches);
        if !declined.is_empty() {
            out.push(Action::Decline {
                offer_ids: declined,
                refuse_seconds: self.settings.tuning.refuse_seconds,
            });
        }
        self.sync_offer_interest(now_ms, out);
    }

    /// Records the launch of server `id` on `offer` with the task's and the
    /// executor's resources taken from it, and returns its TaskInfo.
    fn launch_on(
        &mut self,
        id: ServerId,
        offer: &v1::Offer,
        resources: Vec<v1::Resource>,
        executor_resources: Vec<v1::Resource>,
        now_ms: u64,
    ) -> v1::TaskInfo {
        let uuid = self.rng.uuid();
        let framework_id = self
            .cluster
            .framework_id
            .clone()
            .unwrap_or_else(|| offer.framework_id.value.clone());
        let Some(server) = self.cluster.servers.get_mut(&id) else {
            // callers only pass ids of pending servers
            return v1::TaskInfo::default();
        };
        let ids = LaunchIds::new(server, &uuid);
        server.task_id = Some(ids.task_id.clone());
        server.executor_id = Some(ids.executor_id.clone());
        server.agent_id = Some(offer.agent_id.value.clone());
        server.hostname = Some(offer.hostname.clone());
        server.launch_attempts = server.launch_attempts.saturating_add(1);
        server.next_retry_ms = None;
        server.unreachable_since_ms = None;
        let message = format!(
            "launch {} on {} as {}",
            server.launch_attempts, offer.hostname, ids.task_id
        );
        if let Err(e) = server.transition(ServerState::Starting, now_ms, Some(message)) {
            tracing::error!(error = %e, "launching a server that is not pending");
        }
        self.dirty = true;
        let server = server.clone();
        self.await_launch_status(&ids.task_id, now_ms);
        self.launch_offers
            .insert(ids.task_id.clone(), offer.id.clone());
        task_info(
            &self.settings,
            &framework_id,
            &server,
            &ids,
            offer,
            (resources, executor_resources),
        )
    }
}
