//! What happens to the scheduler: Mesos events and timer ticks.

use bytes::Bytes;
use mesos_proto::v1;

/// An input of [`super::Scheduler::handle`].
// a TaskStatus is large, but events are moved once and never stored in bulk
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// SUBSCRIBED: the framework is (re-)registered under this id.
    Subscribed {
        /// The id Mesos assigned (or confirmed).
        framework_id: v1::FrameworkId,
    },
    /// OFFERS.
    Offers(Vec<v1::Offer>),
    /// RESCIND of an offer.
    Rescind(v1::OfferId),
    /// UPDATE of a task's status.
    Update(v1::TaskStatus),
    /// MESSAGE from an executor (a JSON metrics document).
    ExecutorMessage {
        /// The agent the executor runs on.
        agent_id: v1::AgentId,
        /// The executor.
        executor_id: v1::ExecutorId,
        /// The message body.
        data: Bytes,
    },
    /// FAILURE of an agent or an executor.
    Failure {
        /// The agent.
        agent_id: Option<v1::AgentId>,
        /// The executor, when an executor ended.
        executor_id: Option<v1::ExecutorId>,
        /// The executor's exit status.
        status: Option<i32>,
    },
    /// ERROR from the master.
    Error(String),
    /// The subscription stream ended.
    Disconnected,
    /// Time passed: retry timers and reconciliation.
    Tick,
}
