//! Reading and building resources, the way offers and launches carry them.

use crate::v1::{resource, value, Resource};

/// A scalar resource (`cpus`, `mem`, `disk`) of `amount`.
pub fn scalar(name: &str, amount: f64) -> Resource {
    Resource {
        name: name.to_owned(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Resource::default()
    }
}

/// `resource` with the allocation info it was offered under, which a LAUNCH
/// must echo for MULTI_ROLE frameworks.
pub fn with_allocation(mut resource: Resource, info: Option<resource::AllocationInfo>) -> Resource {
    resource.allocation_info = info;
    resource
}

/// The sum of the scalar resources named `name`.
pub fn scalar_sum(resources: &[Resource], name: &str) -> f64 {
    resources
        .iter()
        .filter(|r| r.name == name && r.r#type == value::Type::Scalar as i32)
        .filter_map(|r| r.scalar.as_ref().map(|s| s.value))
        .sum()
}

/// The text of an attribute value, for matching placement constraints.
pub fn attribute_text(attr: &crate::v1::Attribute) -> Option<String> {
    if let Some(text) = &attr.text {
        return Some(text.value.clone());
    }
    if let Some(scalar) = &attr.scalar {
        return Some(scalar.value.to_string());
    }
    if let Some(set) = &attr.set {
        return Some(set.item.join(","));
    }
    attr.ranges.as_ref().map(|r| {
        r.range
            .iter()
            .map(|x| format!("[{}-{}]", x.begin, x.end))
            .collect::<Vec<_>>()
            .join(",")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_scalars_by_name() {
        let rs = vec![
            scalar("cpus", 1.5),
            scalar("mem", 512.0),
            scalar("cpus", 0.5),
        ];
        assert_eq!(scalar_sum(&rs, "cpus"), 2.0);
        assert_eq!(scalar_sum(&rs, "mem"), 512.0);
        assert_eq!(scalar_sum(&rs, "disk"), 0.0);
    }
}
