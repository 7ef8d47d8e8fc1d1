//! Who the framework is to Mesos: its FrameworkInfo, the user its tasks
//! run as, and the URL its executors and operators reach it at.

use std::fs;
use std::net::SocketAddr;

use mesos_proto::v1::framework_info::{capability, Capability};
use mesos_proto::v1::FrameworkInfo;
use mmm_core::config::MesosConfig;

// `role` keeps offers in the single-role, pre-refinement format every Mesos
// 1.x master speaks; `roles` registers with MULTI_ROLE and
// RESERVATION_REFINEMENT (offers then carry allocation_info and
// `reservations`). Launches copy whatever format the offer used.
#[allow(deprecated)]
/// The FrameworkInfo to subscribe with (without `id`, which the connection
/// fills in from the stored state).
pub fn framework_info(mesos: &MesosConfig, user: String, webui_url: &str) -> FrameworkInfo {
    let multi_role = !mesos.roles.is_empty();
    let mut types = vec![
        capability::Type::PartitionAware,
        capability::Type::TaskKillingState,
    ];
    if multi_role {
        types.extend([
            capability::Type::MultiRole,
            capability::Type::ReservationRefinement,
        ]);
    }
    let capabilities = types
        .into_iter()
        .map(|t| Capability {
            r#type: Some(t as i32),
        })
        .collect();
    FrameworkInfo {
        user,
        name: mesos.framework_name.clone(),
        failover_timeout: Some(mesos.failover_timeout_secs as f64),
        checkpoint: Some(true),
        principal: mesos.principal.clone(),
        webui_url: Some(webui_url.to_string()),
        role: if multi_role { None } else { mesos.role.clone() },
        roles: mesos.roles.clone(),
        capabilities,
        ..FrameworkInfo::default()
    }
}

/// The configured user, else the one running the scheduler.
pub fn task_user(configured: Option<&str>) -> String {
    if let Some(u) = configured.filter(|u| !u.trim().is_empty()) {
        return u.trim().to_string();
    }
    for var in ["USER", "LOGNAME"] {
        if let Ok(u) = std::env::var(var) {
            if !u.is_empty() {
                return u;
            }
        }
    }
    current_uid()
        .and_then(user_of_uid)
        .unwrap_or_else(|| "root".to_string())
}

fn current_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn user_of_uid(uid: u32) -> Option<String> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut fields = l.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_string())
    })
}

/// The URL executors and the CLI reach the API at: the configured one, or
/// one made of the bound address (the host's name when bound to all interfaces).
pub fn advertised_url(configured: Option<&str>, bound: SocketAddr) -> String {
    if let Some(url) = configured.filter(|u| !u.trim().is_empty()) {
        return url.trim().trim_end_matches('/').to_string();
    }
    let host = if bound.ip().is_unspecified() {
        host_name().unwrap_or_else(|| "127.0.0.1".to_string())
    } else if bound.is_ipv6() {
        format!("[{}]", bound.ip())
    } else {
        bound.ip().to_string()
    };
    format!("http://{host}:{}", bound.port())
}

fn host_name() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_url_prefers_the_configured_one() {
        let bound: SocketAddr = "127.0.0.1:7000".parse().expect("addr");
        assert_eq!(
            advertised_url(Some("http://10.0.0.5:7000/"), bound),
            "http://10.0.0.5:7000"
        );
        assert_eq!(advertised_url(None, bound), "http://127.0.0.1:7000");
        let all: SocketAddr = "0.0.0.0:7001".parse().expect("addr");
        let url = advertised_url(None, all);
        assert!(
            url.starts_with("http://") && url.ends_with(":7001") && !url.contains("0.0.0.0"),
            "{url}"
        );
    }

    #[test]
    fn framework_info_carries_the_required_fields() {
        let mesos = MesosConfig {
            master: mmm_core::config::MasterSpec::parse("127.0.0.1:5050").expect("spec"),
            framework_name: "mmm".into(),
            user: None,
            failover_timeout_secs: 2_592_000,
            principal: Some("p".into()),
            secret_file: None,
            role: None,
            roles: Vec::new(),
            master_tls: false,
            ca_file: None,
        };
        let info = framework_info(&mesos, "u".into(), "http://h:7000");
        assert_eq!(info.failover_timeout, Some(2_592_000.0));
        assert_eq!(info.checkpoint, Some(true));
        assert_eq!(info.webui_url.as_deref(), Some("http://h:7000"));
        assert_eq!(info.principal.as_deref(), Some("p"));
        let caps: Vec<i32> = info.capabilities.iter().filter_map(|c| c.r#type).collect();
        assert!(caps.contains(&(capability::Type::PartitionAware as i32)));
        assert!(caps.contains(&(capability::Type::TaskKillingState as i32)));
        assert!(info.id.is_none());
        assert!(!caps.contains(&(capability::Type::MultiRole as i32)));
        let multi = MesosConfig {
            roles: vec!["mirror".into(), "dr".into()],
            ..mesos
        };
        let info = framework_info(&multi, "u".into(), "http://h:7000");
        let caps: Vec<i32> = info.capabilities.iter().filter_map(|c| c.r#type).collect();
        assert!(caps.contains(&(capability::Type::MultiRole as i32)));
        assert!(caps.contains(&(capability::Type::ReservationRefinement as i32)));
        assert_eq!(info.roles, ["mirror", "dr"]);
        #[allow(deprecated)]
        let role = info.role;
        assert!(role.is_none(), "MULTI_ROLE frameworks must not set role");
    }

    #[test]
    fn a_configured_user_wins() {
        assert_eq!(task_user(Some("mesos")), "mesos");
        assert!(!task_user(None).is_empty());
    }
}
