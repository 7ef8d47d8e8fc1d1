//! The configuration keys of the field-hardening: replication factor, stall
//! timeout, healthy run; and that they reach the task data.

use mmm_core::config::SchedulerConfig;

const BASE: &str = "[mesos]\nmaster = \"127.0.0.1:5050\"\n[mirror]\ntopics = [\"t1\"]\n";

#[test]
fn defaults_are_the_brokers_factor_five_minutes_and_ten_minutes() {
    let c = SchedulerConfig::from_toml("mmm.toml", BASE).expect("valid");
    assert_eq!(c.mirror.replication_factor, None);
    assert_eq!(c.mirror.stall_timeout_ms, 300_000);
    assert_eq!(c.scheduler.healthy_after_ms, 600_000);
}

#[test]
fn the_keys_are_read() {
    let text = format!(
        "{BASE}replication_factor = 3\nstall_timeout_ms = 60000\n[scheduler]\nhealthy_after_ms = 120000\n"
    );
    let c = SchedulerConfig::from_toml("mmm.toml", &text).expect("valid");
    assert_eq!(c.mirror.replication_factor, Some(3));
    assert_eq!(c.mirror.stall_timeout_ms, 60_000);
    assert_eq!(c.scheduler.healthy_after_ms, 120_000);
}

#[test]
fn bad_values_name_the_key() {
    for (extra, key) in [
        ("replication_factor = 0\n", "[mirror].replication_factor"),
        (
            "replication_factor = 40000\n",
            "[mirror].replication_factor",
        ),
        (
            "replication_factor = \"3\"\n",
            "[mirror].replication_factor",
        ),
        ("stall_timeout_ms = 0\n", "[mirror].stall_timeout_ms"),
        (
            "[scheduler]\nhealthy_after_ms = -1\n",
            "[scheduler].healthy_after_ms",
        ),
    ] {
        let err = SchedulerConfig::from_toml("mmm.toml", &format!("{BASE}{extra}"))
            .expect_err("refused")
            .to_string();
        assert!(err.contains(key), "{extra}: {err}");
    }
}
