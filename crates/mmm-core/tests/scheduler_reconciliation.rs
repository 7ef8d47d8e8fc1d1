//! Reconciliation as Mesos's guide describes it: explicit with truncated
//! exponential backoff until a status arrives, implicit every interval,
//! unconfirmed launches asked about after the reconcile timeout, and
//! `unreachable_since` from the status's `unreachable_time`.

mod common;

use common::*;
use mesos_proto::ids;
use mesos_proto::v1::{self, TaskState};
use mmm_core::scheduler::{Action, Event, Scheduler};
use proptest::prelude::*;

const TIMEOUT: u64 = 10_000;
const INTERVAL: u64 = RECONCILE_INTERVAL_SECS * 1000;

fn launch_one(s: &mut Scheduler, now: u64) -> String {
    s.command(add(1), now).expect("add");
    let actions = s.handle(Event::Offers(vec![offer("o1", "h1", 4.0, 4096.0)]), now);
    let tasks = launched(&actions);
    assert_eq!(tasks.len(), 1, "{actions:?}");
    tasks[0].task_id.value.clone()
}

/// The task ids of the explicit reconciliations, and whether an implicit one ran.
fn reconciles(actions: &[Action]) -> (Vec<String>, bool) {
    let mut explicit = Vec::new();
    let mut implicit = false;
    for a in actions {
        if let Action::Reconcile { tasks } = a {
            if tasks.is_empty() {
                implicit = true;
            }
            explicit.extend(tasks.iter().map(|(t, _)| t.value.clone()));
        }
    }
    (explicit, implicit)
}

/// Ticks every second from `from` to `to` (inclusive); returns when the
/// task was asked about explicitly and when implicit reconciliation ran.
fn tick_through(s: &mut Scheduler, task: &str, from: u64, to: u64) -> (Vec<u64>, Vec<u64>) {
    let mut asked = Vec::new();
    let mut implicit = Vec::new();
    let mut t = from;
    while t <= to {
        let (explicit, imp) = reconciles(&s.handle(Event::Tick, t));
        if explicit.iter().any(|x| x == task) {
            asked.push(t);
        }
        if imp {
            implicit.push(t);
        }
        t += 1_000;
    }
    (asked, implicit)
}

#[test]
fn implicit_reconciliation_runs_every_interval() {
    let mut s = subscribed(settings());
    let (_, implicit) = tick_through(&mut s, "none", 1_000, 3 * INTERVAL);
    assert_eq!(implicit, [INTERVAL, 2 * INTERVAL, 3 * INTERVAL]);
}

#[test]
fn an_unconfirmed_launch_is_asked_about_with_truncated_exponential_backoff() {
    let mut s = subscribed(settings());
    let task = launch_one(&mut s, 0);
    let (asked, _) = tick_through(&mut s, &task, 1_000, 200_000);
    // at the timeout, then 10 s, 20 s, 40 s later, then every 60 s (the cap)
    assert_eq!(
        asked,
        [10_000, 20_000, 40_000, 80_000, 140_000, 200_000],
        "{asked:?}"
    );
}

#[test]
fn a_status_ends_the_questions() {
    let mut s = subscribed(settings());
    let task = launch_one(&mut s, 0);
    s.handle(
        Event::Update(status(
            &task,
            "agent-h1",
            TaskState::TaskStarting,
            Some("u"),
        )),
        5_000,
    );
    let (asked, _) = tick_through(&mut s, &task, 6_000, INTERVAL - 1_000);
    assert!(asked.is_empty(), "{asked:?}");
}

#[test]
fn tasks_implicit_reconciliation_does_not_answer_are_asked_explicitly() {
    let mut s = subscribed(settings());
    let task = launch_one(&mut s, 0);
    s.handle(
        Event::Update(status(&task, "agent-h1", TaskState::TaskRunning, Some("u"))),
        1_000,
    );
    let (asked, implicit) = tick_through(&mut s, &task, 2_000, INTERVAL + TIMEOUT);
    assert_eq!(implicit, [INTERVAL]);
    assert_eq!(asked, [INTERVAL + TIMEOUT]);
    // the implicit answer came in time the next round: no explicit question
    let mut s = subscribed(settings());
    let task = launch_one(&mut s, 0);
    tick_through(&mut s, &task, 1_000, INTERVAL);
    s.handle(
        Event::Update(status(&task, "agent-h1", TaskState::TaskRunning, None)),
        INTERVAL + 500,
    );
    let (asked, _) = tick_through(&mut s, &task, INTERVAL + 1_000, 2 * INTERVAL - 1_000);
    assert!(asked.is_empty(), "{asked:?}");
}

fn unreachable(task: &str, since_ms: Option<i64>) -> v1::TaskStatus {
    let mut st = status(task, "agent-h1", TaskState::TaskUnreachable, None);
    st.unreachable_time = since_ms.map(|ms| v1::TimeInfo {
        nanoseconds: ms * 1_000_000,
    });
    st
}

#[test]
fn unreachable_since_comes_from_the_unreachable_time_and_survives_resubscription() {
    let mut s = subscribed(settings());
    let task = launch_one(&mut s, 0);
    s.handle(
        Event::Update(status(&task, "agent-h1", TaskState::TaskRunning, Some("u"))),
        1,
    );
    s.handle(Event::Update(unreachable(&task, Some(2_000))), 5_000);
    assert_eq!(
        s.cluster().get(1).expect("server").unreachable_since_ms,
        Some(2_000)
    );
    // reconciliation after a re-subscription repeats it, without a time
    s.handle(Event::Disconnected, 6_000);
    s.handle(
        Event::Subscribed {
            framework_id: ids::framework_id("fw-1"),
        },
        7_000,
    );
    s.handle(Event::Update(unreachable(&task, None)), 8_000);
    assert_eq!(
        s.cluster().get(1).expect("server").unreachable_since_ms,
        Some(2_000)
    );
    // so the unreachable timeout (60 s) counts from 2 s
    let actions = s.handle(Event::Tick, 62_000);
    assert_eq!(kills(&actions), vec![task]);
}

proptest! {
    /// Whatever the tick times, a task is never asked about twice within
    /// the reconcile timeout, and the waits never shrink.
    #[test]
    fn explicit_questions_back_off(gaps in proptest::collection::vec(1u64..30_000, 1..60)) {
        let mut s = subscribed(settings());
        let task = launch_one(&mut s, 0);
        let mut now = 0;
        let mut asked = Vec::new();
        for gap in gaps {
            now += gap;
            let (explicit, _) = reconciles(&s.handle(Event::Tick, now));
            if explicit.contains(&task) {
                asked.push(now);
            }
        }
        for w in asked.windows(2) {
            prop_assert!(w[1] - w[0] >= TIMEOUT, "{asked:?}");
        }
        if let Some(first) = asked.first() {
            prop_assert!(*first >= TIMEOUT);
        }
    }
}

#[test]
fn the_offer_of_a_launch_mesos_never_heard_of_is_declined() {
    let mut s = subscribed(settings());
    let task = launch_one(&mut s, 0);
    let mut gone = status(&task, "agent-h1", TaskState::TaskGone, None);
    gone.reason = Some(v1::task_status::Reason::Reconciliation as i32);
    let actions = s.handle(Event::Update(gone), TIMEOUT);
    assert_eq!(declined(&actions), ["o1"], "{actions:?}");
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::Decline { refuse_seconds, .. } if *refuse_seconds == 0.0)));
    // a launch that arrived is never declined again
    let mut s = subscribed(settings());
    let task = launch_one(&mut s, 20_000);
    s.handle(
        Event::Update(status(&task, "agent-h1", TaskState::TaskRunning, Some("u"))),
        20_001,
    );
    let mut lost = status(&task, "agent-h1", TaskState::TaskLost, None);
    lost.reason = Some(v1::task_status::Reason::Reconciliation as i32);
    let actions = s.handle(Event::Update(lost), 30_000);
    assert!(declined(&actions).is_empty(), "{actions:?}");
}
