//! Turning the scheduler's actions into scheduler API calls, and sending
//! them one after another on the current subscription.

use mesos_proto::calls;
use mesos_proto::v1::scheduler as sched;
use mesos_proto::v1::FrameworkId;
use mmm_core::scheduler::Action;
use tokio::sync::mpsc;

use super::connection::SessionCell;
use super::http::MesosHttp;

/// The call carrying out `action`; `None` for actions that are not calls.
pub fn call_for(framework_id: &FrameworkId, action: Action) -> Option<sched::Call> {
    Some(match action {
        Action::Persist(_) => return None,
        // The refuse filter of an ACCEPT applies to the unused rest of the offer.
        Action::Launch {
            offer_id,
            tasks,
            refuse_seconds,
        } => calls::accept_launch(framework_id, offer_id, tasks, refuse_seconds),
        Action::Decline {
            offer_ids,
            refuse_seconds,
        } => calls::decline(framework_id, offer_ids, refuse_seconds),
        Action::Kill { task_id, agent_id } => calls::kill(framework_id, task_id, agent_id),
        Action::Acknowledge {
            agent_id,
            task_id,
            uuid,
        } => calls::acknowledge(framework_id, agent_id, task_id, uuid),
        Action::Reconcile { tasks } => calls::reconcile(framework_id, tasks),
        Action::Revive => calls::revive(framework_id),
        Action::Suppress => calls::suppress(framework_id),
    })
}

fn describe(action: &Action) -> &'static str {
    match action {
        Action::Persist(_) => "PERSIST",
        Action::Launch { .. } => "ACCEPT",
        Action::Decline { .. } => "DECLINE",
        Action::Kill { .. } => "KILL",
        Action::Acknowledge { .. } => "ACKNOWLEDGE",
        Action::Reconcile { .. } => "RECONCILE",
        Action::Revive => "REVIVE",
        Action::Suppress => "SUPPRESS",
    }
}

/// Sends each action as a call, in order, until `actions` closes. Without
/// a subscription a call is dropped: the scheduler reconciles after the
/// next SUBSCRIBED, and Mesos re-sends what was not acknowledged.
pub async fn run_sender(
    http: MesosHttp,
    session: SessionCell,
    mut actions: mpsc::UnboundedReceiver<Action>,
) {
    while let Some(action) = actions.recv().await {
        let current = session.read().unwrap_or_else(|p| p.into_inner()).clone();
        let kind = describe(&action);
        let Some(current) = current else {
            tracing::info!(call = kind, "not subscribed; call dropped");
            continue;
        };
        let Some(call) = call_for(&current.framework_id, action) else {
            continue;
        };
        tracing::debug!(call = kind, "sending");
        if let Err(e) = http
            .call(&current.endpoint, &current.stream_id, &call)
            .await
        {
            tracing::warn!(call = kind, error = %e, "call failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::ids;

    #[test]
    fn actions_become_their_calls() {
        let f = ids::framework_id("f");
        let decline = call_for(
            &f,
            Action::Decline {
                offer_ids: vec![ids::offer_id("o1")],
                refuse_seconds: 30.0,
            },
        )
        .expect("call");
        assert_eq!(decline.r#type, Some(sched::call::Type::Decline as i32));
        assert_eq!(decline.framework_id, Some(f.clone()));
        let reconcile = call_for(&f, Action::Reconcile { tasks: vec![] }).expect("call");
        assert!(reconcile.reconcile.is_some());
        assert!(call_for(&f, Action::Persist(Default::default())).is_none());
    }
}
