//! Whether an offer suits a server: resources and placement constraints.

use std::collections::BTreeSet;

use mesos_proto::resources::attribute_text;
use mesos_proto::v1;

use crate::constraints::Constraint;

/// Mesos keeps scalars in fixed point with three decimals.
const PRECISION: f64 = 1000.0;
/// Resource comparisons allow for floating-point dust in offered amounts.
const EPSILON: f64 = 1e-6;

fn round3(v: f64) -> f64 {
    (v * PRECISION).round() / PRECISION
}

/// Whether `r` is reserved (to the role it was offered to), in either
/// reservation format.
pub(crate) fn is_reserved(r: &v1::Resource) -> bool {
    #[allow(deprecated)]
    let legacy = r.role.as_deref().is_some_and(|role| role != "*");
    legacy || !r.reservations.is_empty()
}

/// Whether a task may use `r` for its cpus or mem: a plain scalar, not
/// revocable, not a volume, not from a resource provider.
fn usable(r: &v1::Resource) -> bool {
    (r.name == "cpus" || r.name == "mem")
        && r.r#type == v1::value::Type::Scalar as i32
        && r.scalar.is_some()
        && r.revocable.is_none()
        && r.disk.is_none()
        && r.shared.is_none()
        && r.provider_id.is_none()
}

/// What is still free in one offer while tasks are placed on it: its cpus
/// and mem entries, reserved ones first, each keeping its reservation and
/// allocation so that what is taken from it can be launched as offered.
#[derive(Debug, Clone)]
pub(crate) struct Remaining {
    pools: Vec<v1::Resource>,
}

impl Remaining {
    pub(crate) fn of(offer: &v1::Offer) -> Self {
        let mut pools: Vec<v1::Resource> = offer
            .resources
            .iter()
            .filter(|r| usable(r))
            .cloned()
            .map(|mut r| {
                if r.allocation_info.is_none() {
                    r.allocation_info = offer.allocation_info.clone();
                }
                r
            })
            .collect();
        // stable: reserved before unreserved, offer order otherwise
        pools.sort_by_key(|r| !is_reserved(r));
        Remaining { pools }
    }

    fn total(&self, name: &str) -> f64 {
        self.pools
            .iter()
            .filter(|r| r.name == name)
            .filter_map(|r| r.scalar.as_ref().map(|s| s.value))
            .sum()
    }

    pub(crate) fn fits(&self, cpus: f64, mem: f64) -> bool {
        round3(cpus) <= self.total("cpus") + EPSILON && round3(mem) <= self.total("mem") + EPSILON
    }

    /// Takes `cpus` and `mem` (which must fit) and returns them as
    /// resources to launch with: one entry per offered entry they come
    /// from, with that entry's reservation and allocation.
    pub(crate) fn take(&mut self, cpus: f64, mem: f64) -> Vec<v1::Resource> {
        let mut out = Vec::new();
        for (name, amount) in [("cpus", cpus), ("mem", mem)] {
            let mut need = round3(amount);
            for pool in self.pools.iter_mut().filter(|r| r.name == name) {
                if need < EPSILON {
                    break;
                }
                let Some(have) = pool.scalar.as_mut() else {
                    continue;
                };
                let taken = round3(need.min(have.value));
                if taken < EPSILON {
                    continue;
                }
                have.value = round3(have.value - taken);
                need = round3(need - taken);
                let mut piece = pool.clone();
                piece.scalar = Some(v1::value::Scalar { value: taken });
                out.push(piece);
            }
        }
        out
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
        let taken = r.take(1.2, 256.0);
        assert_eq!(
            taken
                .iter()
                .map(|x| (x.name.as_str(), x.scalar.map(|s| s.value)))
                .collect::<Vec<_>>(),
            [
                ("cpus", Some(1.0)),
                ("cpus", Some(0.2)),
                ("mem", Some(256.0))
            ]
        );
        assert!(r.fits(0.3, 256.0));
        assert!(!r.fits(0.31, 1.0));
        assert!(!r.fits(0.3, 257.0));
    }

    #[allow(deprecated)]
    fn reserved(name: &str, amount: f64, refined: bool) -> v1::Resource {
        let mut r = scalar(name, amount);
        if refined {
            r.reservations = vec![v1::resource::ReservationInfo {
                r#type: Some(v1::resource::reservation_info::Type::Dynamic as i32),
                role: Some("mirror".into()),
                principal: Some("ops".into()),
                labels: None,
            }];
            r.allocation_info = Some(v1::resource::AllocationInfo {
                role: Some("mirror".into()),
            });
        } else {
            r.role = Some("mirror".into());
        }
        r
    }

    #[test]
    fn reserved_resources_go_first_and_keep_their_reservation() {
        for refined in [false, true] {
            let mut o = offer("h", &[]);
            #[allow(deprecated)]
            for r in &mut o.resources {
                r.role = (!refined).then(|| "*".into());
            }
            o.resources.push(reserved("cpus", 0.25, refined));
            o.resources.push(reserved("mem", 100.0, refined));
            o.resources.push(v1::Resource {
                revocable: Some(v1::resource::RevocableInfo {}),
                ..scalar("cpus", 8.0)
            });
            let mut r = Remaining::of(&o);
            assert!(!r.fits(1.76, 1.0), "revocable cpus are not used");
            let taken = r.take(0.5, 150.0);
            assert_eq!(taken.len(), 4, "{taken:?}");
            assert!(is_reserved(&taken[0]) && taken[0].name == "cpus");
            assert_eq!(taken[0].scalar.map(|s| s.value), Some(0.25));
            assert_eq!(taken[0].reservations, o.resources[3].reservations);
            assert_eq!(taken[0].allocation_info, o.resources[3].allocation_info);
            #[allow(deprecated)]
            {
                assert_eq!(taken[0].role, o.resources[3].role);
                assert_eq!(taken[1].role, o.resources[0].role);
            }
            assert!(!is_reserved(&taken[1]));
            assert_eq!(taken[1].scalar.map(|s| s.value), Some(0.25));
            assert!(is_reserved(&taken[2]) && taken[2].name == "mem");
            assert_eq!(taken[2].scalar.map(|s| s.value), Some(100.0));
            assert_eq!(taken[3].scalar.map(|s| s.value), Some(50.0));
        }
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
