//! The scheduler's behaviour, one rule per test, through the public API.

mod common;

use bytes::Bytes;
use common::*;
use mesos_proto::ids;
use mesos_proto::v1::{self, TaskState};
use mmm_core::constraints::Constraint;
use mmm_core::model::{Cluster, ServerState};
use mmm_core::scheduler::{Action, AddServers, Command, CommandError, Event, Scheduler};
use mmm_core::task_data::{TaskData, TopicSelection};

/// Adds one server and launches it on one offer; returns its task id.
fn launch_one(s: &mut Scheduler, now: u64) -> String {
    s.command(add(1), now).expect("add");
    let actions = s.handle(
        Event::Offers(vec![offer("o-launch", "h1", 4.0, 4096.0)]),
        now,
    );
    let tasks = launched(&actions);
    assert_eq!(tasks.len(), 1, "{actions:?}");
    tasks[0].task_id.value.clone()
}

fn run(s: &mut Scheduler, task: &str, now: u64) {
    s.handle(
        Event::Update(status(task, "agent-h1", TaskState::TaskRunning, Some("r"))),
        now,
    );
}

#[test]
fn first_subscription_stores_the_framework_id_reconciles_and_suppresses() {
    let mut s = Scheduler::new(settings(), Cluster::new(), 1);
    let actions = s.handle(
        Event::Subscribed {
            framework_id: ids::framework_id("fw-9"),
        },
        0,
    );
    match &actions[..] {
        [Action::Persist(c), Action::Reconcile { tasks }, Action::Suppress] => {
            assert_eq!(c.framework_id.as_deref(), Some("fw-9"));
            assert!(tasks.is_empty(), "implicit reconciliation");
        }
        other => panic!("unexpected actions {other:?}"),
    }
    assert_eq!(s.framework_id(), Some("fw-9"));
    assert!(s.is_subscribed());
    // the same id again changes nothing to store
    let again = s.handle(
        Event::Subscribed {
            framework_id: ids::framework_id("fw-9"),
        },
        1,
    );
    assert!(!again.iter().any(|a| matches!(a, Action::Persist(_))));
}

#[test]
fn resubscription_reconciles_known_tasks_explicitly_then_implicitly() {
    let mut s = subscribed(settings());
    let task = launch_one(&mut s, 0);
    s.handle(Event::Disconnected, 1);
    let actions = s.handle(
        Event::Subscribed {
            framework_id: ids::framework_id("fw-1"),
        },
        2,
    );
    let reconciles: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Reconcile { tasks } => Some(tasks.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(reconciles.len(), 2, "{actions:?}");
    assert_eq!(reconciles[0].len(), 1);
    assert_eq!(reconciles[0][0].0.value, task);
    assert_eq!(reconciles[0][0].1, Some(ids::agent_id("agent-h1")));
    assert!(reconciles[1].is_empty());
}

#[test]
fn a_restored_cluster_is_reconciled_after_restart() {
    let mut s = subscribed(settings());
    let task = launch_one(&mut s, 0);
    run(&mut s, &task, 1);
    let snapshot = Cluster::from_json(&s.cluster().to_json()).expect("round trip");
    let mut restarted = Scheduler::new(settings(), snapshot, 99);
    let actions = restarted.handle(
        Event::Subscribed {
            framework_id: ids::framework_id("fw-1"),
        },
        5,
    );
    assert!(
        matches!(&actions[0], Action::Reconcile { tasks } if tasks.len() == 1 && tasks[0].0.value == task)
    );
    assert_eq!(
        restarted.cluster().get(1).expect("server").state,
        ServerState::Running
    );
}

#[test]
fn add_persists_then_revives() {
    let mut s = subscribed(settings());
    let (outcome, actions) = s.command(add(2), 10).expect("add");
    assert_eq!(outcome.ids, vec![1, 2]);
    assert!(outcome.message.contains("added 2"), "{}", outcome.message);
    match &actions[..] {
        [Action::Persist(c), Action::Revive] => {
            assert_eq!(c.servers.len(), 2);
            assert!(c.servers.values().all(|s| s.state == ServerState::Added));
        }
        other => panic!("unexpected {other:?}"),
    }
    // already revived: a second add does not revive again
    let (_, actions) = s.command(add(1), 11).expect("add");
    assert!(!actions.contains(&Action::Revive));
}

#[test]
fn add_takes_defaults_explicit_ids_and_overrides() {
    let mut s = subscribed(settings());
    let (outcome, _) = s
        .command(
            Command::Add(AddServers {
                count: 1,
                id: Some(7),
                topics_regex: Some("^orders\\..*".into()),
                consumer: [("fetch.max.wait.ms".to_string(), "50".to_string())].into(),
                producer: [("key.serializer".to_string(), "x".to_string())].into(),
                ..AddServers::default()
            }),
            0,
        )
        .expect("add");
    assert_eq!(outcome.ids, vec![7]);
    assert_eq!(outcome.warnings.len(), 1, "{:?}", outcome.warnings);
    assert!(outcome.warnings[0].contains("key.serializer"));
    let server = s.cluster().get(7).expect("server 7");
    assert_eq!((server.task.cpus, server.task.mem), (0.2, 256.0));
    assert_eq!(server.task.topics_regex.as_deref(), Some("^orders\\..*"));
    assert_eq!(server.task.consumer["fetch.wait.max.ms"], "50");
    let (outcome, _) = s
        .command(
            Command::Add(AddServers {
                count: 1,
                ..AddServers::default()
            }),
            0,
        )
        .expect("add");
    assert_eq!(outcome.ids, vec![8]);
    assert_eq!(
        s.cluster().get(8).expect("8").task.topics,
        vec!["t1".to_string()]
    );
}

#[test]
fn bad_commands_are_refused_and_change_nothing() {
    let mut s = subscribed(settings());
    s.command(add(1), 0).expect("add");
    let before = s.cluster().clone();
    let cases: Vec<(Command, &str)> = vec![
        (add(0), "count must be at least 1, got 0"),
        (add(-3), "count must be at least 1, got -3"),
        (add(1001), "count 1001 is above the maximum of 1000"),
        (add(i64::MAX), "is above the maximum"),
        (
            Command::Add(AddServers {
                count: 1,
                cpus: Some(f64::NAN),
                ..AddServers::default()
            }),
            "cpus must be a positive number",
        ),
        (
            Command::Add(AddServers {
                count: 1,
                cpus: Some(-1.0),
                ..AddServers::default()
            }),
            "cpus must be a positive number",
        ),
        (
            Command::Add(AddServers {
                count: 1,
                mem: Some(0.0),
                ..AddServers::default()
            }),
            "mem must be a positive number",
        ),
        (
            Command::Add(AddServers {
                count: 1,
                mem: Some(f64::INFINITY),
                ..AddServers::default()
            }),
            "mem must be a positive number",
        ),
        (
            Command::Add(AddServers {
                count: 1,
                id: Some(1),
                ..AddServers::default()
            }),
            "server id 1 is already taken",
        ),
        (
            Command::Add(AddServers {
                count: 2,
                id: Some(5),
                ..AddServers::default()
            }),
            "explicit id needs count 1",
        ),
        (
            Command::Add(AddServers {
                count: 1,
                topics: Some(vec!["a".into()]),
                topics_regex: Some("b".into()),
                ..AddServers::default()
            }),
            "not both",
        ),
        (
            Command::Add(AddServers {
                count: 1,
                topics: Some(vec![]),
                ..AddServers::default()
            }),
            "empty list",
        ),
        (
            Command::Add(AddServers {
                count: 1,
                topics: Some(vec!["bad topic".into()]),
                ..AddServers::default()
            }),
            "not a valid Kafka topic name",
        ),
        (
            Command::Add(AddServers {
                count: 1,
                topics_regex: Some("(".into()),
                ..AddServers::default()
            }),
            "topics_regex \"(\" is invalid",
        ),
        (
            Command::Add(AddServers {
                count: 1,
                consumer: [("no.such".to_string(), "1".to_string())].into(),
                ..AddServers::default()
            }),
            "unknown consumer properties: no.such",
        ),
        (
            Command::Delete {
                ids: vec![1, 99, 98],
            },
            "unknown server ids: 99, 98",
        ),
        (Command::Delete { ids: vec![] }, "no server ids given"),
        (Command::Start { ids: vec![5] }, "unknown server ids: 5"),
        (Command::Stop { ids: vec![6] }, "unknown server ids: 6"),
    ];
    for (cmd, expected) in cases {
        let err = s.command(cmd.clone(), 1).expect_err("must be refused");
        assert!(err.to_string().contains(expected), "{cmd:?}: {err}");
        assert_eq!(s.cluster(), &before, "{cmd:?} changed the cluster");
    }
}

#[test]
fn offers_launch_pending_servers_and_decline_the_rest() {
    let mut s = subscribed(settings());
    s.command(add(2), 0).expect("add");
    let actions = s.handle(
        Event::Offers(vec![
            offer("small", "h0", 0.1, 64.0),
            // two tasks of 0.5 cpus and 128 MB, each with its executor's 0.1 and 32
            offer("big", "h1", 1.2, 320.0),
            offer("spare", "h2", 8.0, 8192.0),
        ]),
        5,
    );
    assert!(has_persist(&actions), "{actions:?}");
    for task in launched(&actions) {
        let executor = task.executor.expect("executor");
        let sum = |rs: &[v1::Resource], name: &str| mesos_proto::resources::scalar_sum(rs, name);
        assert_eq!(
            (sum(&task.resources, "cpus"), sum(&task.resources, "mem")),
            (0.5, 128.0)
        );
        assert_eq!(
            (
                sum(&executor.resources, "cpus"),
                sum(&executor.resources, "mem")
            ),
            (0.1, 32.0)
        );
    }
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::Launch { refuse_seconds, .. } if *refuse_seconds == 7.0)));
    let launches: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Launch {
                offer_id, tasks, ..
            } => Some((offer_id.value.clone(), tasks.len())),
            _ => None,
        })
        .collect();
    assert_eq!(launches, vec![("big".to_string(), 2)]);
    assert_eq!(
        declined(&actions),
        vec!["small".to_string(), "spare".to_string()]
    );
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::Decline { refuse_seconds, .. } if *refuse_seconds == 7.0)));
    assert_eq!(
        actions.last(),
        Some(&Action::Suppress),
        "nothing pending any more"
    );
    for server in s.cluster().servers.values() {
        assert_eq!(server.state, ServerState::Starting);
        assert_eq!(server.hostname.as_deref(), Some("h1"));
        assert_eq!(server.launch_attempts, 1);
    }
}

#[test]
fn the_task_info_follows_the_contract() {
    let mut s = subscribed(settings());
    s.command(add(1), 0).expect("add");
    let actions = s.handle(
        Event::Offers(vec![with_allocation(offer("o", "h1", 1.0, 512.0), "mmm")]),
        0,
    );
    let task = launched(&actions).pop().expect("one task");
    assert_eq!(task.name, "mmm-1");
    assert!(
        task.task_id.value.starts_with("mmm-1-"),
        "{}",
        task.task_id.value
    );
    assert_eq!(task.agent_id, ids::agent_id("agent-h1"));
    let executor = task.executor.as_ref().expect("executor");
    assert_eq!(
        executor.r#type,
        Some(v1::executor_info::Type::Custom as i32)
    );
    assert!(executor.executor_id.value.starts_with("mmm-executor-1-"));
    assert_eq!(executor.framework_id, Some(ids::framework_id("fw-1")));
    assert_eq!(
        executor.shutdown_grace_period.map(|d| d.nanoseconds),
        Some(5_000_000_000)
    );
    let command = executor.command.as_ref().expect("command");
    assert_eq!(command.value.as_deref(), Some("./mmm-executor"));
    assert_eq!(command.uris.len(), 1);
    assert_eq!(
        command.uris[0].value,
        "http://127.0.0.1:7000/dist/mmm-executor"
    );
    assert_eq!(
        (command.uris[0].executable, command.uris[0].extract),
        (Some(true), Some(false))
    );
    let amounts: Vec<_> = task
        .resources
        .iter()
        .map(|r| {
            (
                r.name.as_str(),
                r.scalar.map(|s| s.value),
                r.allocation_info.clone().and_then(|a| a.role),
            )
        })
        .collect();
    assert_eq!(
        amounts,
        vec![
            ("cpus", Some(0.5), Some("mmm".to_string())),
            ("mem", Some(128.0), Some("mmm".to_string()))
        ]
    );
    let data = TaskData::from_json(task.data.as_ref().expect("data")).expect("valid task data");
    assert_eq!(data.server_id, 1);
    assert_eq!(data.consumer["group.id"], "g");
    assert_eq!(data.producer["bootstrap.servers"], "dst:9092");
    assert_eq!(data.topics, TopicSelection::List(vec!["t1".into()]));
    assert_eq!(data.offset_commit_interval_ms, 60_000);
    // without allocation info in the offer, none is invented
    s.command(add(1), 1).expect("add");
    let actions = s.handle(Event::Offers(vec![offer("o2", "h2", 1.0, 512.0)]), 1);
    let task = launched(&actions).pop().expect("one task");
    assert!(task.resources.iter().all(|r| r.allocation_info.is_none()));
}

#[test]
fn per_server_overrides_reach_the_task_data() {
    let mut s = subscribed(settings());
    s.command(
        Command::Add(AddServers {
            count: 1,
            consumer: [("group.id".to_string(), "other".to_string())].into(),
            topics: Some(vec!["a".into(), "b".into()]),
            ..AddServers::default()
        }),
        0,
    )
    .expect("add");
    let actions = s.handle(Event::Offers(vec![offer("o", "h1", 1.0, 512.0)]), 0);
    let task = launched(&actions).pop().expect("task");
    let data = TaskData::from_json(task.data.as_ref().expect("data")).expect("valid");
    assert_eq!(data.consumer["group.id"], "other");
    assert_eq!(data.consumer["bootstrap.servers"], "src:9092");
    assert_eq!(
        data.topics,
        TopicSelection::List(vec!["a".into(), "b".into()])
    );
}

#[test]
fn one_task_per_host_and_attribute_constraints() {
    let mut settings = settings();
    settings.tuning.constraints = vec![
        Constraint::parse("hostname:unique").expect("c"),
        Constraint::parse("rack:like:r[12]").expect("c"),
    ];
    let mut s = subscribed(settings);
    s.command(add(3), 0).expect("add");
    let actions = s.handle(
        Event::Offers(vec![
            with_attribute(offer("a", "h1", 8.0, 8192.0), "rack", "r1"),
            with_attribute(offer("b", "h2", 8.0, 8192.0), "rack", "r3"),
            offer("c", "h3", 8.0, 8192.0),
            with_attribute(offer("d", "h4", 8.0, 8192.0), "rack", "r2"),
        ]),
        0,
    );
    let hosts: Vec<_> = launched(&actions)
        .iter()
        .map(|t| t.agent_id.value.clone())
        .collect();
    assert_eq!(hosts, vec!["agent-h1".to_string(), "agent-h4".to_string()]);
    assert_eq!(declined(&actions), vec!["b".to_string(), "c".to_string()]);
    // a later offer on a busy host is declined too
    let actions = s.handle(
        Event::Offers(vec![with_attribute(
            offer("e", "h1", 8.0, 8192.0),
            "rack",
            "r1",
        )]),
        1,
    );
    assert!(launched(&actions).is_empty());
    assert_eq!(declined(&actions), vec!["e".to_string()]);
}

#[test]
fn updates_with_uuid_are_acknowledged_and_running_is_recorded() {
    let mut s = subscribed(settings());
    let task = launch_one(&mut s, 0);
    let actions = s.handle(
        Event::Update(status(
            &task,
            "agent-h1",
            TaskState::TaskRunning,
            Some("u1"),
        )),
        3,
    );
    assert!(has_persist(&actions));
    assert_eq!(acks(&actions), vec![(task.clone(), Bytes::from("u1"))]);
    let server = s.cluster().get(1).expect("server");
    assert_eq!(server.state, ServerState::Running);
    assert_eq!(server.launch_attempts, 1, "kept until a healthy run");
    assert_eq!(server.history.back().map(|h| h.at_ms), Some(3));
    // reconciliation answers carry no uuid and are not acknowledged
    let actions = s.handle(
        Event::Update(status(&task, "agent-h1", TaskState::TaskRunning, None)),
        4,
    );
    assert!(actions.is_empty(), "{actions:?}");
}

#[test]
fn killing_keeps_running_and_records_the_message() {
    let mut s = subscribed(settings());
    let task = launch_one(&mut s, 0);
    run(&mut s, &task, 1);
    let actions = s.handle(
        Event::Update(status(&task, "agent-h1", TaskState::TaskKilling, Some("k"))),
        2,
    );
    assert_eq!(acks(&actions).len(), 1);
    let server = s.cluster().get(1).expect("server");
    assert_eq!(server.state, ServerState::Running);
    assert!(server
        .message
        .as_deref()
        .is_some_and(|m| m.contains("TASK_KILLING")));
}

#[test]
fn failed_tasks_are_relaunched_with_backoff_then_marked_failed() {
    let mut s = subscribed(settings());
    let mut task = launch_one(&mut s, 0);
    let mut now = 0;
    let mut previous_delay = 0;
    for attempt in 1..=3u64 {
        now += 100;
        let actions = s.handle(
            Event::Update(status(&task, "agent-h1", TaskState::TaskFailed, Some("f"))),
            now,
        );
        assert!(has_persist(&actions));
        let server = s.cluster().get(1).expect("server").clone();
        if attempt == 3 {
            assert_eq!(server.state, ServerState::Failed);
            assert!(
                server
                    .message
                    .as_deref()
                    .is_some_and(|m| m.contains("gave up after 3 launches")),
                "{:?}",
                server.message
            );
            assert!(server.task_id.is_none());
            let later = s.handle(
                Event::Offers(vec![offer("late", "h1", 4.0, 4096.0)]),
                now + 100_000,
            );
            assert!(launched(&later).is_empty());
            return;
        }
        assert_eq!(server.state, ServerState::Starting);
        let retry = server.next_retry_ms.expect("retry time");
        let delay = retry - now;
        let full = BASE_BACKOFF_MS << (attempt - 1);
        assert!(
            delay >= full / 2 && delay <= full,
            "attempt {attempt}: delay {delay}"
        );
        assert!(delay + full / 2 > previous_delay);
        previous_delay = delay;
        assert!(
            !actions.contains(&Action::Revive),
            "nothing is due yet: {actions:?}"
        );
        assert_eq!(s.offers_suppressed(), Some(true));
        // before the retry time offers are declined
        let early = s.handle(
            Event::Offers(vec![offer(&format!("early{attempt}"), "h1", 4.0, 4096.0)]),
            retry - 1,
        );
        assert!(launched(&early).is_empty());
        // the tick at the retry time revives
        let tick = s.handle(Event::Tick, retry);
        assert!(tick.contains(&Action::Revive), "{tick:?}");
        now = retry;
        let actions = s.handle(
            Event::Offers(vec![offer(&format!("retry{attempt}"), "h1", 4.0, 4096.0)]),
            now,
        );
        let tasks = launched(&actions);
        assert_eq!(tasks.len(), 1);
        assert_ne!(tasks[0].task_id.value, task);
        task = tasks[0].task_id.value.clone();
    }
}

#[test]
fn gone_and_lost_tasks_are_relaunched() {
    for state in [
        TaskState::TaskGone,
        TaskState::TaskLost,
        TaskState::TaskDropped,
        TaskState::TaskError,
    ] {
        let mut s = subscribed(settings());
        let task = launch_one(&mut s, 0);
        run(&mut s, &task, 1);
        s.handle(
            Event::Update(status(&task, "agent-h1", state, Some("x"))),
            2,
        );
        let server = s.cluster().get(1).expect("server");
        assert_eq!(server.state, ServerState::Starting, "{state:?}");
        assert!(server.task_id.is_none());
        assert!(server.next_retry_ms.is_some());
    }
}

#[test]
fn finished_tasks_are_marked_finished() {
    let mut s = subscribed(settings());
    let task = launch_one(&mut s, 0);
    run(&mut s, &task, 1);
    s.handle(
        Event::Update(status(
            &task,
            "agent-h1",
            TaskState::TaskFinished,
            Some("x"),
        )),
        2,
    );
    let server = s.cluster().get(1).expect("server");
    assert_eq!(server.state, ServerState::Finished);
    assert!(server.task_id.is_none());
}

#[test]
fn stop_kills_then_start_relaunches() {
    let mut s = subscribed(settings());
    let task = launch_one(&mut s, 0);
    run(&mut s, &task, 1);
    let (_, actions) = s.command(Command::Stop { ids: vec![1] }, 2).expect("stop");
    assert!(has_persist(&actions));
    assert_eq!(kills(&actions), vec![task.clone()]);
    assert_eq!(s.cluster().get(1).expect("s").state, ServerState::Running);
    s.handle(
        Event::Update(status(&task, "agent-h1", TaskState::TaskKilled, Some("k"))),
        3,
    );
    assert_eq!(s.cluster().get(1).expect("s").state, ServerState::Stopped);
    let offers = s.handle(Event::Offers(vec![offer("o2", "h1", 4.0, 4096.0)]), 4);
    assert!(
        launched(&offers).is_empty(),
        "a stopped server is not launched"
    );
    let (_, actions) = s
        .command(Command::Start { ids: vec![1] }, 5)
        .expect("start");
    assert!(actions.contains(&Action::Revive), "{actions:?}");
    assert_eq!(s.cluster().get(1).expect("s").state, ServerState::Starting);
    let offers = s.handle(Event::Offers(vec![offer("o3", "h1", 4.0, 4096.0)]), 6);
    assert_eq!(launched(&offers).len(), 1);
}

#[test]
fn stopping_a_server_that_never_launched_stops_it_at_once() {
    let mut s = subscribed(settings());
    s.command(add(1), 0).expect("add");
    let (_, actions) = s.command(Command::Stop { ids: vec![1] }, 1).expect("stop");
    assert!(kills(&actions).is_empty());
    assert_eq!(s.cluster().get(1).expect("s").state, ServerState::Stopped);
    assert_eq!(actions.last(), Some(&Action::Suppress));
}

#[test]
fn delete_kills_and_removes_once_the_kill_is_confirmed() {
    let mut s = subscribed(settings());
    let task = launch_one(&mut s, 0);
    run(&mut s, &task, 1);
    let (outcome, actions) = s
        .command(Command::Delete { ids: vec![1] }, 2)
        .expect("delete");
    assert!(outcome.message.contains("killing"), "{}", outcome.message);
    assert!(has_persist(&actions));
    assert_eq!(kills(&actions), vec![task.clone()]);
    assert!(
        s.cluster().get(1).is_ok(),
        "kept until the kill is confirmed"
    );
    let err = s
        .command(Command::Start { ids: vec![1] }, 3)
        .expect_err("deleting");
    assert_eq!(err, CommandError::BeingDeleted(1));
    let actions = s.handle(
        Event::Update(status(&task, "agent-h1", TaskState::TaskKilled, Some("k"))),
        4,
    );
    assert!(has_persist(&actions));
    assert!(s.cluster().servers.is_empty());
    let offers = s.handle(Event::Offers(vec![offer("o2", "h1", 4.0, 4096.0)]), 5);
    assert!(launched(&offers).is_empty());
}

#[test]
fn a_deleted_server_whose_task_fails_is_removed_not_relaunched() {
    let mut s = subscribed(settings());
    let task = launch_one(&mut s, 0);
    s.command(Command::Delete { ids: vec![1] }, 1)
        .expect("delete");
    s.handle(
        Event::Update(status(&task, "agent-h1", TaskState::TaskFailed, Some("f"))),
        2,
    );
    assert!(s.cluster().servers.is_empty());
}

#[test]
fn delete_of_a_server_never_launched_removes_it_at_once() {
    let mut s = subscribed(settings());
    s.command(add(2), 0).expect("add");
    let (_, actions) = s
        .command(Command::Delete { ids: vec![2] }, 1)
        .expect("delete");
    assert!(kills(&actions).is_empty());
    assert!(has_persist(&actions));
    assert_eq!(
        s.cluster().servers.keys().copied().collect::<Vec<_>>(),
        vec![1]
    );
    // ids continue after the highest remaining one
    let (outcome, _) = s.command(add(1), 2).expect("add");
    assert_eq!(outcome.ids, vec![2]);
}

#[test]
fn unknown_tasks_are_killed_and_stale_updates_ignored_but_acknowledged() {
    let mut s = subscribed(settings());
    let task = launch_one(&mut s, 0);
    run(&mut s, &task, 1);
    let actions = s.handle(
        Event::Update(status(
            "someone-else",
            "agent-h9",
            TaskState::TaskRunning,
            Some("u"),
        )),
        2,
    );
    assert_eq!(kills(&actions), vec!["someone-else".to_string()]);
    assert_eq!(acks(&actions).len(), 1);
    // a terminal update of an earlier launch of server 1 changes nothing
    let before = s.cluster().clone();
    let actions = s.handle(
        Event::Update(status(
            "mmm-1-earlier",
            "agent-h1",
            TaskState::TaskFailed,
            Some("old"),
        )),
        3,
    );
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(
        acks(&actions),
        vec![("mmm-1-earlier".to_string(), Bytes::from("old"))]
    );
    assert_eq!(s.cluster(), &before);
    // a live earlier launch is killed so the server never runs twice
    let actions = s.handle(
        Event::Update(status(
            "mmm-1-earlier",
            "agent-h2",
            TaskState::TaskRunning,
            None,
        )),
        4,
    );
    assert_eq!(kills(&actions), vec!["mmm-1-earlier".to_string()]);
}

#[test]
fn unreachable_tasks_are_awaited_then_replaced() {
    let mut s = subscribed(settings());
    let task = launch_one(&mut s, 0);
    run(&mut s, &task, 1);
    s.handle(
        Event::Update(status(
            &task,
            "agent-h1",
            TaskState::TaskUnreachable,
            Some("u"),
        )),
        1_000,
    );
    let server = s.cluster().get(1).expect("s");
    assert_eq!(server.state, ServerState::Running);
    assert_eq!(server.unreachable_since_ms, Some(1_000));
    let early = s.handle(Event::Tick, 60_999);
    assert!(kills(&early).is_empty(), "{early:?}");
    let actions = s.handle(Event::Tick, 61_000);
    assert!(has_persist(&actions));
    assert_eq!(kills(&actions), vec![task.clone()]);
    let server = s.cluster().get(1).expect("s");
    assert_eq!(server.state, ServerState::Starting);
    assert!(server.task_id.is_none());
    // if it comes back it is killed, as it is no longer the server's task
    let back = s.handle(
        Event::Update(status(&task, "agent-h1", TaskState::TaskRunning, Some("b"))),
        61_001,
    );
    assert_eq!(kills(&back), vec![task]);
}

#[test]
fn reachable_again_clears_the_mark() {
    let mut s = subscribed(settings());
    let task = launch_one(&mut s, 0);
    run(&mut s, &task, 1);
    s.handle(
        Event::Update(status(
            &task,
            "agent-h1",
            TaskState::TaskUnreachable,
            Some("u"),
        )),
        10,
    );
    s.handle(
        Event::Update(status(&task, "agent-h1", TaskState::TaskRunning, Some("r"))),
        20,
    );
    assert_eq!(s.cluster().get(1).expect("s").unreachable_since_ms, None);
    let actions = s.handle(Event::Tick, 1_000_000);
    assert!(kills(&actions).is_empty());
}

#[test]
fn ticks_resend_unanswered_reconciliation_and_kills() {
    let mut s = subscribed(settings());
    let task = launch_one(&mut s, 0);
    s.command(Command::Stop { ids: vec![1] }, 0).expect("stop");
    s.handle(
        Event::Subscribed {
            framework_id: ids::framework_id("fw-1"),
        },
        100,
    );
    let early = s.handle(Event::Tick, 10_099);
    assert!(
        early
            .iter()
            .all(|a| !matches!(a, Action::Reconcile { .. } | Action::Kill { .. })),
        "{early:?}"
    );
    let actions = s.handle(Event::Tick, 10_100);
    assert!(actions.iter().any(|a| matches!(a, Action::Reconcile { tasks } if tasks.len() == 1 && tasks[0].0.value == task)), "{actions:?}");
    assert_eq!(kills(&actions), vec![task.clone()]);
    // once answered it is not asked again
    s.handle(
        Event::Update(status(&task, "agent-h1", TaskState::TaskRunning, None)),
        10_200,
    );
    let later = s.handle(Event::Tick, 30_000);
    assert!(
        !later.iter().any(|a| matches!(a, Action::Reconcile { .. })),
        "{later:?}"
    );
}

#[test]
fn nothing_is_sent_to_mesos_while_disconnected() {
    let mut s = subscribed(settings());
    let task = launch_one(&mut s, 0);
    s.handle(Event::Disconnected, 1);
    assert!(!s.is_subscribed());
    let (_, actions) = s
        .command(Command::Delete { ids: vec![1] }, 2)
        .expect("delete");
    assert_eq!(actions.len(), 1, "only the persist: {actions:?}");
    let (_, actions) = s.command(add(1), 3).expect("add");
    assert!(!actions.contains(&Action::Revive));
    assert!(s.handle(Event::Tick, 1_000_000).is_empty());
    let actions = s.handle(
        Event::Subscribed {
            framework_id: ids::framework_id("fw-1"),
        },
        4,
    );
    assert_eq!(
        kills(&actions),
        vec![task],
        "the pending delete's kill is sent"
    );
    // a new subscription starts unsuppressed, which the pending add needs
    assert!(!actions.contains(&Action::Suppress), "{actions:?}");
    assert_eq!(s.offers_suppressed(), Some(false));
}

#[test]
fn executor_metrics_are_kept_per_server() {
    let mut s = subscribed(settings());
    let task = launch_one(&mut s, 0);
    let executor = s
        .cluster()
        .get(1)
        .expect("s")
        .executor_id
        .clone()
        .expect("executor id");
    let actions = s.handle(
        Event::ExecutorMessage {
            agent_id: ids::agent_id("agent-h1"),
            executor_id: ids::executor_id(executor.clone()),
            data: Bytes::from_static(br#"{"records_per_sec": 12.5}"#),
        },
        77,
    );
    assert!(actions.is_empty());
    let metrics = s
        .cluster()
        .get(1)
        .expect("s")
        .metrics
        .clone()
        .expect("metrics");
    assert_eq!(metrics.received_ms, 77);
    assert_eq!(metrics.document["records_per_sec"], 12.5);
    // not JSON, or too large: ignored, the last good document stays
    for data in [
        Bytes::from_static(b"not json"),
        Bytes::from(vec![b' '; 70 * 1024]),
    ] {
        s.handle(
            Event::ExecutorMessage {
                agent_id: ids::agent_id("agent-h1"),
                executor_id: ids::executor_id(executor.clone()),
                data,
            },
            78,
        );
        assert_eq!(
            s.cluster()
                .get(1)
                .expect("s")
                .metrics
                .as_ref()
                .map(|m| m.received_ms),
            Some(77)
        );
    }
    let _ = task;
}

#[test]
fn the_same_seed_and_events_give_the_same_actions() {
    let script = |seed| {
        let mut s = Scheduler::new(settings(), Cluster::new(), seed);
        let mut all = Vec::new();
        all.extend(s.handle(
            Event::Subscribed {
                framework_id: ids::framework_id("f"),
            },
            0,
        ));
        all.extend(s.command(add(3), 1).expect("add").1);
        all.extend(s.handle(Event::Offers(vec![offer("o", "h", 8.0, 8192.0)]), 2));
        let task = launched(&all).pop().expect("task").task_id.value;
        all.extend(s.handle(
            Event::Update(status(&task, "agent-h", TaskState::TaskFailed, Some("u"))),
            3,
        ));
        all
    };
    assert_eq!(script(5), script(5));
    assert_ne!(script(5), script(6));
}

#[test]
fn failures_are_shown_on_the_affected_servers() {
    let mut s = subscribed(settings());
    launch_one(&mut s, 0);
    let executor = s
        .cluster()
        .get(1)
        .expect("s")
        .executor_id
        .clone()
        .expect("executor");
    let actions = s.handle(
        Event::Failure {
            agent_id: Some(ids::agent_id("agent-h1")),
            executor_id: Some(ids::executor_id(executor)),
            status: Some(9),
        },
        1,
    );
    assert!(actions.is_empty());
    let message = s
        .cluster()
        .get(1)
        .expect("s")
        .message
        .clone()
        .unwrap_or_default();
    assert!(message.ends_with("ended with status 9"), "{message}");
    s.handle(
        Event::Failure {
            agent_id: Some(ids::agent_id("agent-h1")),
            executor_id: None,
            status: None,
        },
        2,
    );
    assert_eq!(
        s.cluster().get(1).expect("s").message.as_deref(),
        Some("agent failed")
    );
    assert_eq!(s.cluster().get(1).expect("s").state, ServerState::Starting);
}

#[test]
fn rescind_changes_nothing() {
    let mut s = subscribed(settings());
    s.command(add(1), 0).expect("add");
    let before = s.cluster().clone();
    assert!(s
        .handle(Event::Rescind(ids::offer_id("gone")), 1)
        .is_empty());
    assert!(s.handle(Event::Error("boom".into()), 1).is_empty());
    assert!(s
        .handle(
            Event::Failure {
                agent_id: Some(ids::agent_id("a")),
                executor_id: None,
                status: None
            },
            1
        )
        .is_empty());
    assert_eq!(s.cluster(), &before);
}

#[test]
fn metrics_from_another_agent_or_executor_are_ignored() {
    let mut s = subscribed(settings());
    let task = launch_one(&mut s, 0);
    run(&mut s, &task, 1);
    let executor = s
        .cluster()
        .get(1)
        .expect("s")
        .executor_id
        .clone()
        .expect("executor id");
    for (agent, exec) in [
        ("agent-h2", executor.as_str()),
        ("agent-h1", "someone-elses-executor"),
    ] {
        let actions = s.handle(
            Event::ExecutorMessage {
                agent_id: ids::agent_id(agent),
                executor_id: ids::executor_id(exec.to_string()),
                data: Bytes::from_static(br#"{"produce_rate": 1e12, "lag": {"t-0": 0}}"#),
            },
            5,
        );
        assert!(actions.is_empty(), "{actions:?}");
        assert!(s.cluster().get(1).expect("s").metrics.is_none());
    }
}

#[test]
fn an_executor_that_failed_its_binary_check_says_so_in_either_order() {
    let check_failed = 86 << 8;
    for failure_first in [true, false] {
        let mut s = subscribed(settings());
        let task = launch_one(&mut s, 0);
        let executor = s
            .cluster()
            .get(1)
            .expect("s")
            .executor_id
            .clone()
            .expect("executor");
        let failure = Event::Failure {
            agent_id: Some(ids::agent_id("agent-h1")),
            executor_id: Some(ids::executor_id(executor)),
            status: Some(check_failed),
        };
        let update = Event::Update(status(
            &task,
            "agent-h1",
            TaskState::TaskFailed,
            Some("Executor terminated"),
        ));
        let (first, second) = if failure_first {
            (failure, update)
        } else {
            (update, failure)
        };
        s.handle(first, 1);
        s.handle(second, 2);
        let server = s.cluster().get(1).expect("s");
        let message = server.message.clone().unwrap_or_default();
        assert!(
            message.contains("TASK_FAILED") && message.contains("does not match the sha256"),
            "failure first: {failure_first}: {message}"
        );
        let recorded = server
            .history
            .back()
            .and_then(|c| c.message.clone())
            .unwrap_or_default();
        assert!(recorded.contains("does not match the sha256"), "{recorded}");
    }
}

#[test]
fn the_cluster_holds_a_bounded_number_of_servers() {
    let mut cluster = Cluster::new();
    let task = mmm_core::model::TaskConfig {
        cpus: 0.1,
        mem: 64.0,
        topics: vec!["t".into()],
        topics_regex: None,
        consumer: Default::default(),
        producer: Default::default(),
    };
    for _ in 0..mmm_core::scheduler::MAX_SERVERS {
        cluster.add(None, task.clone(), 0).expect("add");
    }
    let mut s = Scheduler::new(settings(), cluster, 1);
    let before = s.cluster().clone();
    let err = s.command(add(1), 1).expect_err("one too many");
    assert!(matches!(err, CommandError::TooManyServers { .. }), "{err}");
    assert!(err.to_string().contains("at most 10000"), "{err}");
    assert_eq!(s.cluster(), &before);
}
