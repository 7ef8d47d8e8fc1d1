//! The one task that owns the scheduler's state: it feeds events, ticks
//! and operator commands into `mmm_core::scheduler::Scheduler` and carries
//! out the actions that come back.
//!
//! The rule that keeps a restart from losing or duplicating tasks: the
//! snapshot of a decision is stored before any call that acts on it is
//! sent. When storing fails, the in-memory state goes back to what it was
//! and nothing is sent.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mesos_proto::v1::scheduler as sched;
use mmm_core::model::Cluster;
use mmm_core::scheduler::{Action, Command, CommandError, CommandOutcome, Event, Scheduler};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};

use crate::mesos::connection::MesosInput;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// Why a command was not carried out; either way the cluster is unchanged.
#[derive(Debug, Error)]
pub enum CommandFailure {
    #[error("{0}")]
    Refused(#[from] CommandError),
    #[error("the state could not be stored, nothing changed: {0}")]
    NotStored(StoreError),
    #[error("the scheduler is shutting down")]
    ShuttingDown,
}

/// What a carried-out command returns to the API.
#[derive(Debug)]
pub struct CommandReply {
    pub outcome: CommandOutcome,
    pub cluster: Arc<Cluster>,
}

/// An input of the driver.
#[derive(Debug)]
pub enum Input {
    Mesos(MesosInput),
    Command {
        command: Command,
        reply: oneshot::Sender<Result<CommandReply, CommandFailure>>,
    },
    Tick,
}

/// A handle to send operator commands to the driver.
#[derive(Debug, Clone)]
pub struct CommandSender(pub mpsc::Sender<Input>);

impl CommandSender {
    pub async fn run(&self, command: Command) -> Result<CommandReply, CommandFailure> {
        let (reply, rx) = oneshot::channel();
        self.0
            .send(Input::Command { command, reply })
            .await
            .map_err(|_| CommandFailure::ShuttingDown)?;
        rx.await.map_err(|_| CommandFailure::ShuttingDown)?
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The driver's state.
pub struct Driver {
    scheduler: Scheduler,
    store: Store,
    /// Calls for Mesos, sent in order by [`crate::mesos::calls::run_sender`].
    outgoing: mpsc::UnboundedSender<Action>,
    view: watch::Sender<Arc<Cluster>>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("store", &self.store)
            .finish()
    }
}

impl Driver {
    pub fn new(
        scheduler: Scheduler,
        store: Store,
        outgoing: mpsc::UnboundedSender<Action>,
        view: watch::Sender<Arc<Cluster>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        view.send_replace(Arc::new(scheduler.cluster().clone()));
        Self {
            scheduler,
            store,
            outgoing,
            view,
            metrics,
        }
    }

    /// Runs until every input sender is gone.
    pub async fn run(mut self, mut inputs: mpsc::Receiver<Input>) {
        while let Some(input) = inputs.recv().await {
            match input {
                Input::Tick => self.handle_event(Event::Tick).await,
                Input::Mesos(MesosInput::Disconnected { .. }) => {
                    self.handle_event(Event::Disconnected).await
                }
                Input::Mesos(MesosInput::Event(event)) => {
                    if let Some(event) = self.translate(*event) {
                        self.handle_event(event).await;
                    }
                }
                Input::Command { command, reply } => {
                    let result = self.handle_command(command).await;
                    let _ = reply.send(result);
                }
            }
        }
    }

    fn translate(&self, event: sched::Event) -> Option<Event> {
        let kind = event
            .r#type
            .and_then(|t| sched::event::Type::try_from(t).ok())?;
        use sched::event::Type;
        match kind {
            Type::Subscribed => event.subscribed.map(|s| Event::Subscribed {
                framework_id: s.framework_id,
            }),
            Type::Offers => event.offers.map(|o| {
                self.metrics.offers_received.inc_by(o.offers.len() as u64);
                Event::Offers(o.offers)
            }),
            Type::Rescind => event.rescind.map(|r| Event::Rescind(r.offer_id)),
            Type::Update => event.update.map(|u| Event::Update(u.status)),
            Type::Message => event.message.map(|m| Event::ExecutorMessage {
                agent_id: m.agent_id,
                executor_id: m.executor_id,
                data: m.data,
            }),
            Type::Failure => event.failure.map(|f| Event::Failure {
                agent_id: f.agent_id,
                executor_id: f.executor_id,
                status: f.status,
            }),
            Type::Error => Some(Event::Error(
                event.error.map(|e| e.message).unwrap_or_default(),
            )),
            _ => None,
        }
    }

    async fn handle_event(&mut self, event: Event) {
        let offers: Vec<_> = match &event {
            Event::Offers(o) => o.iter().map(|o| o.id.clone()).collect(),
            _ => Vec::new(),
        };
        let before = self.scheduler.clone();
        let actions = self.scheduler.handle(event, now_ms());
        if let Err(e) = self.carry_out(actions).await {
            tracing::error!(error = %e, "state could not be stored; the decision is dropped and retried later");
            self.scheduler = before;
            // Offers must not be held: give them back at once.
            if !offers.is_empty() {
                self.send(Action::Decline {
                    offer_ids: offers,
                    refuse_seconds: 1.0,
                });
            }
        }
    }

    async fn handle_command(&mut self, command: Command) -> Result<CommandReply, CommandFailure> {
        let before = self.scheduler.clone();
        let (outcome, actions) = self.scheduler.command(command, now_ms())?;
        if let Err(e) = self.carry_out(actions).await {
            self.scheduler = before;
            return Err(CommandFailure::NotStored(e));
        }
        for warning in &outcome.warnings {
            tracing::warn!(%warning, "operator command");
        }
        Ok(CommandReply {
            outcome,
            cluster: self.view.borrow().clone(),
        })
    }

    /// Stores the newest snapshot among `actions`, then sends the rest in
    /// order. Sending later than decided is always safe; sending before the
    /// snapshot is durable is not.
    async fn carry_out(&mut self, actions: Vec<Action>) -> Result<(), StoreError> {
        let mut snapshot = None;
        let mut calls = Vec::new();
        for action in actions {
            match action {
                Action::Persist(cluster) => snapshot = Some(cluster),
                other => calls.push(other),
            }
        }
        if let Some(cluster) = snapshot {
            self.store.save(cluster.to_json().into_bytes()).await?;
        }
        if self.scheduler.cluster() != &**self.view.borrow() {
            self.view
                .send_replace(Arc::new(self.scheduler.cluster().clone()));
        }
        for call in calls {
            self.send(call);
        }
        Ok(())
    }

    fn send(&self, action: Action) {
        if let Action::Decline { offer_ids, .. } = &action {
            self.metrics.offers_declined.inc_by(offer_ids.len() as u64);
        }
        if self.outgoing.send(action).is_err() {
            tracing::warn!("Mesos call sender stopped; call dropped");
        }
    }
}

/// Sends a Tick every `period` until the driver is gone.
pub async fn run_ticks(inputs: mpsc::Sender<Input>, period: Duration) {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if inputs.send(Input::Tick).await.is_err() {
            return;
        }
    }
}

/// Forwards the connection's inputs to the driver.
pub async fn forward_mesos(mut from: mpsc::Receiver<MesosInput>, to: mpsc::Sender<Input>) {
    while let Some(input) = from.recv().await {
        if to.send(Input::Mesos(input)).await.is_err() {
            return;
        }
    }
}
