//! Resource arithmetic: what an agent has, what is used, what an offer holds.
//!
//! A set is a list of entries in Mesos's order, one per resource name and
//! reservation (unreserved, or reserved to a role statically or
//! dynamically), the way Mesos's `Resources` keeps them: resources reserved
//! to a role are distinct from unreserved ones and never satisfy each other.

use std::fmt;

use mesos_proto::v1::{resource, value, Labels, Resource};

/// Scalars are compared with Mesos's fixed-point precision (3 decimals).
const EPSILON: f64 = 0.0005;

/// How resources are written for one framework, by its capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceFormat {
    /// MULTI_ROLE: each resource carries `allocation_info`.
    pub allocation_info: bool,
    /// Without RESERVATION_REFINEMENT: the pre-refinement format, `role`
    /// (`"*"` when unreserved) and `reservation` for dynamic reservations.
    pub legacy_role: bool,
}

/// One reservation of a resource, in the post-refinement format Mesos
/// uses internally.
#[derive(Debug, Clone, PartialEq)]
pub struct Reservation {
    /// DYNAMIC (made by an operator or a framework) rather than STATIC
    /// (the agent's `--resources`).
    pub dynamic: bool,
    /// The role the resource is reserved to.
    pub role: String,
    /// Who made a dynamic reservation.
    pub principal: Option<String>,
    /// Labels of a dynamic reservation.
    pub labels: Option<Labels>,
}

impl Reservation {
    fn to_proto(&self) -> resource::ReservationInfo {
        let kind = if self.dynamic {
            resource::reservation_info::Type::Dynamic
        } else {
            resource::reservation_info::Type::Static
        };
        resource::ReservationInfo {
            r#type: Some(kind as i32),
            role: Some(self.role.clone()),
            principal: self.principal.clone(),
            labels: self.labels.clone(),
        }
    }
}

impl fmt::Display for Reservation {
    /// `(STATIC,mirror)`, `(DYNAMIC,mirror,ops)`, as Mesos prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.dynamic { "DYNAMIC" } else { "STATIC" };
        write!(f, "({kind},{}", self.role)?;
        if let Some(p) = &self.principal {
            write!(f, ",{p}")?;
        }
        if let Some(labels) = &self.labels {
            let list: Vec<String> = labels
                .labels
                .iter()
                .map(|l| match &l.value {
                    Some(v) => format!("{}: {v}", l.key),
                    None => l.key.clone(),
                })
                .collect();
            write!(f, ",{{{}}}", list.join(", "))?;
        }
        write!(f, ")")
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Amount {
    Scalar(f64),
    Ranges(Vec<(u64, u64)>),
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    name: String,
    reservations: Vec<Reservation>,
    amount: Amount,
}

impl Entry {
    fn same_kind(&self, other: &Entry) -> bool {
        self.name == other.name
            && self.reservations == other.reservations
            && matches!(
                (&self.amount, &other.amount),
                (Amount::Scalar(_), Amount::Scalar(_)) | (Amount::Ranges(_), Amount::Ranges(_))
            )
    }

    fn is_empty(&self) -> bool {
        match &self.amount {
            Amount::Scalar(v) => *v < EPSILON,
            Amount::Ranges(r) => r.is_empty(),
        }
    }

    /// The role of the innermost reservation, if reserved.
    fn reserved_role(&self) -> Option<&str> {
        self.reservations.last().map(|r| r.role.as_str())
    }
}

/// A resource of an agent reserved to a role, as `AgentConfig` declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reserved {
    /// `cpus`, `mem`, `disk` (scalars only).
    pub name: String,
    /// The amount.
    pub amount: f64,
    /// The role it is reserved to.
    pub role: String,
    /// `Some`: a DYNAMIC reservation made by this principal; `None`: STATIC.
    pub principal: Option<String>,
}

impl Reserved {
    /// Reads reserved resources in the notation of a Mesos agent's
    /// `--resources`: `cpus(mirror):1;mem(mirror):512` (static), with a
    /// principal for a dynamic reservation: `cpus(mirror,ops):1`.
    pub fn parse_list(text: &str) -> Result<Vec<Reserved>, String> {
        text.split(';')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                let bad = |why: &str| format!("reserved resource {part:?}: {why}");
                let (head, amount) = part
                    .rsplit_once(':')
                    .ok_or_else(|| bad("expected name(role):amount"))?;
                let amount: f64 = amount
                    .trim()
                    .parse()
                    .map_err(|_| bad("the amount is not a number"))?;
                let (name, rest) = head
                    .split_once('(')
                    .ok_or_else(|| bad("expected name(role):amount"))?;
                let inner = rest
                    .strip_suffix(')')
                    .ok_or_else(|| bad("the role is not closed by ')'"))?;
                let (role, principal) = match inner.split_once(',') {
                    Some((role, principal)) => (role.trim(), Some(principal.trim().to_owned())),
                    None => (inner.trim(), None),
                };
                if name.trim().is_empty() || role.is_empty() {
                    return Err(bad("the name and the role must not be empty"));
                }
                Ok(Reserved {
                    name: name.trim().to_owned(),
                    amount,
                    role: role.to_owned(),
                    principal,
                })
            })
            .collect()
    }
}

/// A set of resources.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceSet {
    entries: Vec<Entry>,
}

/// The reservations of `r`, read from either format, checked the way
/// Mesos's `Resources::validate` checks them.
fn reservations_of(r: &Resource) -> Result<Vec<Reservation>, String> {
    #[allow(deprecated)]
    let legacy_role = r.role.as_deref();
    if r.reservations.is_empty() {
        let role = legacy_role.unwrap_or("*");
        crate::master::validate_role(role)?;
        if role == "*" {
            if r.reservation.is_some() {
                return Err(
                    "Invalid reservation: role \"*\" cannot be dynamically reserved".into(),
                );
            }
            return Ok(Vec::new());
        }
        return match &r.reservation {
            None => Ok(vec![Reservation {
                dynamic: false,
                role: role.to_owned(),
                principal: None,
                labels: None,
            }]),
            Some(info) => {
                if info.r#type.is_some() {
                    return Err("'Resource.ReservationInfo.type' must not be set for the 'Resource.reservation' field".into());
                }
                if info.role.is_some() {
                    return Err("'Resource.ReservationInfo.role' must not be set for the 'Resource.reservation' field".into());
                }
                Ok(vec![Reservation {
                    dynamic: true,
                    role: role.to_owned(),
                    principal: info.principal.clone(),
                    labels: info.labels.clone(),
                }])
            }
        };
    }
    let mut out = Vec::with_capacity(r.reservations.len());
    for info in &r.reservations {
        let kind = info
            .r#type
            .and_then(|t| resource::reservation_info::Type::try_from(t).ok())
            .ok_or("Invalid reservation: 'Resource.ReservationInfo.type' field must be set.")?;
        let role = info
            .role
            .clone()
            .ok_or("Invalid reservation: 'Resource.ReservationInfo.role' field must be set.")?;
        crate::master::validate_role(&role)?;
        if role == "*" {
            return Err("Invalid reservation: role \"*\" cannot be reserved".into());
        }
        let dynamic = match kind {
            resource::reservation_info::Type::Static => false,
            resource::reservation_info::Type::Dynamic => true,
            resource::reservation_info::Type::Unknown => {
                return Err(
                    "Invalid reservation: 'Resource.ReservationInfo.type' field must be set."
                        .into(),
                )
            }
        };
        if !out.is_empty() && !dynamic {
            return Err(
                "Invalid refined reservation: A refined reservation cannot be STATIC".into(),
            );
        }
        out.push(Reservation {
            dynamic,
            role,
            principal: info.principal.clone(),
            labels: info.labels.clone(),
        });
    }
    if let [single] = out.as_slice() {
        if let Some(role) = legacy_role {
            if role != single.role {
                return Err(format!(
                    "Invalid resource format: 'Resource.role' field with '{role}' does not match the role '{}' in 'Resource.reservations'",
                    single.role
                ));
            }
        }
        if !single.dynamic && r.reservation.is_some() {
            return Err("Invalid resource format: 'Resource.reservation' must not be set if the single reservation in 'Resource.reservations' is STATIC".into());
        }
        if single.dynamic && legacy_role.is_some() != r.reservation.is_some() {
            return Err("Invalid resource format: 'Resource.role' and 'Resource.reservation' must either be both set or both not set if the single reservation in 'Resource.reservations' is DYNAMIC".into());
        }
    } else if legacy_role.is_some() || r.reservation.is_some() {
        return Err("Invalid resource format: 'Resource.role' and 'Resource.reservation' must not be set with refined reservations".into());
    }
    Ok(out)
}

impl ResourceSet {
    /// What an agent declares: its reserved resources first, then the
    /// unreserved ports, cpus, mem and disk, in the order the master offers them.
    pub fn agent(
        cpus: f64,
        mem: f64,
        disk: f64,
        ports: &[(u64, u64)],
        reserved: &[Reserved],
    ) -> Self {
        let mut set = Self::default();
        for r in reserved {
            set.push(Entry {
                name: r.name.clone(),
                reservations: vec![Reservation {
                    dynamic: r.principal.is_some(),
                    role: r.role.clone(),
                    principal: r.principal.clone(),
                    labels: None,
                }],
                amount: Amount::Scalar(round3(r.amount)),
            });
        }
        if !ports.is_empty() {
            set.push(Entry {
                name: "ports".into(),
                reservations: Vec::new(),
                amount: Amount::Ranges(normalize(ports.to_vec())),
            });
        }
        for (name, v) in [("cpus", cpus), ("mem", mem), ("disk", disk)] {
            set.push(Entry {
                name: name.into(),
                reservations: Vec::new(),
                amount: Amount::Scalar(round3(v)),
            });
        }
        set
    }

    /// Adds an entry, merging it into one of the same name and reservation.
    fn push(&mut self, entry: Entry) {
        match self.entries.iter_mut().find(|e| e.same_kind(&entry)) {
            Some(have) => match (&mut have.amount, entry.amount) {
                (Amount::Scalar(a), Amount::Scalar(b)) => *a = round3(*a + b),
                (Amount::Ranges(a), Amount::Ranges(b)) => {
                    a.extend(b);
                    *a = normalize(std::mem::take(a));
                }
                _ => {}
            },
            None => self.entries.push(entry),
        }
    }

    /// Reads resources from a call, checking them the way the master does
    /// before it compares them with an offer. `offered_role` is the role of
    /// the offer they must come from. Both reservation formats are read.
    pub fn parse(resources: &[Resource], offered_role: &str) -> Result<Self, String> {
        let mut set = Self::default();
        for r in resources {
            if r.name.is_empty() {
                return Err("Invalid resources: Empty resource name".into());
            }
            let reservations = reservations_of(r).map_err(|e| format!("Invalid resources: {e}"))?;
            if r.disk.is_some() || r.revocable.is_some() || r.shared.is_some() {
                return Err(format!(
                    "Invalid resources: resource '{}' uses disk, revocable or shared info, which mesos-sim does not offer",
                    r.name
                ));
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
            let amount = match value::Type::try_from(r.r#type) {
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
                    Amount::Scalar(round3(s.value))
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
                    Amount::Ranges(normalize(list))
                }
                _ => {
                    return Err(format!(
                        "Invalid resources: resource '{}' has a type mesos-sim does not offer (only SCALAR and RANGES)",
                        r.name
                    ))
                }
            };
            set.push(Entry {
                name: r.name.clone(),
                reservations,
                amount,
            });
        }
        Ok(set)
    }

    /// Resources the master validated and gave an allocation to, as the
    /// agent records them (read under their own allocation role).
    pub fn parse_allocated(resources: &[Resource], fallback_role: String) -> Self {
        let role = resources
            .iter()
            .find_map(|r| r.allocation_info.as_ref().and_then(|a| a.role.clone()))
            .unwrap_or(fallback_role);
        Self::parse(resources, &role).unwrap_or_default()
    }

    /// Nothing at all.
    pub fn is_empty(&self) -> bool {
        self.entries.iter().all(Entry::is_empty)
    }

    /// The amount of scalar `name`, reserved or not.
    pub fn scalar(&self, name: &str) -> f64 {
        self.entries
            .iter()
            .filter(|e| e.name == name)
            .filter_map(|e| match e.amount {
                Amount::Scalar(v) => Some(v),
                Amount::Ranges(_) => None,
            })
            .sum()
    }

    /// The ranges of `name`, reserved or not.
    #[cfg(test)]
    pub fn ranges(&self, name: &str) -> Vec<(u64, u64)> {
        let all = self
            .entries
            .iter()
            .filter(|e| e.name == name)
            .filter_map(|e| match &e.amount {
                Amount::Ranges(r) => Some(r.clone()),
                Amount::Scalar(_) => None,
            })
            .flatten()
            .collect();
        normalize(all)
    }

    /// What a framework of `role` may be offered: unreserved resources and
    /// those reserved to `role`.
    pub fn offerable_to(&self, role: &str) -> Self {
        ResourceSet {
            entries: self
                .entries
                .iter()
                .filter(|e| !e.is_empty())
                .filter(|e| e.reserved_role().is_none_or(|r| r == role))
                .cloned()
                .collect(),
        }
    }

    /// Whether resources reserved to `role` are among them.
    pub fn has_reserved_for(&self, role: &str) -> bool {
        self.entries
            .iter()
            .any(|e| !e.is_empty() && e.reserved_role() == Some(role))
    }

    /// Whether every resource of `other` is in `self`, name and
    /// reservation alike.
    pub fn contains(&self, other: &Self) -> bool {
        other.entries.iter().filter(|e| !e.is_empty()).all(|want| {
            self.entries
                .iter()
                .find(|have| have.same_kind(want))
                .is_some_and(|have| match (&have.amount, &want.amount) {
                    (Amount::Scalar(h), Amount::Scalar(w)) => h + EPSILON >= *w,
                    (Amount::Ranges(h), Amount::Ranges(w)) => w
                        .iter()
                        .all(|(b, e)| h.iter().any(|(hb, he)| hb <= b && e <= he)),
                    _ => false,
                })
        })
    }

    /// `self + other`.
    pub fn add(&mut self, other: &Self) {
        for e in &other.entries {
            self.push(e.clone());
        }
    }

    /// `self - other`, never below zero.
    pub fn subtract(&mut self, other: &Self) {
        for remove in &other.entries {
            let Some(have) = self.entries.iter_mut().find(|h| h.same_kind(remove)) else {
                continue;
            };
            match (&mut have.amount, &remove.amount) {
                (Amount::Scalar(h), Amount::Scalar(r)) => *h = round3((*h - r).max(0.0)),
                (Amount::Ranges(h), Amount::Ranges(r)) => *h = subtract_ranges(h, r),
                _ => {}
            }
        }
    }

    /// Whether the set is worth offering (Mesos's default
    /// `min_allocatable_resources`: cpus 0.01 or mem 32).
    pub fn allocatable(&self) -> bool {
        self.scalar("cpus") >= 0.01 || self.scalar("mem") >= 32.0
    }

    /// The resources as an agent reports them in AgentInfo: scalars, then
    /// ranges; reservations in the post-refinement format; no allocation.
    pub fn to_agent_info(&self) -> Vec<Resource> {
        let (mut scalars, ranges): (Vec<&Entry>, Vec<&Entry>) = self
            .entries
            .iter()
            .filter(|e| !e.is_empty())
            .partition(|e| matches!(e.amount, Amount::Scalar(_)));
        scalars.extend(ranges);
        scalars
            .into_iter()
            .map(|e| {
                to_proto(
                    e,
                    ResourceFormat {
                        allocation_info: false,
                        legacy_role: false,
                    },
                    None,
                )
            })
            .collect()
    }

    /// The resources as offered to a framework of `role`, in the format its
    /// capabilities ask for.
    pub fn to_offer(&self, format: ResourceFormat, role: &str) -> Vec<Resource> {
        self.entries
            .iter()
            .filter(|e| !e.is_empty())
            .map(|e| to_proto(e, format, Some(role)))
            .collect()
    }

    /// Mesos's notation, e.g. `cpus(allocated: mirror)(reservations:
    /// [(STATIC,mirror)]):1; ports(allocated: mirror):[31000-32000]`.
    pub fn describe(&self, allocated: Option<&str>) -> String {
        let parts: Vec<String> = self
            .entries
            .iter()
            .filter(|e| !e.is_empty())
            .map(|e| {
                let mut s = e.name.clone();
                if let Some(role) = allocated {
                    s.push_str(&format!("(allocated: {role})"));
                }
                if !e.reservations.is_empty() {
                    let list: Vec<String> =
                        e.reservations.iter().map(ToString::to_string).collect();
                    s.push_str(&format!("(reservations: [{}])", list.join(",")));
                }
                match &e.amount {
                    Amount::Scalar(v) => s.push_str(&format!(":{}", round3(*v))),
                    Amount::Ranges(rs) => {
                        let list: Vec<String> =
                            rs.iter().map(|(b, e)| format!("{b}-{e}")).collect();
                        s.push_str(&format!(":[{}]", list.join(", ")));
                    }
                }
                s
            })
            .collect();
        if parts.is_empty() {
            "{}".into()
        } else {
            parts.join("; ")
        }
    }
}

fn to_proto(e: &Entry, format: ResourceFormat, allocated: Option<&str>) -> Resource {
    let mut r = Resource {
        name: e.name.clone(),
        ..Resource::default()
    };
    match &e.amount {
        Amount::Scalar(v) => {
            r.r#type = value::Type::Scalar as i32;
            r.scalar = Some(value::Scalar { value: *v });
        }
        Amount::Ranges(rs) => {
            r.r#type = value::Type::Ranges as i32;
            r.ranges = Some(value::Ranges {
                range: rs
                    .iter()
                    .map(|(b, e)| value::Range { begin: *b, end: *e })
                    .collect(),
            });
        }
    }
    if format.legacy_role {
        // Mesos's PRE_RESERVATION_REFINEMENT conversion: the innermost role,
        // and `reservation` (principal, labels) when it is dynamic.
        let last = e.reservations.last();
        #[allow(deprecated)]
        {
            r.role = Some(last.map_or_else(|| "*".to_owned(), |l| l.role.clone()));
        }
        r.reservation = last
            .filter(|l| l.dynamic)
            .map(|l| resource::ReservationInfo {
                r#type: None,
                role: None,
                principal: l.principal.clone(),
                labels: l.labels.clone(),
            });
    } else {
        r.reservations = e.reservations.iter().map(Reservation::to_proto).collect();
    }
    if format.allocation_info {
        r.allocation_info = allocated.map(|role| resource::AllocationInfo {
            role: Some(role.to_owned()),
        });
    }
    r
}

impl fmt::Display for ResourceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.describe(None))
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
        let mut agent = ResourceSet::agent(2.0, 1024.0, 100.0, &[(31000, 31100)], &[]);
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
        assert_eq!(agent.ranges("ports"), [(31000, 31009), (31011, 31100)]);
        assert!(!agent.contains(&used), "port 31010 is gone");
        agent.add(&used);
        assert_eq!(agent.ranges("ports"), [(31000, 31100)]);
    }

    #[test]
    fn rejects_negative_resources_and_keeps_reserved_apart() {
        let err = ResourceSet::parse(&[mesos_proto::resources::scalar("cpus", -1.0)], "*")
            .expect_err("negative");
        assert!(err.contains("cpus"), "{err}");
        #[allow(deprecated)]
        let web = Resource {
            role: Some("web".into()),
            ..mesos_proto::resources::scalar("mem", 1.0)
        };
        let reserved = ResourceSet::parse(&[web], "*").expect("a static reservation");
        let agent = ResourceSet::agent(1.0, 512.0, 0.0, &[], &[]);
        assert!(!agent.contains(&reserved), "unreserved mem is not mem(web)");
        #[allow(deprecated)]
        let dynamic_star = Resource {
            role: Some("*".into()),
            reservation: Some(resource::ReservationInfo::default()),
            ..mesos_proto::resources::scalar("mem", 1.0)
        };
        let err = ResourceSet::parse(&[dynamic_star], "*").expect_err("* reserved");
        assert!(err.contains("cannot be dynamically reserved"), "{err}");
    }

    fn reserved_agent() -> ResourceSet {
        ResourceSet::agent(
            0.5,
            256.0,
            1000.0,
            &[(31000, 32000)],
            &[
                Reserved {
                    name: "cpus".into(),
                    amount: 1.0,
                    role: "mirror".into(),
                    principal: None,
                },
                Reserved {
                    name: "mem".into(),
                    amount: 512.0,
                    role: "mirror".into(),
                    principal: Some("ops".into()),
                },
            ],
        )
    }

    #[test]
    fn both_reservation_formats_read_the_same() {
        let agent = reserved_agent();
        let legacy = agent.to_offer(
            ResourceFormat {
                allocation_info: false,
                legacy_role: true,
            },
            "mirror",
        );
        let refined = agent.to_offer(
            ResourceFormat {
                allocation_info: true,
                legacy_role: false,
            },
            "mirror",
        );
        #[allow(deprecated)]
        {
            assert_eq!(legacy[0].role.as_deref(), Some("mirror"));
            assert!(legacy[0].reservation.is_none(), "static: no reservation");
            assert_eq!(
                legacy[1]
                    .reservation
                    .as_ref()
                    .and_then(|r| r.principal.as_deref()),
                Some("ops")
            );
            assert!(refined.iter().all(|r| r.role.is_none()));
        }
        assert_eq!(refined[1].reservations[0].role.as_deref(), Some("mirror"));
        assert_eq!(
            refined[1].reservations[0].r#type,
            Some(resource::reservation_info::Type::Dynamic as i32)
        );
        let a = ResourceSet::parse(&legacy, "mirror").expect("legacy");
        let b = ResourceSet::parse(&refined, "mirror").expect("refined");
        assert_eq!(a, b);
        assert_eq!(a, agent);
    }

    #[test]
    fn reserved_resources_read_the_agents_notation() {
        let list = Reserved::parse_list("cpus(mirror):1; mem(mirror,ops):512").expect("valid");
        assert_eq!(list.len(), 2);
        assert_eq!(
            (list[0].name.as_str(), list[0].amount, list[0].role.as_str()),
            ("cpus", 1.0, "mirror")
        );
        assert_eq!(list[0].principal, None);
        assert_eq!(list[1].principal.as_deref(), Some("ops"));
        for bad in ["cpus:1", "cpus(mirror):x", "cpus(mirror:1", "(mirror):1"] {
            let err = Reserved::parse_list(bad).expect_err(bad);
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn describes_like_mesos() {
        let agent = reserved_agent();
        assert_eq!(
            agent.describe(Some("mirror")),
            "cpus(allocated: mirror)(reservations: [(STATIC,mirror)]):1; \
             mem(allocated: mirror)(reservations: [(DYNAMIC,mirror,ops)]):512; \
             ports(allocated: mirror):[31000-32000]; cpus(allocated: mirror):0.5; \
             mem(allocated: mirror):256; disk(allocated: mirror):1000"
        );
        assert_eq!(agent.offerable_to("web").scalar("cpus"), 0.5);
        assert!(agent.has_reserved_for("mirror") && !agent.has_reserved_for("web"));
    }

    #[test]
    fn offer_format_follows_capabilities() {
        let set = ResourceSet::agent(1.0, 2.0, 3.0, &[(1, 2)], &[]);
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
