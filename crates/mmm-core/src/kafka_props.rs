//! Maps Java Kafka client properties to librdkafka ones, per role.
//!
//! Keys both clients understand pass through; Java names librdkafka spells
//! differently are renamed; Java-only keys are dropped and reported so the
//! caller can warn; `sasl.jaas.config` becomes `sasl.username` and
//! `sasl.password`; a key neither client knows is an error.

use std::collections::BTreeMap;
use std::fmt;

/// Which client a configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The source side.
    Consumer,
    /// The target side.
    Producer,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Consumer => "consumer",
            Role::Producer => "producer",
        })
    }
}

/// A key left out of the librdkafka configuration, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedKey {
    /// The key as written.
    pub key: String,
    /// Why it has no effect.
    pub reason: String,
}

impl fmt::Display for DroppedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.key, self.reason)
    }
}

/// A librdkafka configuration built from Java properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapped {
    /// librdkafka property names and values.
    pub config: BTreeMap<String, String>,
    /// Keys with no librdkafka meaning, to be logged as warnings.
    pub dropped: Vec<DroppedKey>,
}

/// Properties that cannot be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KafkaPropsError {
    /// Keys neither the Java client nor librdkafka knows.
    #[error("{file}: unknown {role} properties: {}", keys.join(", "))]
    UnknownKeys {
        /// The file name given by the caller.
        file: String,
        /// The role being mapped.
        role: Role,
        /// Every unknown key, in input order.
        keys: Vec<String>,
    },
    /// A value that cannot be translated.
    #[error("{file}: {key}: {problem}")]
    BadValue {
        /// The file name given by the caller.
        file: String,
        /// The key.
        key: String,
        /// What is wrong (never the value of a secret).
        problem: String,
    },
}

/// What librdkafka accepts a key for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Both,
    Consumer,
    Producer,
}

/// librdkafka's properties (CONFIGURATION.md, global and topic level).
const LIBRDKAFKA: &[(&str, Scope)] = {
    use Scope::*;
    &[
        ("builtin.features", Both),
        ("client.id", Both),
        ("metadata.broker.list", Both),
        ("bootstrap.servers", Both),
        ("message.max.bytes", Both),
        ("message.copy.max.bytes", Both),
        ("receive.message.max.bytes", Both),
        ("max.in.flight.requests.per.connection", Both),
        ("max.in.flight", Both),
        ("topic.metadata.refresh.interval.ms", Both),
        ("metadata.max.age.ms", Both),
        ("topic.metadata.refresh.fast.interval.ms", Both),
        ("topic.metadata.refresh.fast.cnt", Both),
        ("topic.metadata.refresh.sparse", Both),
        ("metadata.recovery.strategy", Both),
        ("socket.blocking.max.ms", Both),
        ("reconnect.backoff.jitter.ms", Both),
        ("internal.termination.signal", Both),
        ("ssl.engine.location", Both),
        ("plugin.library.paths", Both),
        ("topic.metadata.propagation.max.ms", Both),
        ("topic.blacklist", Both),
        ("debug", Both),
        ("socket.timeout.ms", Both),
        ("socket.send.buffer.bytes", Both),
        ("socket.receive.buffer.bytes", Both),
        ("socket.keepalive.enable", Both),
        ("socket.nagle.disable", Both),
        ("socket.max.fails", Both),
        ("broker.address.ttl", Both),
        ("broker.address.family", Both),
        ("socket.connection.setup.timeout.ms", Both),
        ("connections.max.idle.ms", Both),
        ("reconnect.backoff.ms", Both),
        ("reconnect.backoff.max.ms", Both),
        ("statistics.interval.ms", Both),
        ("enabled_events", Both),
        ("log_level", Both),
        ("log.queue", Both),
        ("log.thread.name", Both),
        ("enable.random.seed", Both),
        ("log.connection.close", Both),
        ("api.version.request", Both),
        ("api.version.request.timeout.ms", Both),
        ("api.version.fallback.ms", Both),
        ("broker.version.fallback", Both),
        ("allow.auto.create.topics", Both),
        ("security.protocol", Both),
        ("ssl.cipher.suites", Both),
        ("ssl.curves.list", Both),
        ("ssl.sigalgs.list", Both),
        ("ssl.key.location", Both),
        ("ssl.key.password", Both),
        ("ssl.key.pem", Both),
        ("ssl.certificate.location", Both),
        ("ssl.certificate.pem", Both),
        ("ssl.ca.location", Both),
        ("ssl.ca.pem", Both),
        ("ssl.ca.certificate.stores", Both),
        ("ssl.crl.location", Both),
        ("ssl.keystore.location", Both),
        ("ssl.keystore.password", Both),
        ("ssl.providers", Both),
        ("ssl.engine.id", Both),
        ("enable.ssl.certificate.verification", Both),
        ("ssl.endpoint.identification.algorithm", Both),
        ("sasl.mechanisms", Both),
        ("sasl.mechanism", Both),
        ("sasl.kerberos.service.name", Both),
        ("sasl.kerberos.principal", Both),
        ("sasl.kerberos.kinit.cmd", Both),
        ("sasl.kerberos.keytab", Both),
        ("sasl.kerberos.min.time.before.relogin", Both),
        ("sasl.username", Both),
        ("sasl.password", Both),
        ("sasl.oauthbearer.config", Both),
        ("enable.sasl.oauthbearer.unsecure.jwt", Both),
        ("sasl.oauthbearer.method", Both),
        ("sasl.oauthbearer.client.id", Both),
        ("sasl.oauthbearer.client.secret", Both),
        ("sasl.oauthbearer.scope", Both),
        ("sasl.oauthbearer.extensions", Both),
        ("sasl.oauthbearer.token.endpoint.url", Both),
        ("client.rack", Both),
        ("retry.backoff.ms", Both),
        ("retry.backoff.max.ms", Both),
        ("client.dns.lookup", Both),
        ("enable.metrics.push", Both),
        // consumer
        ("group.id", Consumer),
        ("group.instance.id", Consumer),
        ("partition.assignment.strategy", Consumer),
        ("session.timeout.ms", Consumer),
        ("heartbeat.interval.ms", Consumer),
        ("group.protocol.type", Consumer),
        ("group.protocol", Consumer),
        ("group.remote.assignor", Consumer),
        ("coordinator.query.interval.ms", Consumer),
        ("max.poll.interval.ms", Consumer),
        ("enable.auto.commit", Consumer),
        ("auto.commit.interval.ms", Consumer),
        ("enable.auto.offset.store", Consumer),
        ("queued.min.messages", Consumer),
        ("queued.max.messages.kbytes", Consumer),
        ("fetch.wait.max.ms", Consumer),
        ("fetch.queue.backoff.ms", Consumer),
        ("fetch.message.max.bytes", Consumer),
        ("max.partition.fetch.bytes", Consumer),
        ("fetch.max.bytes", Consumer),
        ("fetch.min.bytes", Consumer),
        ("fetch.error.backoff.ms", Consumer),
        ("isolation.level", Consumer),
        ("enable.partition.eof", Consumer),
        ("check.crcs", Consumer),
        ("auto.offset.reset", Consumer),
        ("consume.callback.max.messages", Consumer),
        ("offset.store.method", Consumer),
        ("offset.store.path", Consumer),
        ("offset.store.sync.interval.ms", Consumer),
        // producer
        ("transactional.id", Producer),
        ("transaction.timeout.ms", Producer),
        ("enable.idempotence", Producer),
        ("enable.gapless.guarantee", Producer),
        ("queue.buffering.max.messages", Producer),
        ("queue.buffering.max.kbytes", Producer),
        ("queue.buffering.max.ms", Producer),
        ("linger.ms", Producer),
        ("message.send.max.retries", Producer),
        ("retries", Producer),
        ("queue.buffering.backpressure.threshold", Producer),
        ("compression.codec", Producer),
        ("compression.type", Producer),
        ("batch.num.messages", Producer),
        ("batch.size", Producer),
        ("delivery.report.only.error", Producer),
        ("sticky.partitioning.linger.ms", Producer),
        ("request.required.acks", Producer),
        ("acks", Producer),
        ("request.timeout.ms", Producer),
        ("message.timeout.ms", Producer),
        ("delivery.timeout.ms", Producer),
        ("partitioner", Producer),
        ("compression.level", Producer),
        ("queuing.strategy", Producer),
        ("produce.offset.report", Producer),
    ]
};

/// What to do with a Java client key librdkafka does not take as is.
enum JavaKey {
    Rename(&'static str),
    Drop(&'static str),
}

/// Java client keys librdkafka lacks, for `role`.
fn java_only(role: Role, key: &str) -> Option<JavaKey> {
    use JavaKey::*;
    let common = match key {
        "send.buffer.bytes" => Some(Rename("socket.send.buffer.bytes")),
        "receive.buffer.bytes" => Some(Rename("socket.receive.buffer.bytes")),
        "interceptor.classes" => Some(Drop("Java interceptors cannot run in librdkafka")),
        "metric.reporters"
        | "metrics.num.samples"
        | "metrics.sample.window.ms"
        | "metrics.recording.level"
        | "auto.include.jmx.reporter" => {
            Some(Drop("Java client metrics; the executor reports its own"))
        }
        "security.providers"
        | "ssl.provider"
        | "ssl.keymanager.algorithm"
        | "ssl.trustmanager.algorithm"
        | "ssl.secure.random.implementation"
        | "ssl.engine.factory.class" => Some(Drop("Java security provider setting")),
        "ssl.protocol" | "ssl.enabled.protocols" => {
            Some(Drop("librdkafka negotiates the TLS version with OpenSSL"))
        }
        "ssl.keystore.type" => Some(Drop("librdkafka reads PKCS#12 keystores only")),
        "ssl.truststore.location"
        | "ssl.truststore.password"
        | "ssl.truststore.type"
        | "ssl.truststore.certificates" => Some(Drop(
            "Java truststore; give librdkafka a PEM file in ssl.ca.location",
        )),
        "ssl.keystore.certificate.chain" | "ssl.keystore.key" => {
            Some(Drop("use ssl.certificate.pem and ssl.key.pem"))
        }
        "sasl.client.callback.handler.class"
        | "sasl.login.callback.handler.class"
        | "sasl.login.class"
        | "sasl.login.refresh.window.factor"
        | "sasl.login.refresh.window.jitter"
        | "sasl.login.refresh.min.period.seconds"
        | "sasl.login.refresh.buffer.seconds"
        | "sasl.login.connect.timeout.ms"
        | "sasl.login.read.timeout.ms"
        | "sasl.login.retry.backoff.ms"
        | "sasl.login.retry.backoff.max.ms"
        | "sasl.kerberos.ticket.renew.window.factor"
        | "sasl.kerberos.ticket.renew.jitter" => Some(Drop("Java SASL login setting")),
        "default.api.timeout.ms" => Some(Drop("Java admin/consumer API call timeout")),
        "metadata.max.idle.ms" => Some(Drop("no librdkafka equivalent")),
        "socket.connection.setup.timeout.max.ms" => Some(Drop("no librdkafka equivalent")),
        _ => None,
    };
    if common.is_some() {
        return common;
    }
    match role {
        Role::Consumer => match key {
            "key.deserializer" | "value.deserializer" => {
                Some(Drop("the mirror copies raw bytes; no deserializer runs"))
            }
            "fetch.max.wait.ms" => Some(Rename("fetch.wait.max.ms")),
            "exclude.internal.topics" => {
                Some(Drop("librdkafka never matches internal topics by regex"))
            }
            "request.timeout.ms" => Some(Drop("librdkafka's consumer has no request timeout")),
            "internal.leave.group.on.close" => Some(Drop("Java consumer internal setting")),
            "max.poll.records" => Some(Drop(
                "librdkafka hands over one record per poll; the executor batches itself",
            )),
            _ => None,
        },
        Role::Producer => match key {
            "key.serializer" | "value.serializer" => {
                Some(Drop("the mirror copies raw bytes; no serializer runs"))
            }
            "block.on.buffer.full" | "max.block.ms" | "metadata.fetch.timeout.ms" => Some(Drop(
                "the executor applies backpressure itself instead of blocking the producer",
            )),
            "buffer.memory" => Some(Drop(
                "librdkafka bounds its queue with queue.buffering.max.kbytes instead",
            )),
            "timeout.ms" => Some(Drop(
                "removed Java producer setting; use request.timeout.ms",
            )),
            "max.request.size" => Some(Rename("message.max.bytes")),
            "compression.gzip.level" | "compression.lz4.level" | "compression.zstd.level" => {
                Some(Drop("librdkafka has one compression.level for every codec"))
            }
            "partitioner.class"
            | "partitioner.ignore.keys"
            | "partitioner.adaptive.partitioning.enable"
            | "partitioner.availability.timeout.ms" => Some(Drop(
                "the mirror chooses partitions itself (see partitioning)",
            )),
            _ => None,
        },
    }
}

fn librdkafka_scope(key: &str) -> Option<Scope> {
    LIBRDKAFKA
        .iter()
        .find(|(k, _)| *k == key)
        .map(|&(_, scope)| scope)
}

/// Maps Java client `entries` for `role`; `file` names the source in errors.
pub fn map_properties<I, K, V>(
    role: Role,
    file: &str,
    entries: I,
) -> Result<Mapped, KafkaPropsError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut mapped = Mapped::default();
    let mut unknown = Vec::new();
    for (key, value) in entries {
        let (key, value) = (key.as_ref().trim(), value.as_ref());
        if key == "sasl.jaas.config" {
            for (k, v) in jaas_to_librdkafka(file, value)? {
                mapped.config.insert(k.to_owned(), v);
            }
            continue;
        }
        let target = match java_only(role, key) {
            Some(JavaKey::Drop(reason)) => {
                mapped.dropped.push(DroppedKey {
                    key: key.to_owned(),
                    reason: reason.to_owned(),
                });
                continue;
            }
            Some(JavaKey::Rename(to)) => to,
            None => key,
        };
        match librdkafka_scope(target) {
            None => unknown.push(key.to_owned()),
            Some(scope) if !scope_fits(scope, role) => mapped.dropped.push(DroppedKey {
                key: key.to_owned(),
                reason: format!("a {} property, ignored by a {role}", other(role)),
            }),
            Some(_) => {
                let value = translate_value(file, target, value)?;
                mapped.config.insert(target.to_owned(), value);
            }
        }
    }
    if unknown.is_empty() {
        Ok(mapped)
    } else {
        Err(KafkaPropsError::UnknownKeys {
            file: file.to_owned(),
            role,
            keys: unknown,
        })
    }
}

fn scope_fits(scope: Scope, role: Role) -> bool {
    matches!(
        (scope, role),
        (Scope::Both, _) | (Scope::Consumer, Role::Consumer) | (Scope::Producer, Role::Producer)
    )
}

fn other(role: Role) -> Role {
    match role {
        Role::Consumer => Role::Producer,
        Role::Producer => Role::Consumer,
    }
}

/// Translates values whose spelling differs between the clients.
fn translate_value(file: &str, key: &str, value: &str) -> Result<String, KafkaPropsError> {
    let bad = |problem: String| KafkaPropsError::BadValue {
        file: file.to_owned(),
        key: key.to_owned(),
        problem,
    };
    match key {
        "partition.assignment.strategy" => {
            let mut names = Vec::new();
            for class in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                let simple = class.rsplit('.').next().unwrap_or(class);
                let name = match simple {
                    "RangeAssignor" | "range" => "range",
                    "RoundRobinAssignor" | "roundrobin" => "roundrobin",
                    "CooperativeStickyAssignor" | "cooperative-sticky" => "cooperative-sticky",
                    _ => {
                        return Err(bad(format!(
                            "assignor {class:?} has no librdkafka equivalent \
                             (use range, roundrobin or cooperative-sticky)"
                        )))
                    }
                };
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            if names.is_empty() {
                return Err(bad("no assignor given".into()));
            }
            // librdkafka cannot mix the eager and cooperative protocols; Java's
            // default list (range, cooperative-sticky) means "range until every
            // member upgrades", so the first entry's family is kept.
            let cooperative = |n: &&str| *n == "cooperative-sticky";
            let first_is_cooperative = names.first().is_some_and(cooperative);
            names.retain(|n| cooperative(n) == first_is_cooperative);
            Ok(names.join(","))
        }
        // Java's "none" (fail without a committed offset) is librdkafka's "error"
        "auto.offset.reset" if value.trim() == "none" => Ok("error".into()),
        // Java disables host name verification with an empty value
        "ssl.endpoint.identification.algorithm" if value.trim().is_empty() => Ok("none".into()),
        _ => Ok(value.to_owned()),
    }
}

/// Turns a JAAS login configuration into librdkafka SASL properties.
fn jaas_to_librdkafka(
    file: &str,
    jaas: &str,
) -> Result<Vec<(&'static str, String)>, KafkaPropsError> {
    let bad = |problem: String| KafkaPropsError::BadValue {
        file: file.to_owned(),
        key: "sasl.jaas.config".into(),
        problem,
    };
    let parsed = parse_jaas(jaas).map_err(bad)?;
    let module = parsed.module.rsplit('.').next().unwrap_or(&parsed.module);
    let option = |name: &str| {
        parsed
            .options
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    match module {
        "PlainLoginModule" | "ScramLoginModule" => {
            let username =
                option("username").ok_or_else(|| bad(format!("{module} needs a username")))?;
            let password =
                option("password").ok_or_else(|| bad(format!("{module} needs a password")))?;
            Ok(vec![("sasl.username", username), ("sasl.password", password)])
        }
        "Krb5LoginModule" => {
            let mut out = Vec::new();
            if let Some(keytab) = option("keyTab") {
                out.push(("sasl.kerberos.keytab", keytab));
            }
            if let Some(principal) = option("principal") {
                out.push(("sasl.kerberos.principal", principal));
            }
            Ok(out)
        }
        other => Err(bad(format!(
            "login module {other} is not supported (PlainLoginModule, ScramLoginModule, Krb5LoginModule are)"
        ))),
    }
}

/// A parsed JAAS entry: `module flag key=value ... ;`.
#[derive(Debug, PartialEq, Eq)]
struct Jaas {
    module: String,
    options: Vec<(String, String)>,
}

fn parse_jaas(text: &str) -> Result<Jaas, String> {
    let mut chars = text.chars().peekable();
    let skip_ws = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
    };
    let word = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        let mut w = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == '=' || c == ';' || c == '"' {
                break;
            }
            w.push(c);
            chars.next();
        }
        w
    };
    skip_ws(&mut chars);
    let module = word(&mut chars);
    if module.is_empty() {
        return Err("missing the login module class".into());
    }
    skip_ws(&mut chars);
    let flag = word(&mut chars);
    if !matches!(
        flag.to_ascii_lowercase().as_str(),
        "required" | "requisite" | "sufficient" | "optional"
    ) {
        return Err(format!(
            "expected a control flag (required, requisite, sufficient, optional) after {module}"
        ));
    }
    let mut options = Vec::new();
    loop {
        skip_ws(&mut chars);
        match chars.peek() {
            None => return Err("missing the closing ';'".into()),
            Some(';') => {
                chars.next();
                skip_ws(&mut chars);
                if chars.peek().is_some() {
                    return Err("only one login module entry is supported".into());
                }
                return Ok(Jaas { module, options });
            }
            Some(_) => {}
        }
        let key = word(&mut chars);
        if key.is_empty() {
            return Err("expected an option name".into());
        }
        skip_ws(&mut chars);
        if chars.next() != Some('=') {
            return Err(format!("option {key} has no '='"));
        }
        skip_ws(&mut chars);
        let value = if chars.peek() == Some(&'"') {
            chars.next();
            let mut v = String::new();
            loop {
                match chars.next() {
                    None => return Err(format!("option {key}: unterminated quoted value")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => v.push(c),
                        None => return Err(format!("option {key}: unterminated quoted value")),
                    },
                    Some(c) => v.push(c),
                }
            }
            v
        } else {
            let v = word(&mut chars);
            if v.is_empty() {
                return Err(format!("option {key} has no value"));
            }
            v
        };
        options.push((key, value));
    }
}

/// Whether the value of `key` is a secret that must never be shown.
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || key == "sasl.jaas.config"
        || key.contains("passphrase")
        || key.contains("private.key.pem")
        || key == "ssl.key.pem"
        || key == "ssl.keystore.key"
        || (key.starts_with("sasl.oauthbearer.")
            && !matches!(
                key.as_str(),
                "sasl.oauthbearer.method" | "sasl.oauthbearer.scope"
            ))
}

/// `value` with the password of every `scheme://user:password@host` in it
/// replaced by `[redacted]`.
pub fn redact_url_passwords(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let end = after.find(['/', '?', '#', ' ', ',']).unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push(':');
                        out.push_str(REDACTED);
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Shows a configuration in Debug output with its secrets redacted.
pub struct Redacted<'a>(pub &'a BTreeMap<String, String>);

impl std::fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        redact(self.0).fmt(f)
    }
}

/// The value shown instead of a secret.
pub const REDACTED: &str = "[redacted]";

/// A copy of `config` with every secret value replaced by `"[redacted]"`.
pub fn redact(config: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    config
        .iter()
        .map(|(k, v)| {
            let v = if is_secret(k) {
                REDACTED.to_owned()
            } else {
                redact_url_passwords(v)
            };
            (k.clone(), v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(role: Role, entries: &[(&str, &str)]) -> Result<Mapped, KafkaPropsError> {
        map_properties(role, "k.properties", entries.iter().copied())
    }

    #[test]
    fn oauthbearer_credentials_and_url_passwords_are_secret() {
        for key in [
            "sasl.oauthbearer.client.secret",
            "sasl.oauthbearer.client.id",
            "sasl.oauthbearer.config",
            "sasl.oauthbearer.assertion.private.key.passphrase",
            "sasl.oauthbearer.extensions",
        ] {
            assert!(is_secret(key), "{key}");
        }
        assert!(!is_secret("sasl.oauthbearer.method"));
        let config = BTreeMap::from([
            (
                "sasl.oauthbearer.token.endpoint.url".to_string(),
                "https://me:pa55@idp.example/token".to_string(),
            ),
            (
                "client.rack".to_string(),
                "see http://u:hunter2@h:1/x and ftp://anon@h".to_string(),
            ),
        ]);
        let shown = format!("{:?}", redact(&config));
        assert!(
            !shown.contains("pa55") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(
            shown.contains("http://u:[redacted]@h:1/x and ftp://anon@h"),
            "{shown}"
        );
    }

    #[test]
    fn common_keys_pass_through() {
        let m = map(
            Role::Producer,
            &[
                ("bootstrap.servers", "h:9092"),
                ("acks", "all"),
                ("retries", "2147483647"),
                ("max.in.flight.requests.per.connection", "1"),
                ("compression.type", "lz4"),
                ("linger.ms", "5"),
                ("batch.size", "65536"),
                ("enable.idempotence", "true"),
                ("delivery.timeout.ms", "120000"),
                ("request.timeout.ms", "30000"),
                ("security.protocol", "SASL_SSL"),
                ("ssl.ca.location", "/ca.pem"),
            ],
        )
        .expect("maps");
        assert_eq!(m.config.len(), 12);
        assert_eq!(m.config["acks"], "all");
        assert!(m.dropped.is_empty());
    }

    #[test]
    fn consumer_keys_pass_through_and_values_translate() {
        let m = map(
            Role::Consumer,
            &[
                ("group.id", "g"),
                ("enable.auto.commit", "false"),
                ("session.timeout.ms", "30000"),
                ("auto.offset.reset", "none"),
                ("isolation.level", "read_committed"),
                (
                    "partition.assignment.strategy",
                    "org.apache.kafka.clients.consumer.RangeAssignor, org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
                ),
                ("fetch.max.wait.ms", "100"),
                ("send.buffer.bytes", "131072"),
            ],
        )
        .expect("maps");
        assert_eq!(m.config["auto.offset.reset"], "error");
        assert_eq!(m.config["partition.assignment.strategy"], "range");
        assert_eq!(m.config["fetch.wait.max.ms"], "100");
        assert_eq!(m.config["socket.send.buffer.bytes"], "131072");
        assert!(!m.config.contains_key("fetch.max.wait.ms"));
    }

    #[test]
    fn assignor_lists_keep_one_protocol_family() {
        for (java, librdkafka) in [
            ("RangeAssignor,CooperativeStickyAssignor", "range"),
            (
                "CooperativeStickyAssignor,RangeAssignor",
                "cooperative-sticky",
            ),
            ("RoundRobinAssignor,RangeAssignor", "roundrobin,range"),
        ] {
            let m = map(Role::Consumer, &[("partition.assignment.strategy", java)]).expect("maps");
            assert_eq!(m.config["partition.assignment.strategy"], librdkafka);
        }
    }

    #[test]
    fn unmappable_assignor_is_an_error() {
        let err = map(
            Role::Consumer,
            &[(
                "partition.assignment.strategy",
                "org.apache.kafka.clients.consumer.StickyAssignor",
            )],
        )
        .expect_err("sticky");
        assert!(
            err.to_string().contains("partition.assignment.strategy"),
            "{err}"
        );
        assert!(err.to_string().contains("StickyAssignor"), "{err}");
    }

    #[test]
    fn java_only_keys_are_dropped_with_a_reason() {
        let m = map(
            Role::Producer,
            &[
                ("key.serializer", "x"),
                ("block.on.buffer.full", "true"),
                ("buffer.memory", "1"),
                ("max.block.ms", "1"),
                ("interceptor.classes", "x"),
                ("max.request.size", "2000000"),
            ],
        )
        .expect("maps");
        let keys: Vec<_> = m.dropped.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "key.serializer",
                "block.on.buffer.full",
                "buffer.memory",
                "max.block.ms",
                "interceptor.classes"
            ]
        );
        assert!(m.dropped.iter().all(|d| !d.reason.is_empty()));
        assert_eq!(m.config["message.max.bytes"], "2000000");
        assert_eq!(m.config.len(), 1);
    }

    #[test]
    fn other_roles_keys_are_dropped() {
        let m = map(Role::Producer, &[("group.id", "g")]).expect("maps");
        assert_eq!(m.dropped[0].key, "group.id");
        assert!(m.dropped[0].reason.contains("consumer property"));
        let m = map(Role::Consumer, &[("acks", "all")]).expect("maps");
        assert!(m.dropped[0].reason.contains("producer property"));
    }

    #[test]
    fn unknown_keys_are_all_listed() {
        let err = map(
            Role::Consumer,
            &[
                ("group.id", "g"),
                ("no.such.key", "1"),
                ("bootstrap.server", "h"),
            ],
        )
        .expect_err("unknown");
        assert_eq!(
            err,
            KafkaPropsError::UnknownKeys {
                file: "k.properties".into(),
                role: Role::Consumer,
                keys: vec!["no.such.key".into(), "bootstrap.server".into()],
            }
        );
        assert_eq!(
            err.to_string(),
            "k.properties: unknown consumer properties: no.such.key, bootstrap.server"
        );
    }

    #[test]
    fn jaas_plain_and_scram_become_username_and_password() {
        for module in [
            "org.apache.kafka.common.security.plain.PlainLoginModule",
            "org.apache.kafka.common.security.scram.ScramLoginModule",
        ] {
            let jaas = format!(r#"{module} required username="alice" password="p;a \"s\" s";"#);
            let m = map(
                Role::Consumer,
                &[("sasl.jaas.config", &jaas), ("sasl.mechanism", "PLAIN")],
            )
            .expect("maps");
            assert_eq!(m.config["sasl.username"], "alice");
            assert_eq!(m.config["sasl.password"], "p;a \"s\" s");
            assert!(!m.config.contains_key("sasl.jaas.config"));
        }
        let unquoted = map(
            Role::Producer,
            &[(
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required\n  username=bob\n  password=pw ;",
            )],
        )
        .expect("maps");
        assert_eq!(unquoted.config["sasl.username"], "bob");
        assert_eq!(unquoted.config["sasl.password"], "pw");
    }

    #[test]
    fn jaas_kerberos_maps_keytab_and_principal() {
        let m = map(
            Role::Consumer,
            &[(
                "sasl.jaas.config",
                r#"com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab="/k.tab" principal="mmm@REALM";"#,
            )],
        )
        .expect("maps");
        assert_eq!(m.config["sasl.kerberos.keytab"], "/k.tab");
        assert_eq!(m.config["sasl.kerberos.principal"], "mmm@REALM");
    }

    #[test]
    fn bad_jaas_is_an_error_without_the_secret() {
        let cases = [
            (
                "org.x.PlainLoginModule required username=\"a\" password=\"sekrit\"",
                "closing ';'",
            ),
            ("org.x.PlainLoginModule username=\"a\";", "control flag"),
            (
                "org.x.PlainLoginModule required username=\"a\";",
                "needs a password",
            ),
            (
                "org.x.PlainLoginModule required password=\"sekrit;",
                "unterminated",
            ),
            ("org.x.OAuthBearerLoginModule required;", "not supported"),
            ("", "login module class"),
        ];
        for (jaas, expected) in cases {
            let err = map(Role::Consumer, &[("sasl.jaas.config", jaas)]).expect_err(jaas);
            let text = err.to_string();
            assert!(text.contains(expected), "{jaas}: {text}");
            assert!(text.contains("sasl.jaas.config"), "{text}");
            assert!(!text.contains("sekrit"), "{text}");
        }
    }

    #[test]
    fn redaction_hides_every_secret() {
        let config: BTreeMap<String, String> = [
            ("sasl.password", "a"),
            ("ssl.key.password", "b"),
            ("ssl.keystore.password", "c"),
            ("sasl.oauthbearer.client.secret", "d"),
            ("sasl.jaas.config", "e"),
            ("sasl.oauthbearer.assertion.private.key.passphrase", "f"),
            ("sasl.username", "alice"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let r = redact(&config);
        assert_eq!(r["sasl.username"], "alice");
        for k in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "sasl.oauthbearer.client.secret",
            "sasl.jaas.config",
        ] {
            assert_eq!(r[k], REDACTED, "{k}");
        }
    }

    #[test]
    fn consumer_only_java_keys_are_dropped() {
        let m = map(
            Role::Consumer,
            &[
                ("max.poll.records", "500"),
                ("request.timeout.ms", "1"),
                ("exclude.internal.topics", "true"),
            ],
        )
        .expect("maps");
        assert!(m.config.is_empty());
        assert_eq!(m.dropped.len(), 3);
    }

    proptest::proptest! {
        #[test]
        fn mapping_never_panics(
            key in "(sasl\\.jaas\\.config|partition\\.assignment\\.strategy|auto\\.offset\\.reset|[a-z.]{0,20})",
            value in "\\PC{0,60}",
        ) {
            for role in [Role::Consumer, Role::Producer] {
                let _ = map_properties(role, "p", [(key.as_str(), value.as_str())]);
            }
        }

        #[test]
        fn jaas_parser_never_panics(text in "[a-zA-Z. =\"\\\\;]{0,60}") {
            let _ = parse_jaas(&text);
        }
    }
}
