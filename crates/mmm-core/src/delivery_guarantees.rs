//! The client settings at-least-once mirroring depends on, in one place.
//!
//! The executor commits a source offset only after the target acknowledged
//! every record below it. That promise holds only when an acknowledgement
//! means the record is replicated (`acks=all`), when the producer's retries
//! can neither duplicate nor reorder records within a partition
//! (`enable.idempotence=true`), when no transaction can abort what was
//! acknowledged (no `transactional.id`), and when the consumer never hands
//! over records of aborted transactions (`isolation.level=read_committed`).
//! A configuration that asks for less is refused with a message naming the
//! key, at scheduler start and in the task data, rather than weakened quietly.
//!
//! Property names are librdkafka's (the scheduler maps Java names first;
//! the ones checked here are spelled the same in both clients).

use std::collections::BTreeMap;

use thiserror::Error;

/// Consumer defaults the executor applies when the properties do not set
/// them, with the reason.
pub const CONSUMER_DEFAULTS: &[(&str, &str, &str)] = &[(
    "auto.offset.reset",
    "earliest",
    "a new mirror copies what the source already holds, and a mirror that fell behind \
     retention resumes at the oldest record left instead of jumping to the head of the log",
)];

/// Producer settings the executor always applies, with the reason.
pub const PRODUCER_ENFORCED: &[(&str, &str, &str)] = &[
    (
        "acks",
        "all",
        "an offset is committed only for records every in-sync replica of the target holds",
    ),
    (
        "enable.idempotence",
        "true",
        "the producer's retries neither duplicate nor reorder records within a partition",
    ),
];

/// A client setting that would weaken the mirror's guarantees.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GuaranteeError {
    /// The property holds a weaker value than mirroring needs.
    #[error(
        "the {role} property `{key}` is {value:?}: mirroring needs {required:?}, so that {why}"
    )]
    Weaker {
        /// `consumer` or `producer`.
        role: &'static str,
        /// The property.
        key: String,
        /// Its value.
        value: String,
        /// The value mirroring needs.
        required: &'static str,
        /// What the required value guarantees.
        why: &'static str,
    },
    /// The property must not be set at all.
    #[error("the {role} property `{key}` is refused: {why}")]
    Refused {
        /// `consumer` or `producer`.
        role: &'static str,
        /// The property.
        key: String,
        /// Why it cannot be used.
        why: &'static str,
    },
}

impl GuaranteeError {
    /// The offending property.
    pub fn key(&self) -> &str {
        match self {
            GuaranteeError::Weaker { key, .. } | GuaranteeError::Refused { key, .. } => key,
        }
    }
}

fn value<'a>(props: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    props.get(key).map(|v| v.trim())
}

/// Checks consumer properties (librdkafka names).
pub fn check_consumer(props: &BTreeMap<String, String>) -> Result<(), GuaranteeError> {
    if let Some(v) = value(props, "isolation.level") {
        if !v.eq_ignore_ascii_case("read_committed") {
            return Err(GuaranteeError::Weaker {
                role: "consumer",
                key: "isolation.level".into(),
                value: v.to_owned(),
                required: "read_committed",
                why: "records of aborted transactions never reach the target",
            });
        }
    }
    Ok(())
}

/// Checks producer properties (librdkafka names).
pub fn check_producer(props: &BTreeMap<String, String>) -> Result<(), GuaranteeError> {
    for key in ["acks", "request.required.acks"] {
        if let Some(v) = value(props, key) {
            if !(v.eq_ignore_ascii_case("all") || v == "-1") {
                return Err(GuaranteeError::Weaker {
                    role: "producer",
                    key: key.into(),
                    value: v.to_owned(),
                    required: "all",
                    why: PRODUCER_ENFORCED[0].2,
                });
            }
        }
    }
    if let Some(v) = value(props, "enable.idempotence") {
        if !v.eq_ignore_ascii_case("true") {
            return Err(GuaranteeError::Weaker {
                role: "producer",
                key: "enable.idempotence".into(),
                value: v.to_owned(),
                required: "true",
                why: PRODUCER_ENFORCED[1].2,
            });
        }
    }
    if props.contains_key("transactional.id") {
        return Err(GuaranteeError::Refused {
            role: "producer",
            key: "transactional.id".into(),
            why: "the executor produces without transactions; with a transactional id \
                  every send outside a transaction fails",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn strong_and_absent_settings_pass() {
        assert_eq!(check_producer(&props(&[])), Ok(()));
        assert_eq!(
            check_producer(&props(&[
                ("acks", "all"),
                ("request.required.acks", "-1"),
                ("enable.idempotence", "TRUE"),
            ])),
            Ok(())
        );
        assert_eq!(
            check_consumer(&props(&[("isolation.level", "read_committed")])),
            Ok(())
        );
    }

    #[test]
    fn weaker_acks_are_refused_naming_the_key() {
        for (key, v) in [("acks", "1"), ("acks", "0"), ("request.required.acks", "1")] {
            let err = check_producer(&props(&[(key, v)])).expect_err("weaker acks");
            assert_eq!(err.key(), key);
            let text = err.to_string();
            assert!(
                text.contains(&format!("`{key}`")) && text.contains("\"all\""),
                "{text}"
            );
        }
    }

    #[test]
    fn idempotence_off_and_transactions_are_refused() {
        let err = check_producer(&props(&[("enable.idempotence", "false")])).expect_err("off");
        assert!(err.to_string().contains("`enable.idempotence`"), "{err}");
        let err = check_producer(&props(&[("transactional.id", "tx")])).expect_err("tx");
        assert_eq!(err.key(), "transactional.id");
        assert!(err.to_string().contains("refused"), "{err}");
    }

    #[test]
    fn read_uncommitted_is_refused() {
        let err = check_consumer(&props(&[("isolation.level", "read_uncommitted")]))
            .expect_err("weaker isolation");
        assert!(err.to_string().contains("`isolation.level`"), "{err}");
    }
}
