//! Unit tests of the state machine's internals; behaviour is tested through
//! the public API in the crate's tests/ folder.

use super::*;

#[test]
fn pending_means_wanted_running_without_task_and_due() {
    let task = crate::model::TaskConfig {
        cpus: 1.0,
        mem: 1.0,
        topics: vec!["t".into()],
        topics_regex: None,
        consumer: BTreeMap::new(),
        producer: BTreeMap::new(),
    };
    let mut s = Server::new(1, task, 0);
    assert!(Scheduler::is_pending(&s, 0));
    s.next_retry_ms = Some(10);
    assert!(!Scheduler::is_pending(&s, 9));
    assert!(Scheduler::is_pending(&s, 10));
    s.goal = Goal::Stop;
    assert!(!Scheduler::is_pending(&s, 10));
    s.goal = Goal::Run;
    s.task_id = Some("mmm-1-x".into());
    assert!(!Scheduler::is_pending(&s, 10));
    s.task_id = None;
    s.state = ServerState::Failed;
    assert!(!Scheduler::is_pending(&s, 10));
}
