//! Whether an offer suits a server: resources and placement constraints.

use std::collections::BTreeSet;

use mesos_proto::resources::attribute_text;
use mesos_proto::v1;

use crate::constraints::Constraint;

/// Resource comparisons allow for floating-point dust in offered amounts.
const EPSILON: f64 = 1e-9;

/// What is still free in one offer while tasks are placed on it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Remaining {
    pub(crate) cpus: f64,
    pub(crate) mem: f64,
}

impl Remaining {
    pub(crate) fn of(offer: &v1::Offer) -> Self {
        Remaining {
            cpus: mesos_proto::resources::scalar_sum(&offer.resources, "cpus"),
            mem: mesos_proto::resources::scalar_sum(&offer.resources, "mem"),
        }
    }

    pub(crate) fn fits(&self, cpus: f64, mem: f64) -> bool {
        cpus <= self.cpus + EPSILON && mem <= self.mem + EPSILON
    }

    pub(crate) fn take(&mut self, cpus: f64, mem: f64) {
        self.cpus -= cpus;
        self.mem -= mem;
    }
}

/// The value of `name` on the offer's agent: its hostname or an attribute.
fn attribute(offer: &v1::Offer, name: &str) -> Option<String> {
    if name == "hostname" {
        return Some(offer.hostname.clone());
    }
    offer
        .attributes
        .iter()
        .find(|a| a.name == name)
        .and_then(attribute_text)
}

/// Whether every constraint allows one more task on the offer's agent;
/// `busy_hosts` are hosts that already run (or are getting) a task.
pub(crate) fn constraints_allow(
    constraints: &[Constraint],
    offer: &v1::Offer,
    busy_hosts: &BTreeSet<String>,
) -> bool {
    constraints.iter().all(|c| match c {
        Constraint::UniqueHost => !busy_hosts.contains(&offer.hostname),
        Constraint::AttributeEquals { name, value } => {
            attribute(offer, name).is_some_and(|v| v == *value)
        }
        Constraint::AttributeLike { name, pattern } => {
            attribute(offer, name).is_some_and(|v| pattern.matches_whole(&v))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::{ids, resources::scalar};

    fn offer(host: &str, attrs: &[(&str, &str)]) -> v1::Offer {
        v1::Offer {
            id: ids::offer_id("o"),
            framework_id: ids::framework_id("f"),
            agent_id: ids::agent_id("a"),
            hostname: host.into(),
            resources: vec![
                scalar("cpus", 1.0),
                scalar("cpus", 0.5),
                scalar("mem", 512.0),
            ],
            attributes: attrs
                .iter()
                .map(|(n, v)| v1::Attribute {
                    name: (*n).into(),
                    r#type: v1::value::Type::Text as i32,
                    text: Some(v1::value::Text { value: (*v).into() }),
                    ..v1::Attribute::default()
                })
                .collect(),
            ..v1::Offer::default()
        }
    }

    #[test]
    fn remaining_sums_and_takes() {
        let mut r = Remaining::of(&offer("h", &[]));
        assert!(r.fits(1.5, 512.0));
        assert!(!r.fits(1.6, 1.0));
        r.take(1.0, 256.0);
        assert!(r.fits(0.5, 256.0));
        assert!(!r.fits(0.5, 257.0));
    }

    #[test]
    fn constraints_match_hosts_and_attributes() {
        let o = offer("h1", &[("rack", "r1")]);
        let none = BTreeSet::new();
        let busy: BTreeSet<String> = ["h1".to_string()].into();
        let parse = |t: &str| Constraint::parse(t).expect("constraint");
        assert!(constraints_allow(&[parse("hostname:unique")], &o, &none));
        assert!(!constraints_allow(&[parse("hostname:unique")], &o, &busy));
        assert!(constraints_allow(&[parse("rack:equals:r1")], &o, &none));
        assert!(!constraints_allow(&[parse("rack:equals:r2")], &o, &none));
        assert!(!constraints_allow(&[parse("zone:equals:r1")], &o, &none));
        assert!(constraints_allow(&[parse("rack:like:r[0-9]")], &o, &none));
        assert!(!constraints_allow(&[parse("rack:like:r")], &o, &none));
        assert!(constraints_allow(&[parse("hostname:like:h.*")], &o, &none));
    }
}
