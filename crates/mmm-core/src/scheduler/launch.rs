//! Building the TaskInfo of one launch.

use bytes::Bytes;
use mesos_proto::v1;

use super::Settings;
use crate::model::Server;
use crate::task_data::{self, TaskData};

/// The Mesos ids of one launch.
#[derive(Debug, Clone)]
pub(crate) struct LaunchIds {
    pub(crate) task_id: String,
    pub(crate) executor_id: String,
}

impl LaunchIds {
    /// Ids that name the server, unique per launch.
    pub(crate) fn new(server: &Server, uuid: &str) -> Self {
        LaunchIds {
            task_id: format!("mmm-{}-{uuid}", server.id),
            executor_id: format!("mmm-executor-{}-{uuid}", server.id),
        }
    }
}

/// The server id a task id of ours names, if it is one of ours.
pub fn server_of_task(task_id: &str) -> Option<crate::model::ServerId> {
    let rest = task_id.strip_prefix("mmm-")?;
    let (id, _uuid) = rest.split_once('-')?;
    id.parse().ok()
}

/// The task data document of `server`: the base Kafka configurations with
/// the server's overrides on top, and the mirror settings.
pub(crate) fn task_data(settings: &Settings, server: &Server) -> TaskData {
    let mut consumer = settings.consumer.clone();
    consumer.extend(server.task.consumer.clone());
    let mut producer = settings.producer.clone();
    producer.extend(server.task.producer.clone());
    let topics = match &server.task.topics_regex {
        Some(regex) => task_data::TopicSelection::Regex(regex.clone()),
        None => task_data::TopicSelection::List(server.task.topics.clone()),
    };
    let mut data = TaskData::new(u64::from(server.id), consumer, producer, topics);
    data.offset_commit_interval_ms = settings.mirror.offset_commit_interval_ms;
    data.partitioning = settings.mirror.partitioning;
    data.target_topic_prefix = settings.mirror.target_topic_prefix.clone();
    data.target_topic_suffix = settings.mirror.target_topic_suffix.clone();
    data.create_topics = settings.mirror.create_topics;
    data.replication_factor = settings.mirror.replication_factor;
    data.stall_timeout_ms = settings.mirror.stall_timeout_ms;
    data.provenance = settings.mirror.provenance;
    data.source_cluster_alias = settings.mirror.source_cluster_alias.clone();
    data.target_cluster_alias = settings.mirror.target_cluster_alias.clone();
    data.offset_sync_topic = settings.mirror.offset_sync_topic.clone();
    data.sync_groups = settings.mirror.sync_groups.clone();
    data.sync_groups_interval_ms = settings.mirror.sync_groups_interval_ms;
    data
}

/// The TaskInfo launching `server` on `offer` with a CUSTOM executor;
/// `(task, executor)` resources were taken from the offer, reservations
/// and allocation as offered.
pub(crate) fn task_info(
    settings: &Settings,
    framework_id: &str,
    server: &Server,
    ids: &LaunchIds,
    offer: &v1::Offer,
    (resources, executor_resources): (Vec<v1::Resource>, Vec<v1::Resource>),
) -> v1::TaskInfo {
    let command = v1::CommandInfo {
        uris: settings
            .executor_uris
            .iter()
            .map(|uri| v1::command_info::Uri {
                value: uri.clone(),
                executable: Some(true),
                extract: Some(false),
                cache: Some(false),
                output_file: None,
            })
            .collect(),
        value: Some(settings.executor_command.clone()),
        shell: Some(true),
        ..v1::CommandInfo::default()
    };
    let grace_ns = i64::try_from(settings.tuning.shutdown_grace_period_ms)
        .unwrap_or(i64::MAX / 1_000_000)
        .saturating_mul(1_000_000);
    let executor = v1::ExecutorInfo {
        r#type: Some(v1::executor_info::Type::Custom as i32),
        executor_id: v1::ExecutorId {
            value: ids.executor_id.clone(),
        },
        framework_id: Some(v1::FrameworkId {
            value: framework_id.to_owned(),
        }),
        command: Some(command),
        name: Some(format!("mmm executor for server {}", server.id)),
        shutdown_grace_period: Some(v1::DurationInfo {
            nanoseconds: grace_ns,
        }),
        resources: executor_resources,
        ..v1::ExecutorInfo::default()
    };
    v1::TaskInfo {
        name: format!("mmm-{}", server.id),
        task_id: v1::TaskId {
            value: ids.task_id.clone(),
        },
        agent_id: offer.agent_id.clone(),
        resources,
        executor: Some(executor),
        data: Some(Bytes::from(task_data(settings, server).to_json())),
        ..v1::TaskInfo::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_name_their_server() {
        assert_eq!(server_of_task("mmm-12-0000-aa"), Some(12));
        assert_eq!(server_of_task("mmm-x-1"), None);
        assert_eq!(server_of_task("other-1-2"), None);
        assert_eq!(server_of_task("mmm-3"), None);
    }
}
