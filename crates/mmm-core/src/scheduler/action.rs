//! What the scheduler asks its shell to do, in order.

use bytes::Bytes;
use mesos_proto::v1;

use crate::model::Cluster;

/// An output of the scheduler; the shell performs them in the given order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Store this snapshot; must succeed before any later action is sent.
    Persist(Cluster),
    /// ACCEPT the offer with one LAUNCH of these tasks.
    Launch {
        /// The offer.
        offer_id: v1::OfferId,
        /// The tasks to launch on it.
        tasks: Vec<v1::TaskInfo>,
        /// How long the unused rest of the offer stays away.
        refuse_seconds: f64,
    },
    /// DECLINE these offers with a refuse filter.
    Decline {
        /// The offers.
        offer_ids: Vec<v1::OfferId>,
        /// How long their resources stay away.
        refuse_seconds: f64,
    },
    /// KILL a task.
    Kill {
        /// The task.
        task_id: v1::TaskId,
        /// Its agent, when known.
        agent_id: Option<v1::AgentId>,
    },
    /// ACKNOWLEDGE a status update.
    Acknowledge {
        /// The agent of the update.
        agent_id: v1::AgentId,
        /// The task of the update.
        task_id: v1::TaskId,
        /// The update's uuid.
        uuid: Bytes,
    },
    /// RECONCILE these tasks; an empty list asks for implicit reconciliation.
    Reconcile {
        /// Tasks with their agents.
        tasks: Vec<(v1::TaskId, Option<v1::AgentId>)>,
    },
    /// REVIVE offers.
    Revive,
    /// SUPPRESS offers.
    Suppress,
}
