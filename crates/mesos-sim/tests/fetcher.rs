//! The fetcher on its own: executable, extract, output_file, failures.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::FileServer;
use mesos_proto::v1::command_info::Uri;
use mesos_sim::fetcher::{fetch, FetchError};

fn tarball(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    for (path, data, mode) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        header.set_cksum();
        builder
            .append_data(&mut header, path, *data)
            .expect("append");
    }
    builder.into_inner().expect("tar").finish().expect("gzip")
}

fn uri(value: String) -> Uri {
    Uri {
        value,
        ..Uri::default()
    }
}

#[tokio::test]
async fn extracts_archives_and_honours_the_flags() {
    let archive = tarball(&[
        ("dist/run.sh", b"#!/bin/sh\necho hi\n", 0o755),
        ("dist/conf.txt", b"x=1", 0o644),
    ]);
    let server = FileServer::start(vec![
        ("bundle.tar.gz", archive.clone()),
        ("bundle.tgz", archive),
        ("tool", b"#!/bin/sh\n".to_vec()),
    ])
    .await;
    let client = reqwest::Client::new();
    let dir = tempfile::tempdir().expect("temp dir");

    let path = fetch(&client, &uri(server.url("bundle.tar.gz")), dir.path())
        .await
        .expect("fetched");
    assert_eq!(path, dir.path().join("bundle.tar.gz"));
    assert_eq!(
        std::fs::read(dir.path().join("dist/conf.txt")).expect("extracted"),
        b"x=1"
    );
    let mode = std::fs::metadata(dir.path().join("dist/run.sh"))
        .expect("run.sh")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755, "modes kept");

    // extract = false keeps the archive packed.
    let other = tempfile::tempdir().expect("temp dir");
    let packed = Uri {
        extract: Some(false),
        ..uri(server.url("bundle.tgz"))
    };
    fetch(&client, &packed, other.path())
        .await
        .expect("fetched");
    assert!(other.path().join("bundle.tgz").exists());
    assert!(!other.path().join("dist").exists());

    // executable + output_file: renamed, mode 755, not extracted.
    let exe = Uri {
        executable: Some(true),
        output_file: Some("my-tool".into()),
        ..uri(server.url("tool"))
    };
    let path = fetch(&client, &exe, other.path()).await.expect("fetched");
    assert_eq!(path, other.path().join("my-tool"));
    let mode = std::fs::metadata(&path).expect("tool").permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
}

#[tokio::test]
async fn failures_name_the_uri_and_the_cause() {
    let server = FileServer::start(vec![("present", b"x".to_vec())]).await;
    let client = reqwest::Client::new();
    let dir = tempfile::tempdir().expect("temp dir");

    let missing = server.url("absent");
    let err = fetch(&client, &uri(missing.clone()), dir.path())
        .await
        .expect_err("404");
    assert!(matches!(err, FetchError::Download { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&missing) && text.contains("404"), "{text}");

    let err = fetch(&client, &uri("https://127.0.0.1:1/x".into()), dir.path())
        .await
        .expect_err("scheme");
    assert!(
        matches!(err, FetchError::UnsupportedScheme { .. }),
        "{err:?}"
    );

    let escape = Uri {
        output_file: Some("../outside".into()),
        ..uri(server.url("present"))
    };
    let err = fetch(&client, &escape, dir.path())
        .await
        .expect_err("escape");
    assert!(matches!(err, FetchError::BadOutputName { .. }), "{err:?}");
    assert!(!dir.path().join("../outside").exists());

    let broken = FileServer::start(vec![("broken.tar.gz", b"not a tarball".to_vec())]).await;
    let err = fetch(&client, &uri(broken.url("broken.tar.gz")), dir.path())
        .await
        .expect_err("bad archive");
    assert!(matches!(err, FetchError::Extract { .. }), "{err:?}");
}
