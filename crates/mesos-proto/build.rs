//! Generates the Mesos v1 types from `proto/` with protox, a protobuf compiler
//! written in Rust, so that no machine needs `protoc`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read when the script runs, not when it was compiled: a compiled build
    // script may be reused for a copy of the workspace at another path.
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR is not set")?;
    let root = PathBuf::from(manifest_dir).join("../../proto");
    let files = [
        "mesos/v1/mesos.proto",
        "mesos/v1/scheduler/scheduler.proto",
        "mesos/v1/executor/executor.proto",
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let descriptors = protox::compile(files, [&root])?;
    prost_build::Config::new()
        .bytes(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
