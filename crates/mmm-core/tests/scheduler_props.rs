//! Randomised sequences of offers, updates (duplicated and reordered),
//! rescinds, failovers, restarts and operator commands, checking the
//! scheduler's invariants after every step.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use common::*;
use mesos_proto::ids;
use mesos_proto::v1::{self, TaskState};
use mmm_core::model::{Cluster, Goal, ServerId, ServerState};
use mmm_core::scheduler::{server_of_task, Action, AddServers, Command, Event, Scheduler};
use mmm_core::task_data::TaskData;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Subscribe,
    Disconnect,
    Tick(u16),
    Offers(Vec<(u8, u16)>),
    Rescind(u8),
    Update { pick: u8, state: u8, uuid: bool },
    Foreign { state: u8, uuid: bool },
    Replay(u8),
    Add(i8),
    Delete(Vec<u8>),
    Stop(Vec<u8>),
    Start(Vec<u8>),
    Restart,
}

const STATES: [TaskState; 13] = [
    TaskState::TaskStaging,
    TaskState::TaskStarting,
    TaskState::TaskRunning,
    TaskState::TaskKilling,
    TaskState::TaskFinished,
    TaskState::TaskFailed,
    TaskState::TaskKilled,
    TaskState::TaskLost,
    TaskState::TaskError,
    TaskState::TaskGone,
    TaskState::TaskUnreachable,
    TaskState::TaskDropped,
    TaskState::TaskUnknown,
];

fn is_terminal(state: TaskState) -> bool {
    !matches!(
        state,
        TaskState::TaskStaging
            | TaskState::TaskStarting
            | TaskState::TaskRunning
            | TaskState::TaskKilling
            | TaskState::TaskUnreachable
    )
}

fn op() -> impl Strategy<Value = Op> {
    let ids = || proptest::collection::vec(0u8..8, 0..3);
    prop_oneof![
        1 => Just(Op::Subscribe),
        1 => Just(Op::Disconnect),
        3 => (0u16..20_000).prop_map(Op::Tick),
        4 => proptest::collection::vec((0u8..30, 0u16..2048), 1..4).prop_map(Op::Offers),
        1 => any::<u8>().prop_map(Op::Rescind),
        8 => (any::<u8>(), 0u8..13, proptest::bool::weighted(0.8))
            .prop_map(|(pick, state, uuid)| Op::Update { pick, state, uuid }),
        1 => (0u8..13, any::<bool>()).prop_map(|(state, uuid)| Op::Foreign { state, uuid }),
        2 => any::<u8>().prop_map(Op::Replay),
        3 => (-1i8..4).prop_map(Op::Add),
        1 => ids().prop_map(Op::Delete),
        1 => ids().prop_map(Op::Stop),
        1 => ids().prop_map(Op::Start),
        1 => Just(Op::Restart),
    ]
}

/// What the simulated Mesos knows about a launched task.
struct WorldTask {
    server: ServerId,
    agent: String,
    dead: bool,
    killed: bool,
}

struct Harness {
    scheduler: Scheduler,
    now: u64,
    last_persisted: Cluster,
    tasks: BTreeMap<String, WorldTask>,
    task_order: Vec<String>,
    sent_statuses: Vec<v1::TaskStatus>,
    deleted: BTreeSet<ServerId>,
    offer_seq: u64,
    uuid_seq: u64,
}

impl Harness {
    fn new() -> Self {
        Harness {
            scheduler: Scheduler::new(settings(), Cluster::new(), 7),
            now: 0,
            last_persisted: Cluster::new(),
            tasks: BTreeMap::new(),
            task_order: Vec::new(),
            sent_statuses: Vec::new(),
            deleted: BTreeSet::new(),
            offer_seq: 0,
            uuid_seq: 0,
        }
    }

    fn ids(raw: &[u8]) -> Vec<ServerId> {
        raw.iter().map(|&i| ServerId::from(i)).collect()
    }

    fn step(&mut self, op: Op) -> Result<(), TestCaseError> {
        self.now += 1;
        match op {
            Op::Subscribe => {
                let actions = self.scheduler.handle(
                    Event::Subscribed {
                        framework_id: ids::framework_id("fw-1"),
                    },
                    self.now,
                );
                self.check(&actions, &[], None)?;
            }
            Op::Disconnect => {
                let actions = self.scheduler.handle(Event::Disconnected, self.now);
                prop_assert!(actions.is_empty());
            }
            Op::Tick(advance) => {
                self.now += u64::from(advance);
                let actions = self.scheduler.handle(Event::Tick, self.now);
                self.check(&actions, &[], None)?;
            }
            Op::Offers(sizes) => {
                let offers: Vec<v1::Offer> = sizes
                    .iter()
                    .map(|&(cpus, mem)| {
                        self.offer_seq += 1;
                        let host = format!("h{}", self.offer_seq % 3);
                        offer(
                            &format!("offer-{}", self.offer_seq),
                            &host,
                            f64::from(cpus) / 10.0,
                            f64::from(mem),
                        )
                    })
                    .collect();
                let ids: Vec<String> = offers.iter().map(|o| o.id.value.clone()).collect();
                let actions = self.scheduler.handle(Event::Offers(offers), self.now);
                self.check(&actions, &ids, None)?;
            }
            Op::Rescind(n) => {
                let id = format!("offer-{}", u64::from(n) % (self.offer_seq + 1));
                let actions = self
                    .scheduler
                    .handle(Event::Rescind(ids::offer_id(id)), self.now);
                prop_assert!(actions.is_empty());
            }
            Op::Update { pick, state, uuid } => {
                if self.task_order.is_empty() {
                    return Ok(());
                }
                let task_id = self.task_order[usize::from(pick) % self.task_order.len()].clone();
                let state = STATES[usize::from(state)];
                let agent = self.tasks[&task_id].agent.clone();
                let status = self.status(&task_id, &agent, state, uuid);
                if is_terminal(state) {
                    if let Some(t) = self.tasks.get_mut(&task_id) {
                        t.dead = true;
                    }
                }
                self.send(status)?;
            }
            Op::Foreign { state, uuid } => {
                let status =
                    self.status("foreign-task", "agent-x", STATES[usize::from(state)], uuid);
                self.send(status)?;
            }
            Op::Replay(n) => {
                if self.sent_statuses.is_empty() {
                    return Ok(());
                }
                let status = self.sent_statuses[usize::from(n) % self.sent_statuses.len()].clone();
                self.send(status)?;
            }
            Op::Add(count) => {
                let result = self.scheduler.command(add(i64::from(count)), self.now);
                match result {
                    Ok((outcome, actions)) => {
                        prop_assert!(count >= 1);
                        for id in &outcome.ids {
                            self.deleted.remove(id);
                        }
                        self.check(&actions, &[], None)?;
                    }
                    Err(_) => prop_assert!(count < 1),
                }
            }
            Op::Delete(raw) => {
                let ids = Self::ids(&raw);
                let before = self.scheduler.cluster().clone();
                match self
                    .scheduler
                    .command(Command::Delete { ids: ids.clone() }, self.now)
                {
                    Ok((_, actions)) => {
                        self.deleted.extend(ids.iter().copied());
                        self.check(&actions, &[], None)?;
                    }
                    Err(_) => prop_assert_eq!(self.scheduler.cluster(), &before),
                }
            }
            Op::Stop(raw) => {
                let before = self.scheduler.cluster().clone();
                match self.scheduler.command(
                    Command::Stop {
                        ids: Self::ids(&raw),
                    },
                    self.now,
                ) {
                    Ok((_, actions)) => self.check(&actions, &[], None)?,
                    Err(_) => prop_assert_eq!(self.scheduler.cluster(), &before),
                }
            }
            Op::Start(raw) => {
                let before = self.scheduler.cluster().clone();
                match self.scheduler.command(
                    Command::Start {
                        ids: Self::ids(&raw),
                    },
                    self.now,
                ) {
                    Ok((_, actions)) => self.check(&actions, &[], None)?,
                    Err(_) => prop_assert_eq!(self.scheduler.cluster(), &before),
                }
            }
            Op::Restart => {
                // the scheduler dies and comes back with what it stored
                let text = self.last_persisted.to_json();
                let restored =
                    Cluster::from_json(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
                self.scheduler = Scheduler::new(settings(), restored, self.now);
            }
        }
        self.check_model()
    }

    fn status(&mut self, task: &str, agent: &str, state: TaskState, uuid: bool) -> v1::TaskStatus {
        self.uuid_seq += 1;
        let mut s = status(task, agent, state, None);
        if uuid {
            s.uuid = Some(Bytes::from(format!("u{}", self.uuid_seq)));
        }
        s
    }

    fn send(&mut self, status: v1::TaskStatus) -> Result<(), TestCaseError> {
        self.sent_statuses.push(status.clone());
        let actions = self
            .scheduler
            .handle(Event::Update(status.clone()), self.now);
        self.check(&actions, &[], Some(&status))
    }

    /// The invariants of one action list.
    fn check(
        &mut self,
        actions: &[Action],
        offers: &[String],
        update: Option<&v1::TaskStatus>,
    ) -> Result<(), TestCaseError> {
        let mut persisted_now: Option<Cluster> = None;
        let mut answered: Vec<String> = Vec::new();
        let mut ack_count = 0;
        for action in actions {
            match action {
                Action::Persist(cluster) => {
                    self.last_persisted = cluster.clone();
                    persisted_now = Some(cluster.clone());
                }
                Action::Launch {
                    offer_id, tasks, ..
                } => {
                    answered.push(offer_id.value.clone());
                    prop_assert!(!tasks.is_empty());
                    let stored = persisted_now
                        .as_ref()
                        .ok_or_else(|| TestCaseError::fail("launch without a persist before it"))?;
                    for task in tasks {
                        let id = task.task_id.value.clone();
                        let server = server_of_task(&id).ok_or_else(|| {
                            TestCaseError::fail(format!("task id {id} names no server"))
                        })?;
                        prop_assert_eq!(
                            stored.servers.get(&server).and_then(|s| s.task_id.clone()),
                            Some(id.clone()),
                            "the snapshot before the launch records it"
                        );
                        prop_assert!(
                            !self.deleted.contains(&server),
                            "deleted server {} relaunched",
                            server
                        );
                        for (other_id, other) in &self.tasks {
                            prop_assert!(
                                other.server != server || other.dead || other.killed,
                                "server {} launched {} while {} is alive",
                                server,
                                id,
                                other_id
                            );
                        }
                        prop_assert!(
                            !self.tasks.contains_key(&id),
                            "task id {} launched twice",
                            id
                        );
                        let data = TaskData::from_json(
                            task.data.as_ref().map(|d| d.as_ref()).unwrap_or(b""),
                        )
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                        prop_assert_eq!(data.server_id, u64::from(server));
                        self.tasks.insert(
                            id.clone(),
                            WorldTask {
                                server,
                                agent: task.agent_id.value.clone(),
                                dead: false,
                                killed: false,
                            },
                        );
                        self.task_order.push(id);
                    }
                }
                Action::Decline {
                    offer_ids,
                    refuse_seconds,
                } => {
                    prop_assert!(*refuse_seconds > 0.0);
                    answered.extend(offer_ids.iter().map(|o| o.value.clone()));
                }
                Action::Kill { task_id, .. } => {
                    let current_owner = self
                        .scheduler
                        .cluster()
                        .servers
                        .values()
                        .find(|s| s.task_id.as_deref() == Some(task_id.value.as_str()))
                        .map(|s| s.id);
                    if let Some(owner) = current_owner {
                        // killing a current task records the wish to stop first
                        let goal = self.last_persisted.servers.get(&owner).map(|s| s.goal);
                        prop_assert!(
                            matches!(goal, Some(Goal::Stop | Goal::Delete)),
                            "kill of server {}'s task without a stored stop/delete",
                            owner
                        );
                    }
                    if let Some(t) = self.tasks.get_mut(&task_id.value) {
                        t.killed = true;
                    }
                }
                Action::Acknowledge { task_id, uuid, .. } => {
                    let update =
                        update.ok_or_else(|| TestCaseError::fail("ack without an update"))?;
                    prop_assert_eq!(&task_id.value, &update.task_id.value);
                    prop_assert_eq!(Some(uuid), update.uuid.as_ref());
                    ack_count += 1;
                }
                Action::Reconcile { .. } | Action::Revive | Action::Suppress => {}
            }
        }
        if let Some(update) = update {
            let expected = usize::from(update.uuid.is_some() && update.agent_id.is_some());
            prop_assert_eq!(ack_count, expected, "acknowledgements of {:?}", update.uuid);
        }
        let mut sorted = answered.clone();
        sorted.sort();
        let mut expected: Vec<String> = offers.to_vec();
        expected.sort();
        prop_assert_eq!(sorted, expected, "every offer answered exactly once");
        Ok(())
    }

    /// The invariants of the model itself.
    fn check_model(&self) -> Result<(), TestCaseError> {
        let cluster = self.scheduler.cluster();
        let mut seen = BTreeSet::new();
        for server in cluster.servers.values() {
            if let Some(task) = &server.task_id {
                prop_assert!(seen.insert(task.clone()), "task {} owned twice", task);
                prop_assert_eq!(server_of_task(task), Some(server.id));
            }
            prop_assert!(server.history.len() <= mmm_core::model::HISTORY_LIMIT);
            if server.task_id.is_some() {
                prop_assert!(
                    matches!(server.state, ServerState::Starting | ServerState::Running),
                    "server {} has a task in state {}",
                    server.id,
                    server.state
                );
            } else {
                prop_assert!(
                    server.state != ServerState::Running,
                    "running without a task"
                );
                prop_assert!(
                    server.goal != Goal::Delete,
                    "deleted server {} kept without a task",
                    server.id
                );
            }
            let waiting = server.goal == Goal::Run
                && server.task_id.is_none()
                && matches!(server.state, ServerState::Added | ServerState::Starting)
                && server.next_retry_ms.is_none();
            if waiting && self.scheduler.is_subscribed() {
                prop_assert_eq!(
                    self.scheduler.offers_suppressed(),
                    Some(false),
                    "server {} waits for offers while they are suppressed",
                    server.id
                );
            }
            prop_assert!(server.launch_attempts <= settings().tuning.max_launch_attempts);
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_under_random_sequences(ops in proptest::collection::vec(op(), 1..80)) {
        let mut h = Harness::new();
        h.step(Op::Subscribe)?;
        h.step(Op::Add(2))?;
        for op in ops {
            h.step(op)?;
        }
    }

    #[test]
    fn same_seed_same_actions(ops in proptest::collection::vec(op(), 1..40)) {
        let run = |ops: &[Op]| {
            let mut s = Scheduler::new(settings(), Cluster::new(), 3);
            let mut out = format!("{:?}", s.handle(Event::Subscribed { framework_id: ids::framework_id("f") }, 0));
            let mut now = 0;
            for op in ops {
                now += 1;
                let actions = match op {
                    Op::Add(n) => s.command(Command::Add(AddServers { count: i64::from(*n), ..AddServers::default() }), now).map(|r| r.1).unwrap_or_default(),
                    Op::Offers(sizes) => s.handle(Event::Offers(sizes.iter().enumerate().map(|(i, &(c, m))| offer(&format!("o{now}-{i}"), "h", f64::from(c), f64::from(m))).collect()), now),
                    Op::Tick(a) => { now += u64::from(*a); s.handle(Event::Tick, now) }
                    _ => Vec::new(),
                };
                out.push_str(&format!("{actions:?}"));
            }
            out
        };
        prop_assert_eq!(run(&ops), run(&ops));
    }
}

/// Found by CI: a scheduler restarted with the seed of the first run
/// handed out that run's task ids again, so a replayed TASK_FAILED of the
/// old task ended the new one and server 2 was launched twice.
#[test]
fn a_restart_with_the_same_seed_reuses_no_task_id() -> Result<(), TestCaseError> {
    let u = |pick, state| Op::Update {
        pick,
        state,
        uuid: false,
    };
    let ops = vec![
        Op::Offers(vec![(0, 0)]),
        Op::Offers(vec![(0, 0)]),
        Op::Offers(vec![(12, 320)]),
        u(0, 0),
        Op::Restart,
        u(0, 0),
        u(0, 0),
        u(44, 5),
        Op::Stop(vec![1]),
        u(0, 0),
        u(0, 0),
        u(0, 0),
        u(187, 5),
        u(0, 0),
        Op::Tick(929),
        Op::Offers(vec![(6, 160)]),
        Op::Replay(124),
        Op::Tick(1346),
        Op::Offers(vec![(6, 160)]),
    ];
    let mut h = Harness::new();
    h.step(Op::Subscribe)?;
    h.step(Op::Add(2))?;
    for op in ops {
        h.step(op)?;
    }
    prop_assert!(h.tasks.len() >= 3, "the failed servers were relaunched");
    Ok(())
}
