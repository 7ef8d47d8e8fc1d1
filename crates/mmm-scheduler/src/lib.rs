//! The mmm scheduler: carries out the decisions of `mmm_core::scheduler`
//! against the Mesos masters, keeps the state durable, and serves the REST API.

pub mod access;
pub mod api;
pub mod dist;
pub mod driver;
pub mod framework;
pub mod mesos;
pub mod metrics;
pub mod secret_file;
pub mod serve;
pub mod standby;
pub mod startup;
pub mod store;
pub mod web;
