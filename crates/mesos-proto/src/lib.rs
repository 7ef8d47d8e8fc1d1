//! The Mesos v1 HTTP API as Rust types, and the RecordIO framing of its streams.
//!
//! This crate is the only one in the workspace that knows the wire format:
//! everything else builds and reads these types and hands bytes to
//! [`recordio`] and [`prost::Message`].

#![allow(clippy::doc_lazy_continuation, clippy::large_enum_variant)]

pub mod calls;
pub mod ids;
pub mod recordio;
pub mod resources;

/// `package mesos.v1`
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/mesos.v1.rs"));

    /// `package mesos.v1.scheduler`
    pub mod scheduler {
        include!(concat!(env!("OUT_DIR"), "/mesos.v1.scheduler.rs"));
    }

    /// `package mesos.v1.executor`
    pub mod executor {
        include!(concat!(env!("OUT_DIR"), "/mesos.v1.executor.rs"));
    }
}

pub use prost::Message;

/// The media type of protobuf bodies on both APIs.
pub const CONTENT_TYPE_PROTOBUF: &str = "application/x-protobuf";
/// The header that carries the scheduler stream's id.
pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";
