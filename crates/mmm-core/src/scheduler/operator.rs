//! The operator's commands: add, delete, start, stop.

use std::collections::BTreeMap;

use super::command::{AddServers, Command, CommandError, CommandOutcome};
use super::launch::task_data;
use super::{Action, Scheduler};
use crate::config::{valid_topic_name, TopicSelection};
use crate::constraints::Pattern;
use crate::kafka_props::{map_properties, Role};
use crate::model::{Goal, Server, ServerId, ServerState, TaskConfig};

/// The most CPUs one task may ask for.
pub const MAX_CPUS: f64 = 1024.0;
/// The most memory (MB) one task may ask for.
pub const MAX_MEM: f64 = 16.0 * 1024.0 * 1024.0;
/// The most servers a cluster may hold: each costs state, status page rows
/// and metric series.
pub const MAX_SERVERS: usize = 10_000;

fn check_resource(name: &'static str, value: f64, max: f64) -> Result<f64, CommandError> {
    if value.is_finite() && value > 0.0 && value <= max {
        Ok(value)
    } else {
        Err(CommandError::BadResource { name, value, max })
    }
}

fn ids_text(ids: &[ServerId]) -> String {
    ids.iter()
        .map(ServerId::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Scheduler {
    pub(super) fn apply_command(
        &mut self,
        cmd: Command,
        now_ms: u64,
        out: &mut Vec<Action>,
    ) -> Result<CommandOutcome, CommandError> {
        let outcome = match cmd {
            Command::Add(req) => self.add(req, now_ms)?,
            Command::Delete { ids } => self.delete(&ids, now_ms, out)?,
            Command::Start { ids } => self.start(&ids, now_ms)?,
            Command::Stop { ids } => self.stop(&ids, now_ms, out)?,
        };
        self.sync_offer_interest(now_ms, out);
        Ok(outcome)
    }

    fn check_ids(&self, ids: &[ServerId]) -> Result<(), CommandError> {
        if ids.is_empty() {
            return Err(CommandError::NoIds);
        }
        let mut unknown: Vec<ServerId> = ids
            .iter()
            .copied()
            .filter(|id| !self.cluster.servers.contains_key(id))
            .collect();
        unknown.dedup();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(CommandError::UnknownIds(unknown))
        }
    }

    fn add(&mut self, req: AddServers, now_ms: u64) -> Result<CommandOutcome, CommandError> {
        let max = self.settings.max_add_per_call;
        if req.count < 1 {
            return Err(CommandError::CountTooSmall(req.count));
        }
        if req.count > i64::from(max) {
            return Err(CommandError::CountTooLarge {
                count: req.count,
                max,
            });
        }
        if req.id.is_some() && req.count != 1 {
            return Err(CommandError::IdWithCount(req.count));
        }
        let existing = self.cluster.servers.len();
        if usize::try_from(req.count).map_or(true, |n| existing + n > MAX_SERVERS) {
            return Err(CommandError::TooManyServers {
                existing,
                max: MAX_SERVERS,
            });
        }
        let cpus = check_resource(
            "cpus",
            req.cpus.unwrap_or(self.settings.mirror.cpus),
            MAX_CPUS,
        )?;
        let mem = check_resource("mem", req.mem.unwrap_or(self.settings.mirror.mem), MAX_MEM)?;
        let (topics, topics_regex) = self.resolve_topics(req.topics, req.topics_regex)?;
        let mut warnings = Vec::new();
        let consumer = map_overrides(Role::Consumer, &req.consumer, &mut warnings)?;
        let producer = map_overrides(Role::Producer, &req.producer, &mut warnings)?;
        let task = TaskConfig {
            cpus,
            mem,
            topics,
            topics_regex,
            consumer,
            producer,
        };
        let probe = Server::new(req.id.unwrap_or(0), task.clone(), now_ms);
        task_data(&self.settings, &probe)
            .validate()
            .map_err(|e| CommandError::BadTaskData(e.to_string()))?;
        let mut ids = Vec::new();
        for _ in 0..req.count {
            ids.push(self.cluster.add(req.id, task.clone(), now_ms)?);
        }
        self.dirty = true;
        Ok(CommandOutcome {
            message: format!("added {} server(s): {}", ids.len(), ids_text(&ids)),
            ids,
            warnings,
        })
    }

    /// The request's topics, or the configured default when it names none.
    fn resolve_topics(
        &self,
        topics: Option<Vec<String>>,
        regex: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), CommandError> {
        match (topics, regex) {
            (Some(_), Some(_)) => Err(CommandError::BadTopics(
                "set either topics or topics_regex, not both".into(),
            )),
            (Some(list), None) => {
                if list.is_empty() {
                    return Err(CommandError::BadTopics("topics is an empty list".into()));
                }
                if let Some(bad) = list.iter().find(|t| !valid_topic_name(t)) {
                    return Err(CommandError::BadTopics(format!(
                        "{bad:?} is not a valid Kafka topic name (1-249 of a-z A-Z 0-9 . _ -)"
                    )));
                }
                Ok((list, None))
            }
            (None, Some(regex)) => {
                if regex.is_empty() {
                    return Err(CommandError::BadTopics("topics_regex is empty".into()));
                }
                Pattern::new(&regex).map_err(|e| {
                    CommandError::BadTopics(format!("topics_regex {regex:?} is invalid: {e}"))
                })?;
                Ok((Vec::new(), Some(regex)))
            }
            (None, None) => Ok(match &self.settings.mirror.topics {
                TopicSelection::List(list) => (list.clone(), None),
                TopicSelection::Regex(p) => (Vec::new(), Some(p.as_str().to_owned())),
            }),
        }
    }

    fn delete(
        &mut self,
        ids: &[ServerId],
        now_ms: u64,
        out: &mut Vec<Action>,
    ) -> Result<CommandOutcome, CommandError> {
        self.check_ids(ids)?;
        let mut removed = Vec::new();
        let mut killing = Vec::new();
        for &id in ids {
            let Some(server) = self.cluster.servers.get_mut(&id) else {
                continue;
            };
            if server.task_id.is_some() {
                if server.goal != Goal::Delete {
                    server.goal = Goal::Delete;
                    server.message = Some("deletion requested".into());
                    self.dirty = true;
                }
                killing.push(id);
                self.kill_current(id, now_ms, out);
            } else {
                self.cluster.servers.remove(&id);
                self.dirty = true;
                removed.push(id);
            }
        }
        let mut message = String::new();
        if !removed.is_empty() {
            message = format!("deleted server(s) {}", ids_text(&removed));
        }
        if !killing.is_empty() {
            if !message.is_empty() {
                message.push_str("; ");
            }
            message.push_str(&format!(
                "killing server(s) {}, removed once their tasks end",
                ids_text(&killing)
            ));
        }
        Ok(CommandOutcome {
            message,
            ids: ids.to_vec(),
            warnings: Vec::new(),
        })
    }

    fn start(&mut self, ids: &[ServerId], now_ms: u64) -> Result<CommandOutcome, CommandError> {
        self.check_ids(ids)?;
        if let Some(&id) = ids.iter().find(|id| {
            self.cluster
                .servers
                .get(id)
                .is_some_and(|s| s.goal == Goal::Delete)
        }) {
            return Err(CommandError::BeingDeleted(id));
        }
        for &id in ids {
            let Some(server) = self.cluster.servers.get_mut(&id) else {
                continue;
            };
            if server.goal != Goal::Run {
                server.goal = Goal::Run;
                self.dirty = true;
            }
            if server.task_id.is_none()
                && matches!(
                    server.state,
                    ServerState::Stopped | ServerState::Failed | ServerState::Finished
                )
            {
                server.transition(
                    ServerState::Starting,
                    now_ms,
                    Some("started by the operator".into()),
                )?;
                server.launch_attempts = 0;
                server.next_retry_ms = None;
                self.dirty = true;
            }
        }
        Ok(CommandOutcome {
            message: format!("started server(s) {}", ids_text(ids)),
            ids: ids.to_vec(),
            warnings: Vec::new(),
        })
    }

    fn stop(
        &mut self,
        ids: &[ServerId],
        now_ms: u64,
        out: &mut Vec<Action>,
    ) -> Result<CommandOutcome, CommandError> {
        self.check_ids(ids)?;
        if let Some(&id) = ids.iter().find(|id| {
            self.cluster
                .servers
                .get(id)
                .is_some_and(|s| s.goal == Goal::Delete)
        }) {
            return Err(CommandError::BeingDeleted(id));
        }
        for &id in ids {
            let Some(server) = self.cluster.servers.get_mut(&id) else {
                continue;
            };
            if server.goal != Goal::Stop {
                server.goal = Goal::Stop;
                self.dirty = true;
            }
            if server.task_id.is_some() {
                self.kill_current(id, now_ms, out);
            } else if matches!(server.state, ServerState::Added | ServerState::Starting) {
                server.next_retry_ms = None;
                server.transition(
                    ServerState::Stopped,
                    now_ms,
                    Some("stopped by the operator".into()),
                )?;
                self.dirty = true;
            }
        }
        Ok(CommandOutcome {
            message: format!("stopping server(s) {}", ids_text(ids)),
            ids: ids.to_vec(),
            warnings: Vec::new(),
        })
    }
}

/// Maps per-task overrides to librdkafka names, collecting warnings.
fn map_overrides(
    role: Role,
    overrides: &BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, String>, CommandError> {
    let source = format!("{role} overrides");
    let mapped = map_properties(role, &source, overrides)?;
    warnings.extend(
        mapped
            .dropped
            .iter()
            .map(|d| format!("{source}: {d} dropped")),
    );
    Ok(mapped.config)
}
