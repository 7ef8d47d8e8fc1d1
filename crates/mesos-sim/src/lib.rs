//! A strict local stand-in for a Mesos master and agents, for tests and the
//! demo. The product never depends on it.
//!
//! One process serves the v1 scheduler API (`/api/v1/scheduler` and
//! `/master/api/v1/scheduler`) on the master port, and the v1 executor API
//! (`/api/v1/executor`) on one port per simulated agent. Calls are validated
//! the way Mesos validates them, with the same status codes and error texts,
//! so that framework bugs surface here. Executors are real processes,
//! fetched over HTTP into per-executor sandboxes.
//!
//! See the crate's README for the control API and every known difference
//! from Mesos.

mod agent;
mod config;
mod containerizer;
mod control;
mod executor_auth;
pub mod fetcher;
mod http_executor;
mod http_scheduler;
mod inspect;
mod master;
mod process_group;
mod required;
mod resources;
mod sim;
mod state;
mod tls;
mod updates;

pub use config::{AgentConfig, Reserved, SimConfig};
pub use inspect::{AgentView, ArmedFaults, FrameworkView, OfferView, SimSnapshot, TaskView};
pub use sim::{MesosSim, SimError};
pub use state::{SandboxView, StateChange};
