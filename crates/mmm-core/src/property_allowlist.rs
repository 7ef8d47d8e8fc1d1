//! Which Kafka client properties a REST caller may set, and which no task may
//! carry at all.
//!
//! The operator's property files hold the connection, the credentials and the
//! consumer group. A caller of `POST /api/add` may only tune the clients
//! (fetch and batch sizes, linger, compression, timeouts, buffers): anything
//! else could send the source's credentials to another broker, copy the data
//! elsewhere, downgrade security or load native code on an agent. The lists
//! are documented in docs/task-data.md.

use std::collections::BTreeMap;

use crate::kafka_props::Role;

/// Keys that load native code or run a command on the agent. No task data
/// may hold them, whoever wrote it; the executor refuses them itself.
pub const CODE_LOADING_KEYS: &[&str] = &[
    "plugin.library.paths",
    "ssl.engine.location",
    "ssl.engine.id",
    "ssl.providers",
    "sasl.kerberos.kinit.cmd",
];

/// Tuning properties of both clients (librdkafka names, and the Java names
/// that map onto them).
const BOTH: &[&str] = &[
    "socket.timeout.ms",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "send.buffer.bytes",
    "receive.buffer.bytes",
    "socket.keepalive.enable",
    "socket.nagle.disable",
    "socket.connection.setup.timeout.ms",
    "connections.max.idle.ms",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "metadata.max.age.ms",
    "topic.metadata.refresh.interval.ms",
    "receive.message.max.bytes",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
];

/// Consumer tuning properties.
const CONSUMER: &[&str] = &[
    "fetch.min.bytes",
    "fetch.max.bytes",
    "fetch.wait.max.ms",
    "fetch.max.wait.ms",
    "fetch.message.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.error.backoff.ms",
    "fetch.queue.backoff.ms",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "check.crcs",
];

/// Producer tuning properties.
const PRODUCER: &[&str] = &[
    "linger.ms",
    "queue.buffering.max.ms",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "batch.size",
    "batch.num.messages",
    "compression.type",
    "compression.codec",
    "compression.level",
    "message.max.bytes",
    "max.request.size",
    "request.timeout.ms",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "sticky.partitioning.linger.ms",
];

/// Whether a REST caller may set `key` for `role`.
pub fn api_may_set(role: Role, key: &str) -> bool {
    let key = key.trim();
    BOTH.contains(&key)
        || match role {
            Role::Consumer => CONSUMER.contains(&key),
            Role::Producer => PRODUCER.contains(&key),
        }
}

/// Every key a REST caller may set for `role`, sorted.
pub fn api_allowlist(role: Role) -> Vec<&'static str> {
    let own = match role {
        Role::Consumer => CONSUMER,
        Role::Producer => PRODUCER,
    };
    let mut keys: Vec<&'static str> = BOTH.iter().chain(own).copied().collect();
    keys.sort_unstable();
    keys
}

/// A property an API caller or a stored task may not set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{role} property {key:?} cannot be set through the API: only tuning properties may \
     (see docs/task-data.md); connection, security, path, plugin and group settings come \
     from the operator's files"
)]
pub struct NotAllowed {
    /// The client it was meant for.
    pub role: Role,
    /// The key.
    pub key: String,
}

/// Refuses the first override of `role` that an API caller may not set.
pub fn check_overrides<'a, I>(role: Role, keys: I) -> Result<(), NotAllowed>
where
    I: IntoIterator<Item = &'a String>,
{
    match keys.into_iter().find(|k| !api_may_set(role, k)) {
        Some(key) => Err(NotAllowed {
            role,
            key: key.clone(),
        }),
        None => Ok(()),
    }
}

/// The first key of `config` that loads code on the agent, if any.
pub fn code_loading_key(config: &BTreeMap<String, String>) -> Option<&str> {
    config
        .keys()
        .map(String::as_str)
        .find(|k| CODE_LOADING_KEYS.contains(&k.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka_props::map_properties;

    #[test]
    fn every_allowed_key_is_a_known_property_of_its_role() {
        for role in [Role::Consumer, Role::Producer] {
            for key in api_allowlist(role) {
                let mapped = map_properties(role, "allowlist", [(key, "1")])
                    .unwrap_or_else(|e| panic!("{role} {key}: {e}"));
                assert!(mapped.dropped.is_empty(), "{role} {key} is dropped");
                for k in mapped.config.keys() {
                    assert!(api_may_set(role, k), "{key} maps to {k}");
                }
            }
        }
    }

    #[test]
    fn connection_security_plugin_and_group_keys_are_refused() {
        for key in [
            "bootstrap.servers",
            "metadata.broker.list",
            "security.protocol",
            "sasl.mechanism",
            "sasl.username",
            "sasl.jaas.config",
            "ssl.ca.location",
            "ssl.endpoint.identification.algorithm",
            "plugin.library.paths",
            "ssl.engine.location",
            "ssl.providers",
            "debug",
            "group.id",
            "client.id",
            "enable.auto.commit",
        ] {
            for role in [Role::Consumer, Role::Producer] {
                let err = check_overrides(role, [&key.to_string()]).expect_err(key);
                assert!(err.to_string().contains(&format!("{key:?}")), "{err}");
            }
        }
        assert!(check_overrides(Role::Producer, [&"linger.ms".to_string()]).is_ok());
        assert!(check_overrides(Role::Consumer, [&"linger.ms".to_string()]).is_err());
    }

    #[test]
    fn code_loading_keys_are_found() {
        let config = BTreeMap::from([
            ("bootstrap.servers".to_string(), "h:1".to_string()),
            ("ssl.engine.location".to_string(), "/tmp/x.so".to_string()),
        ]);
        assert_eq!(code_loading_key(&config), Some("ssl.engine.location"));
        assert_eq!(code_loading_key(&BTreeMap::new()), None);
    }
}
