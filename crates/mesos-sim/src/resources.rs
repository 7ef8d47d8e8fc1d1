//! Resource arithmetic: what an agent has, what is used, what an offer holds.
//!
//! Only unreserved resources exist in the simulator (role `*`), so a set is a
//! map of scalar amounts and a map of integer ranges, by resource name.

use std::collections::BTreeMap;
use std::fmt;

use mesos_proto::v1::{resource, value, Resource};

/// Scalars are compared with Mesos's fixed-point precision (3 decimals).
const EPSILON: f64 = 0.0005;

/// How resources are written for one framework, by its capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceFormat {
    /// MULTI_ROLE: each resource carries `allocation_info`.
    pub allocation_info: bool,
    /// Without RESERVATION_REFINEMENT each resource carries `role: "*"`.
    pub legacy_role: bool,
}

/// A set of unreserved resources.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceSet {
    scalars: BTreeMap<String, f64>,
    ranges: BTreeMap<String, Vec<(u64, u64)>>,
}

impl ResourceSet {
    /// cpus, mem, disk and ports, as an agent declares them.
    pub fn agent(cpus: f64, mem: f64, disk: f64, ports: &[(u64, u64)]) -> Self {
        let mut set = Self::default();
        set.scalars.insert("cpus".into(), cpus);
        set.scalars.insert("mem".into(), mem);
        set.scalars.insert("disk".into(), disk);
        if !ports.is_empty() {
            set.ranges.insert("ports".into(), normalize(ports.to_vec()));
        }
        set
    }

    /// Reads resources from a call, checking them the way the master does
    /// before it compares them with an offer. `offered_role` is the role of
    /// the offer they must come from.
    pub fn parse(resources: &[Resource], offered_role: &str) -> Result<Self, String> {
        let mut set = Self::default();
        for r in resources {
            if r.name.is_empty() {
                return Err("Invalid resources: Empty resource name".into());
            }
            if r.reservation.is_some() || !r.reservations.is_empty() {
                return Err(format!(
                    "Invalid resources: resource '{}' is reserved, and mesos-sim only has unreserved resources",
                    r.name
                ));
            }
            if r.disk.is_some() || r.revocable.is_some() || r.shared.is_some() {
                return Err(format!(
                    "Invalid resources: resource '{}' uses disk, revocable or shared info, which mesos-sim does not offer",
                    r.name
                ));
            }
            #[allow(deprecated)]
            if let Some(role) = &r.role {
                if role != "*" {
                    return Err(format!(
                        "Invalid resources: resource '{}' has role '{role}' but only '*' resources exist",
                        r.name
                    ));
                }
            }
            if let Some(alloc) = &r.allocation_info {
                if alloc.role.as_deref() != Some(offered_role) {
                    return Err(format!(
                        "Invalid task resources: resource '{}' is allocated to role '{}' but the offer was allocated to '{offered_role}'",
                        r.name,
                        alloc.role.as_deref().unwrap_or("")
                    ));
                }
            }
            match value::Type::try_from(r.r#type) {
                Ok(value::Type::Scalar) => {
                    let Some(s) = &r.scalar else {
                        return Err(format!(
                            "Invalid resources: scalar resource '{}' has no 'scalar' value",
                            r.name
                        ));
                    };
                    if !s.value.is_finite() || s.value < 0.0 {
                        return Err(format!(
                            "Invalid resources: resource '{}' has invalid scalar value {}",
                            r.name, s.value
                        ));
                    }
                    *set.scalars.entry(r.name.clone()).or_insert(0.0) += s.value;
                }
                Ok(value::Type::Ranges) => {
                    let Some(rs) = &r.ranges else {
                        return Err(format!(
                            "Invalid resources: ranges resource '{}' has no 'ranges' value",
                            r.name
                        ));
                    };
                    let mut list: Vec<(u64, u64)> = Vec::new();
                    for range in &rs.range {
                        if range.begin > range.end {
                            return Err(format!(
                                "Invalid resources: resource '{}' has range [{}-{}] with begin after end",
                                r.name, range.begin, range.end
                            ));
                        }
                        list.push((range.begin, range.end));
                    }
                    let entry = set.ranges.entry(r.name.clone()).or_default();
                    entry.extend(list);
                    *entry = normalize(std::mem::take(entry));
                }
                _ => {
                    return Err(format!(
                        "Invalid resources: resource '{}' has a type mesos-sim does not offer (only SCALAR and RANGES)",
                        r.name
                    ))
                }
            }
        }
        Ok(set)
    }

    /// Nothing at all.
    pub fn is_empty(&self) -> bool {
        self.scalars.values().all(|v| *v < EPSILON) && self.ranges.values().all(Vec::is_empty)
    }

    /// The amount of scalar `name`.
    pub fn scalar(&self, name: &str) -> f64 {
        self.scalars.get(name).copied().unwrap_or(0.0)
    }

    /// The ranges of `name`.
    pub fn ranges(&self, name: &str) -> &[(u64, u64)] {
        self.ranges.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Whether every resource of `other` is in `self`.
    pub fn contains(&self, other: &Self) -> bool {
        other
            .scalars
            .iter()
            .all(|(name, v)| *v < EPSILON || self.scalar(name) + EPSILON >= *v)
            && other.ranges.iter().all(|(name, wanted)| {
                let have = self.ranges(name);
                wanted
                    .iter()
                    .all(|(b, e)| have.iter().any(|(hb, he)| hb <= b && e <= he))
            })
    }

    /// `self + other`.
    pub fn add(&mut self, other: &Self) {
        for (name, v) in &other.scalars {
            *self.scalars.entry(name.clone()).or_insert(0.0) += v;
        }
        for (name, rs) in &other.ranges {
            let entry = self.ranges.entry(name.clone()).or_default();
            entry.extend(rs.iter().copied());
            *entry = normalize(std::mem::take(entry));
        }
    }

    /// `self - other`, never below zero.
    pub fn subtract(&mut self, other: &Self) {
        for (name, v) in &other.scalars {
            if let Some(have) = self.scalars.get_mut(name) {
                *have = round3((*have - v).max(0.0));
            }
        }
        for (name, rs) in &other.ranges {
            if let Some(have) = self.ranges.get_mut(name) {
                *have = subtract_ranges(have, rs);
            }
        }
    }

    /// Whether the set is worth offering (Mesos's default
    /// `min_allocatable_resources`: cpus 0.01 or mem 32).
    pub fn allocatable(&self) -> bool {
        self.scalar("cpus") >= 0.01 || self.scalar("mem") >= 32.0
    }

    /// The resources as an agent reports them in AgentInfo: cpus, mem, disk,
    /// ports, other scalars; no role.
    pub fn to_agent_info(&self) -> Vec<Resource> {
        self.to_proto_ordered(&["cpus", "mem", "disk"], true, None)
    }

    /// The resources as offered to a framework: ports first, then cpus, mem,
    /// disk, as the master orders them.
    pub fn to_offer(&self, format: ResourceFormat, role: &str) -> Vec<Resource> {
        self.to_proto_ordered(&["cpus", "mem", "disk"], false, Some((format, role)))
    }

    fn to_proto_ordered(
        &self,
        scalar_order: &[&str],
        ranges_last: bool,
        format: Option<(ResourceFormat, &str)>,
    ) -> Vec<Resource> {
        let mut scalars: Vec<Resource> = Vec::new();
        let mut names: Vec<&str> = scalar_order.to_vec();
        names.extend(
            self.scalars
                .keys()
                .map(String::as_str)
                .filter(|n| !scalar_order.contains(n)),
        );
        for name in names {
            let v = self.scalar(name);
            if v >= EPSILON {
                scalars.push(Resource {
                    name: name.to_owned(),
                    r#type: value::Type::Scalar as i32,
                    scalar: Some(value::Scalar { value: v }),
                    ..Resource::default()
                });
            }
        }
        let mut ranges: Vec<Resource> = Vec::new();
        for (name, rs) in &self.ranges {
            if !rs.is_empty() {
                ranges.push(Resource {
                    name: name.clone(),
                    r#type: value::Type::Ranges as i32,
                    ranges: Some(value::Ranges {
                        range: rs
                            .iter()
                            .map(|(b, e)| value::Range { begin: *b, end: *e })
                            .collect(),
                    }),
                    ..Resource::default()
                });
            }
        }
        let mut out = if ranges_last {
            scalars.extend(ranges);
            scalars
        } else {
            ranges.extend(scalars);
            ranges
        };
        if let Some((format, role)) = format {
            for r in &mut out {
                if format.legacy_role {
                    #[allow(deprecated)]
                    {
                        r.role = Some("*".into());
                    }
                }
                if format.allocation_info {
                    r.allocation_info = Some(resource::AllocationInfo {
                        role: Some(role.to_owned()),
                    });
                }
            }
        }
        out
    }
}

impl fmt::Display for ResourceSet {
    /// Mesos's own notation, e.g. `cpus:0.1; mem:64; ports:[31000-31000]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        for (name, v) in &self.scalars {
            if *v >= EPSILON {
                parts.push(format!("{name}:{}", round3(*v)));
            }
        }
        for (name, rs) in &self.ranges {
            if !rs.is_empty() {
                let list: Vec<String> = rs.iter().map(|(b, e)| format!("{b}-{e}")).collect();
                parts.push(format!("{name}:[{}]", list.join(", ")));
            }
        }
        if parts.is_empty() {
            write!(f, "{{}}")
        } else {
            write!(f, "{}", parts.join("; "))
        }
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn normalize(mut list: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    list.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(list.len());
    for (b, e) in list {
        match out.last_mut() {
            Some(last) if b <= last.1.saturating_add(1) => last.1 = last.1.max(e),
            _ => out.push((b, e)),
        }
    }
    out
}

fn subtract_ranges(have: &[(u64, u64)], remove: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = have.to_vec();
    for &(rb, re) in remove {
        let mut next = Vec::with_capacity(out.len() + 1);
        for (b, e) in out {
            if re < b || rb > e {
                next.push((b, e));
                continue;
            }
            if rb > b {
                next.push((b, rb - 1));
            }
            if re < e {
                next.push((re.saturating_add(1), e));
            }
        }
        out = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(rs: &[(u64, u64)]) -> Resource {
        Resource {
            name: "ports".into(),
            r#type: value::Type::Ranges as i32,
            ranges: Some(value::Ranges {
                range: rs
                    .iter()
                    .map(|(b, e)| value::Range { begin: *b, end: *e })
                    .collect(),
            }),
            ..Resource::default()
        }
    }

    #[test]
    fn subtracting_a_port_splits_the_range() {
        let mut agent = ResourceSet::agent(2.0, 1024.0, 100.0, &[(31000, 31100)]);
        let used = ResourceSet::parse(
            &[
                mesos_proto::resources::scalar("cpus", 0.5),
                ports(&[(31010, 31010)]),
            ],
            "*",
        )
        .expect("valid");
        assert!(agent.contains(&used));
        agent.subtract(&used);
        assert_eq!(agent.scalar("cpus"), 1.5);
        assert_eq!(agent.ranges("ports"), &[(31000, 31009), (31011, 31100)]);
        assert!(!agent.contains(&used), "port 31010 is gone");
        agent.add(&used);
        assert_eq!(agent.ranges("ports"), &[(31000, 31100)]);
    }

    #[test]
    fn rejects_negative_and_foreign_role_resources() {
        let err = ResourceSet::parse(&[mesos_proto::resources::scalar("cpus", -1.0)], "*")
            .expect_err("negative");
        assert!(err.contains("cpus"), "{err}");
        #[allow(deprecated)]
        let web = Resource {
            role: Some("web".into()),
            ..mesos_proto::resources::scalar("mem", 1.0)
        };
        let err = ResourceSet::parse(&[web], "*").expect_err("reserved role");
        assert!(err.contains("role 'web'"), "{err}");
    }

    #[test]
    fn offer_format_follows_capabilities() {
        let set = ResourceSet::agent(1.0, 2.0, 3.0, &[(1, 2)]);
        let legacy = set.to_offer(
            ResourceFormat {
                allocation_info: false,
                legacy_role: true,
            },
            "*",
        );
        assert_eq!(legacy[0].name, "ports");
        #[allow(deprecated)]
        let roles: Vec<_> = legacy.iter().map(|r| r.role.clone()).collect();
        assert!(roles.iter().all(|r| r.as_deref() == Some("*")));
        assert!(legacy.iter().all(|r| r.allocation_info.is_none()));
        let multi = set.to_offer(
            ResourceFormat {
                allocation_info: true,
                legacy_role: false,
            },
            "*",
        );
        #[allow(deprecated)]
        let no_role = multi
            .iter()
            .all(|r| r.role.is_none() && r.allocation_info.is_some());
        assert!(no_role);
    }
}
