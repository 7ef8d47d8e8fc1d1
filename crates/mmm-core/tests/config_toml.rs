//! The scheduler's TOML configuration: keys, defaults and every error.

use std::path::PathBuf;

use mmm_core::config::{
    ConfigError, MasterEndpoint, MasterSpec, Partitioning, SchedulerConfig, StorageSpec,
    TopicSelection,
};
use mmm_core::constraints::Constraint;

const FILE: &str = "mmm.toml";

fn load(text: &str) -> Result<SchedulerConfig, ConfigError> {
    SchedulerConfig::from_toml(FILE, text)
}

fn err(text: &str) -> String {
    let e = load(text).expect_err("must be refused");
    let msg = e.to_string();
    assert!(msg.starts_with("mmm.toml: "), "{msg}");
    msg
}

const MINIMAL: &str = "[mesos]\nmaster = \"127.0.0.1:5050\"\n[mirror]\ntopics = [\"t1\"]\n";

#[test]
fn the_contract_example_loads() {
    let text = r#"
[mesos]
master = "zk://127.0.0.1:2181/mesos"
framework_name = "mirror-maker-mesos"
user = ""
failover_timeout_secs = 2592000
principal = "mmm"
secret_file = "/etc/mmm/secret"

[api]
bind = "0.0.0.0:7000"
advertised_url = "http://10.0.0.5:7000"
token_file = "/etc/mmm/api-token"

[mirror]
topics = ["t1", "t2"]
offset_commit_interval_ms = 60000

[storage]
path = "mmm-state.json"

[executor]
dist_dir = "dist"
"#;
    let c = load(text).expect("loads");
    assert_eq!(
        c.mesos.master,
        MasterSpec::ZooKeeper {
            hosts: vec!["127.0.0.1:2181".into()],
            path: "/mesos".into()
        }
    );
    assert_eq!(c.mesos.user, None);
    assert_eq!(c.mesos.principal.as_deref(), Some("mmm"));
    assert_eq!(c.mesos.secret_file, Some(PathBuf::from("/etc/mmm/secret")));
    assert_eq!(c.api.bind, "0.0.0.0:7000");
    assert_eq!(
        c.api.advertised_url.as_deref(),
        Some("http://10.0.0.5:7000")
    );
    assert_eq!(c.api.token_file, Some(PathBuf::from("/etc/mmm/api-token")));
    assert_eq!(
        c.mirror.topics,
        TopicSelection::List(vec!["t1".into(), "t2".into()])
    );
    assert_eq!(c.storage, StorageSpec::File("mmm-state.json".into()));
    assert_eq!(c.executor.dist_dir, PathBuf::from("dist"));
}

#[test]
fn bind_port_0_means_any_free_port_and_only_0_is_special() {
    let c = load(&format!("{MINIMAL}[api]\nbind = \"127.0.0.1:0\"\n")).expect("port 0 loads");
    assert_eq!(c.api.bind, "127.0.0.1:0");
    for bad in [":0", "0", "127.0.0.1:00x"] {
        let err = load(&format!("{MINIMAL}[api]\nbind = \"{bad}\"\n")).expect_err(bad);
        assert!(err.to_string().contains("[api].bind"), "{bad}: {err}");
    }
}

#[test]
fn defaults_apply_to_absent_keys() {
    let c = load(MINIMAL).expect("loads");
    assert_eq!(c.mesos.framework_name, "mirror-maker-mesos");
    assert_eq!(c.mesos.failover_timeout_secs, 2_592_000);
    assert_eq!(c.mesos.user, None);
    assert_eq!(c.mesos.principal, None);
    assert_eq!(c.api.bind, "127.0.0.1:7000");
    assert_eq!(c.api.advertised_url, None);
    assert_eq!(c.mirror.offset_commit_interval_ms, 60_000);
    assert_eq!(c.mirror.partitioning, Partitioning::Preserve);
    assert!(c.mirror.create_topics);
    assert_eq!((c.mirror.cpus, c.mirror.mem), (0.2, 256.0));
    assert_eq!(c.storage, StorageSpec::File("mmm-state.json".into()));
    assert_eq!(c.executor.dist_dir, PathBuf::from("dist"));
    assert_eq!(c.scheduler.max_launch_attempts, 5);
    assert!(c.scheduler.constraints.is_empty());
}

#[test]
fn optional_operator_keys_load() {
    let text = format!(
        "{MINIMAL}partitioning = \"hash\"\ntarget_topic_prefix = \"dc1.\"\ncreate_topics = false\ncpus = 1\nmem = 512.5\n\
         [scheduler]\nmax_launch_attempts = 3\nrelaunch_backoff_ms = 100\nrelaunch_backoff_max_ms = 1000\n\
         refuse_seconds = 30\nconstraints = [\"hostname:unique\", \"rack:equals:r1\"]\n"
    );
    let c = load(&text).expect("loads");
    assert_eq!(c.mirror.partitioning, Partitioning::Hash);
    assert_eq!(c.mirror.target_topic_prefix, "dc1.");
    assert!(!c.mirror.create_topics);
    assert_eq!((c.mirror.cpus, c.mirror.mem), (1.0, 512.5));
    assert_eq!(c.scheduler.max_launch_attempts, 3);
    assert_eq!(c.scheduler.refuse_seconds, 30.0);
    assert_eq!(c.scheduler.constraints[0], Constraint::UniqueHost);
}

#[test]
fn master_forms_parse() {
    let ep = |tls, host: &str, port| MasterEndpoint {
        tls,
        host: host.into(),
        port,
    };
    assert_eq!(
        MasterSpec::parse("127.0.0.1:5050"),
        Ok(MasterSpec::Direct(vec![ep(false, "127.0.0.1", 5050)]))
    );
    assert_eq!(
        MasterSpec::parse("http://h1:5050,https://h2:5051/, h3"),
        Ok(MasterSpec::Direct(vec![
            ep(false, "h1", 5050),
            ep(true, "h2", 5051),
            ep(false, "h3", 5050)
        ]))
    );
    assert_eq!(
        MasterSpec::parse("[::1]:5050"),
        Ok(MasterSpec::Direct(vec![ep(false, "::1", 5050)]))
    );
    assert_eq!(ep(true, "::1", 1).base_url(), "https://[::1]:1");
    assert_eq!(ep(false, "h", 5050).base_url(), "http://h:5050");
    assert_eq!(
        MasterSpec::parse("zk://z1:2181,z2/mesos/"),
        Ok(MasterSpec::ZooKeeper {
            hosts: vec!["z1:2181".into(), "z2:2181".into()],
            path: "/mesos".into()
        })
    );
}

#[test]
fn bad_masters_name_the_key_and_problem() {
    for (master, expected) in [
        ("", "must not be empty"),
        ("h:notaport", "port \"notaport\""),
        ("h:0", "1 to 65535"),
        ("h:70000", "1 to 65535"),
        ("ftp://h:1", "unsupported scheme"),
        ("zk://h:2181", "no znode path"),
        ("zk://h:2181/", "empty znode path"),
        ("h1:5050,,h2:5050", "empty entry"),
        ("http://h:5050/api", "no path"),
    ] {
        let msg = err(&format!(
            "[mesos]\nmaster = \"{master}\"\n[mirror]\ntopics = [\"t\"]\n"
        ));
        assert!(msg.contains("[mesos].master"), "{master}: {msg}");
        assert!(msg.contains(expected), "{master}: {msg}");
    }
}

#[test]
fn storage_forms_parse() {
    let c = load(&format!("{MINIMAL}[storage]\npath = \"zk://z:2181/mmm\"\n")).expect("loads");
    assert_eq!(
        c.storage,
        StorageSpec::ZooKeeper {
            hosts: vec!["z:2181".into()],
            path: "/mmm".into()
        }
    );
    let msg = err(&format!("{MINIMAL}[storage]\npath = \"s3://b/x\"\n"));
    assert!(
        msg.contains("[storage].path") && msg.contains("unsupported scheme"),
        "{msg}"
    );
    let msg = err(&format!("{MINIMAL}[storage]\npath = \"zk://z:2181\"\n"));
    assert!(msg.contains("[storage].path"), "{msg}");
}

#[test]
fn unknown_keys_and_sections_are_named() {
    let msg = err(&format!("{MINIMAL}[api]\nbnd = \"x\"\n"));
    assert_eq!(msg, "mmm.toml: unknown key [api].bnd");
    let msg = err(&format!("{MINIMAL}[extra]\na = 1\n"));
    assert_eq!(msg, "mmm.toml: unknown key [extra]");
    let msg = err(&format!("top = 1\n{MINIMAL}"));
    assert_eq!(msg, "mmm.toml: unknown key top");
}

#[test]
fn wrong_types_name_key_and_types() {
    let msg = err("[mesos]\nmaster = 5050\n[mirror]\ntopics = [\"t\"]\n");
    assert_eq!(
        msg,
        "mmm.toml: [mesos].master: expected a string, found the integer 5050"
    );
    let msg = err(
        "[mesos]\nmaster = \"h:1\"\nfailover_timeout_secs = \"10\"\n[mirror]\ntopics = [\"t\"]\n",
    );
    assert!(msg.contains("[mesos].failover_timeout_secs: expected a non-negative integer, found the string \"10\""), "{msg}");
    let msg =
        err("[mesos]\nmaster = \"h:1\"\nfailover_timeout_secs = -1\n[mirror]\ntopics = [\"t\"]\n");
    assert!(msg.contains("must not be negative"), "{msg}");
    let msg = err("[mesos]\nmaster = \"h:1\"\n[mirror]\ntopics = \"t1\"\n");
    assert!(
        msg.contains("[mirror].topics: expected an array of strings, found the string"),
        "{msg}"
    );
    let msg = err("[mesos]\nmaster = \"h:1\"\n[mirror]\ntopics = [1]\n");
    assert!(
        msg.contains("[mirror].topics: expected an array of strings, found the integer 1"),
        "{msg}"
    );
    let msg = err(&format!("{MINIMAL}create_topics = \"yes\"\n"));
    assert!(
        msg.contains("[mirror].create_topics: expected true or false"),
        "{msg}"
    );
    let msg = err("mesos = 1\n");
    assert!(msg.contains("[mesos]: expected a table"), "{msg}");
}

#[test]
fn topics_rules() {
    let both = err("[mesos]\nmaster = \"h:1\"\n[mirror]\ntopics = [\"t\"]\ntopics_regex = \"a\"\n");
    assert!(both.contains("not both"), "{both}");
    let neither = err("[mesos]\nmaster = \"h:1\"\n");
    assert!(
        neither.contains("missing [mirror].topics or [mirror].topics_regex"),
        "{neither}"
    );
    let bad_regex = err("[mesos]\nmaster = \"h:1\"\n[mirror]\ntopics_regex = \"a(\"\n");
    assert!(
        bad_regex.contains("[mirror].topics_regex: invalid regex"),
        "{bad_regex}"
    );
    let empty = err("[mesos]\nmaster = \"h:1\"\n[mirror]\ntopics = []\n");
    assert!(empty.contains("at least one topic"), "{empty}");
    let bad_name = err("[mesos]\nmaster = \"h:1\"\n[mirror]\ntopics = [\"a b\"]\n");
    assert!(
        bad_name.contains("\"a b\" is not a valid Kafka topic name"),
        "{bad_name}"
    );
    let c = load("[mesos]\nmaster = \"h:1\"\n[mirror]\ntopics_regex = \"^orders\\\\..*\"\n")
        .expect("loads");
    match c.mirror.topics {
        TopicSelection::Regex(p) => assert_eq!(p.as_str(), "^orders\\..*"),
        other => panic!("expected a regex, got {other:?}"),
    }
}

#[test]
fn value_rules() {
    for (extra, expected) in [
        (
            "[mirror]\noffset_commit_interval_ms = 0\n",
            "[mirror].offset_commit_interval_ms: must be greater than 0",
        ),
        (
            "[mirror]\npartitioning = \"random\"\n",
            "\"random\" is not \"preserve\" or \"hash\"",
        ),
        (
            "[mirror]\ntarget_topic_suffix = \"/x\"\n",
            "[mirror].target_topic_suffix: \"/x\" may only hold",
        ),
        (
            "[mirror]\ncpus = 0\n",
            "[mirror].cpus: must be a positive number",
        ),
        (
            "[mirror]\nmem = nan\n",
            "[mirror].mem: must be a positive number",
        ),
        (
            "[api]\nbind = \"7000\"\n",
            "[api].bind: \"7000\" has no port",
        ),
        (
            "[api]\nbind = \":7000\"\n",
            "[api].bind: \":7000\" has no host",
        ),
        (
            "[api]\nadvertised_url = \"10.0.0.5:7000\"\n",
            "[api].advertised_url",
        ),
        (
            "[scheduler]\nmax_launch_attempts = 0\n",
            "[scheduler].max_launch_attempts: must be greater than 0",
        ),
        (
            "[scheduler]\nrelaunch_backoff_ms = 10\nrelaunch_backoff_max_ms = 5\n",
            "is below relaunch_backoff_ms",
        ),
        (
            "[scheduler]\nconstraints = [\"rack:near:x\"]\n",
            "[scheduler].constraints",
        ),
        (
            "[mesos]\nframework_name = \"\"\n",
            "[mesos].framework_name: must not be empty",
        ),
    ] {
        // put the extra section's keys where they belong
        let text = if extra.starts_with("[mirror]") {
            format!("{MINIMAL}{}", extra.trim_start_matches("[mirror]\n"))
        } else if extra.starts_with("[mesos]") {
            format!(
                "[mesos]\nmaster = \"h:1\"\n{}[mirror]\ntopics = [\"t\"]\n",
                extra.trim_start_matches("[mesos]\n")
            )
        } else {
            format!("{MINIMAL}{extra}")
        };
        let msg = err(&text);
        assert!(msg.contains(expected), "{extra}: {msg}");
    }
}

#[test]
fn syntax_errors_name_the_file_and_position() {
    let msg = err("[mesos\nmaster = 1");
    assert!(msg.starts_with("mmm.toml: invalid TOML"), "{msg}");
    assert!(msg.contains("line 1"), "{msg}");
}

#[test]
fn legacy_properties_errors() {
    let e = SchedulerConfig::from_legacy_properties("mmm.properties", "mmm.topics=t\n")
        .expect_err("no master");
    assert_eq!(e.to_string(), "mmm.properties: missing mesos.master");
    let e = SchedulerConfig::from_legacy_properties(
        "mmm.properties",
        "mesos.master=h:5050\nmmm.topics=t\nmmm.colour=red\n",
    )
    .expect_err("unknown");
    assert_eq!(e.to_string(), "mmm.properties: unknown key mmm.colour");
    let e = SchedulerConfig::from_legacy_properties(
        "mmm.properties",
        "mesos.master=h:5050\nmmm.topics=t\nmmm.offset.commit.interval.ms=soon\n",
    )
    .expect_err("bad interval");
    assert!(
        e.to_string().contains("mmm.offset.commit.interval.ms"),
        "{e}"
    );
    let e = SchedulerConfig::from_legacy_properties("mmm.properties", "a=\\u00")
        .expect_err("bad escape");
    assert!(e.to_string().starts_with("mmm.properties:1:"), "{e}");
}

proptest::proptest! {
    #[test]
    fn toml_loader_never_panics(text in "\\PC{0,200}") {
        let _ = SchedulerConfig::from_toml(FILE, &text);
    }

    #[test]
    fn toml_loader_never_panics_on_near_valid_input(
        master in "[a-z:/0-9,\\[\\].]{0,24}",
        topics in "[a-z\"\\[\\], ]{0,16}",
        extra in "(cpus|mem|partitioning|offset_commit_interval_ms) = [0-9a-z\".-]{0,6}",
    ) {
        let text = format!("[mesos]\nmaster = \"{master}\"\n[mirror]\ntopics = {topics}\n{extra}\n");
        let _ = SchedulerConfig::from_toml(FILE, &text);
    }

    #[test]
    fn legacy_loader_never_panics(text in "\\PC{0,200}") {
        let _ = SchedulerConfig::from_legacy_properties("mmm.properties", &text);
    }
}

#[test]
fn roles_load_and_their_mistakes_are_named() {
    let c = load(&MINIMAL.replace("[mesos]\n", "[mesos]\nroles = [\"mirror\", \"dr\"]\n"))
        .expect("loads");
    assert_eq!(c.mesos.roles, ["mirror", "dr"]);
    assert_eq!(c.mesos.role, None);
    let c = load(&MINIMAL.replace("[mesos]\n", "[mesos]\nrole = \"mirror\"\n")).expect("loads");
    assert_eq!(c.mesos.role.as_deref(), Some("mirror"));
    assert!(c.mesos.roles.is_empty());
    for (roles, problem) in [
        ("roles = []", "needs at least one role"),
        ("roles = [\"a\", \"a\"]", "\"a\" is listed twice"),
        ("roles = [\"a b\"]", "\"a b\" is not a role name"),
        (
            "role = \"a\"\nroles = [\"b\"]",
            "set either role or roles, not both",
        ),
    ] {
        let msg = err(&MINIMAL.replace("[mesos]\n", &format!("[mesos]\n{roles}\n")));
        assert!(
            msg.contains("[mesos].roles") && msg.contains(problem),
            "{roles}: {msg}"
        );
    }
}

#[test]
fn master_scheme_and_ca_file() {
    let c = load(MINIMAL).expect("valid");
    assert!(!c.mesos.master_tls);
    assert_eq!(c.mesos.ca_file, None);
    let c = load(
        "[mesos]\nmaster = \"m1:5050,https://m2:5443\"\nmaster_scheme = \"https\"\n\
         ca_file = \"/etc/mmm/ca.pem\"\n[mirror]\ntopics = [\"t1\"]\n",
    )
    .expect("valid");
    assert!(c.mesos.master_tls);
    assert_eq!(c.mesos.ca_file, Some(PathBuf::from("/etc/mmm/ca.pem")));
    match &c.mesos.master {
        MasterSpec::Direct(endpoints) => assert!(endpoints.iter().all(|e| e.tls), "{endpoints:?}"),
        other => panic!("direct masters expected: {other:?}"),
    }
    let c = load(
        "[mesos]\nmaster = \"zk://z:2181/mesos\"\nmaster_scheme = \"https\"\n[mirror]\ntopics = [\"t1\"]\n",
    )
    .expect("valid");
    assert!(c.mesos.master_tls);
    let msg =
        err("[mesos]\nmaster = \"m:5050\"\nmaster_scheme = \"ftp\"\n[mirror]\ntopics = [\"t1\"]\n");
    assert!(
        msg.contains("[mesos].master_scheme") && msg.contains("\"ftp\""),
        "{msg}"
    );
    let msg = err(
        "[mesos]\nmaster = \"http://m:5050\"\nmaster_scheme = \"https\"\n[mirror]\ntopics = [\"t1\"]\n",
    );
    assert!(msg.contains("conflicts with the master URL"), "{msg}");
}

#[test]
fn an_api_open_to_the_network_needs_a_token_or_insecure() {
    let api = |extra: &str| {
        load(&format!(
            "[mesos]\nmaster = \"m:5050\"\n[mirror]\ntopics = [\"t\"]\n[api]\n{extra}\n"
        ))
        .expect("loads")
        .api
    };
    assert_eq!(api("bind = \"127.0.0.1:7000\"").check_exposure(), Ok(false));
    assert_eq!(api("bind = \"localhost:7000\"").check_exposure(), Ok(false));
    assert_eq!(api("bind = \"127.0.0.1:0\"").check_exposure(), Ok(false));
    assert_eq!(api("bind = \"[::1]:0\"").check_exposure(), Ok(false));
    assert_eq!(api("bind = \"localhost:0\"").check_exposure(), Ok(false));
    assert!(api("bind = \"0.0.0.0:0\"").check_exposure().is_err());
    let open = api("bind = \"0.0.0.0:7000\"").check_exposure();
    assert!(
        open.as_ref()
            .is_err_and(|e| e.contains("token_file") && e.contains("insecure")),
        "{open:?}"
    );
    assert_eq!(
        api("bind = \"0.0.0.0:7000\"\ninsecure = true").check_exposure(),
        Ok(true)
    );
    assert_eq!(
        api("bind = \"10.0.0.5:7000\"\ntoken_file = \"/etc/t\"").check_exposure(),
        Ok(false)
    );
    let hosts = api("allowed_hosts = [\"mmm.example\", \"lb:443\"]");
    assert_eq!(hosts.allowed_hosts, ["mmm.example", "lb:443"]);
}

#[test]
fn tls_needs_both_files_and_an_https_advertised_url() {
    let base = "[mesos]\nmaster = \"m:5050\"\n[mirror]\ntopics = [\"t\"]\n[api]\n";
    let c = load(&format!(
        "{base}tls_cert = \"/etc/c.pem\"\ntls_key = \"/etc/k.pem\"\n"
    ))
    .expect("loads");
    let tls = c.api.tls.expect("tls");
    assert_eq!(tls.cert, PathBuf::from("/etc/c.pem"));
    assert!(err(&format!("{base}tls_cert = \"/etc/c.pem\"\n")).contains("tls_key"));
    assert!(err(&format!(
        "{base}tls_cert = \"/c\"\ntls_key = \"/k\"\nadvertised_url = \"http://h:1\"\n"
    ))
    .contains("https://"));
    assert!(err(&format!("{base}allowed_hosts = [\"a/b\"]\n")).contains("allowed_hosts"));
    let zk = "[storage]\nzk_auth_file = \"/etc/zk\"\n";
    assert!(err(&format!("{base}{zk}")).contains("zk://"));
}
