//! The connection to the Mesos masters.

pub mod calls;
pub mod connection;
pub mod http;
pub mod master;
