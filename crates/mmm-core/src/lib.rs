//! The cluster model, the configuration and the scheduler's pure state machine.
//!
//! Nothing here does network, file or clock I/O: callers read files and pass
//! their text, and pass the current time into the state machine.

#![warn(missing_docs)]

pub mod config;
pub mod constraints;
pub mod delivery_guarantees;
pub mod human;
pub mod kafka_props;
pub mod model;
pub mod offset_sync;
pub mod properties;
pub mod property_allowlist;
pub mod replication_report;
pub mod rest;
pub mod scheduler;
pub mod task_data;
