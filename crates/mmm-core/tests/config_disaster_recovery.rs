//! The disaster-recovery keys of `[mirror]`: provenance, the cluster alias,
//! the offset-sync topic and the groups to sync; their defaults, their
//! errors, and that they reach the task data.

mod common;

use common::*;
use mmm_core::config::SchedulerConfig;
use mmm_core::scheduler::Event;
use mmm_core::task_data::{GroupSelection, TaskData};

const BASE: &str = "[mesos]\nmaster = \"127.0.0.1:5050\"\n[mirror]\ntopics = [\"t1\"]\n";

fn load(extra: &str) -> Result<SchedulerConfig, String> {
    SchedulerConfig::from_toml("mmm.toml", &format!("{BASE}{extra}")).map_err(|e| e.to_string())
}

#[test]
fn defaults_mark_provenance_write_syncs_and_sync_no_group() {
    let c = load("").expect("valid");
    assert!(c.mirror.provenance);
    assert_eq!(c.mirror.source_cluster_alias, None);
    assert_eq!(c.mirror.target_cluster_alias, None);
    assert_eq!(c.mirror.offset_sync_topic, "mmm-offset-syncs");
    assert_eq!(c.mirror.sync_groups, GroupSelection::None);
    assert_eq!(c.mirror.sync_groups_interval_ms, 10_000);
}

#[test]
fn sync_groups_is_a_list_or_a_regex() {
    let c = load("sync_groups = [\"billing\", \"audit\"]\n").expect("valid");
    assert_eq!(
        c.mirror.sync_groups,
        GroupSelection::List(vec!["billing".into(), "audit".into()])
    );
    let c = load("sync_groups = \"^app-.*\"\nsync_groups_interval_ms = 2000\n").expect("valid");
    assert_eq!(
        c.mirror.sync_groups,
        GroupSelection::Regex("^app-.*".into())
    );
    assert_eq!(c.mirror.sync_groups_interval_ms, 2000);
}

#[test]
fn bad_values_name_the_key_and_the_problem() {
    for (extra, needle) in [
        ("provenance = \"on\"\n", "[mirror].provenance"),
        (
            "source_cluster_alias = \"\"\n",
            "[mirror].source_cluster_alias",
        ),
        (
            "source_cluster_alias = \"a/b\"\n",
            "[mirror].source_cluster_alias",
        ),
        (
            "target_cluster_alias = \"\"\n",
            "[mirror].target_cluster_alias",
        ),
        (
            "offset_sync_topic = \"no spaces\"\n",
            "[mirror].offset_sync_topic",
        ),
        ("sync_groups = 3\n", "[mirror].sync_groups"),
        ("sync_groups = \"(\"\n", "invalid regex"),
        ("sync_groups = [\"\"]\n", "cannot be empty"),
        (
            "sync_groups_interval_ms = 0\n",
            "[mirror].sync_groups_interval_ms",
        ),
        (
            "partitioning = \"hash\"\nsync_groups = [\"g\"]\n",
            "partitioning = \"preserve\"",
        ),
    ] {
        let err = load(extra).expect_err("refused");
        assert!(err.contains(needle), "{extra}: {err}");
    }
}

#[test]
fn the_keys_travel_in_the_task_data() {
    let mut settings = settings();
    settings.mirror.provenance = false;
    settings.mirror.source_cluster_alias = Some("dc-west".into());
    settings.mirror.target_cluster_alias = Some("dc-east".into());
    settings.mirror.offset_sync_topic = "dr-syncs".into();
    settings.mirror.sync_groups = GroupSelection::Regex("app-.*".into());
    settings.mirror.sync_groups_interval_ms = 1500;
    let mut s = subscribed(settings);
    s.command(add(1), 0).expect("add");
    let actions = s.handle(Event::Offers(vec![offer("o", "h1", 4.0, 4096.0)]), 0);
    let task = launched(&actions).pop().expect("a launch");
    let data = TaskData::from_json(&task.data.expect("task data")).expect("valid task data");
    assert!(!data.provenance);
    assert_eq!(data.source_cluster_alias.as_deref(), Some("dc-west"));
    assert_eq!(data.target_cluster_alias.as_deref(), Some("dc-east"));
    assert_eq!(data.offset_sync_topic, "dr-syncs");
    assert_eq!(data.sync_groups, GroupSelection::Regex("app-.*".into()));
    assert_eq!(data.sync_groups_interval_ms, 1500);
}
