//! The human layout of the API's answers, kept as the original framework
//! printed it, plus each task's topics, agent host, records/s and lag when the
//! answer has them.
//!
//! The answer is read leniently: fields may be missing or of an unexpected
//! type (an older or newer scheduler), and only what is present is printed.

use std::fmt::Write as _;

use serde_json::Value;

/// Printed instead of the servers when there are none.
pub const NO_SERVERS: &str = "No servers were added. Add servers with 'add' command.";

/// Where an executor's metrics document may put its rate and lag, first match
/// wins.
const RATE_KEYS: &[&str] = &[
    "produce_rate",
    "records_per_s",
    "records_per_sec",
    "records_per_second",
    "rate",
];
const LAG_KEYS: &[&str] = &["lag", "total_lag", "consumer_lag"];

/// One server as far as the answer describes it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServerView {
    /// Its id, as the API wrote it.
    pub id: Option<String>,
    /// Added, Starting, Running...
    pub state: Option<String>,
    /// CPUs per task.
    pub cpus: Option<f64>,
    /// Memory per task, MB.
    pub mem: Option<f64>,
    /// Topics mirrored.
    pub topics: Vec<String>,
    /// Topic regex mirrored.
    pub topics_regex: Option<String>,
    /// The agent's hostname.
    pub agent_host: Option<String>,
    /// Records per second, from the executor's metrics.
    pub records_per_s: Option<f64>,
    /// Consumer lag, from the executor's metrics.
    pub lag: Option<Value>,
    /// The executor's health ("ok", "degraded", "stalled") and its error text.
    pub health: Option<(String, Option<String>)>,
}

impl ServerView {
    /// Reads whatever of a server object is there.
    pub fn from_json(server: &Value) -> ServerView {
        let task = server.get("task").filter(|t| t.is_object());
        let field = |name: &str| {
            server
                .get(name)
                .filter(|v| !v.is_null())
                .or_else(|| task.and_then(|t| t.get(name)).filter(|v| !v.is_null()))
        };
        let metrics = server.get("metrics").filter(|m| m.is_object());
        let document = metrics
            .and_then(|m| m.get("document"))
            .filter(|d| d.is_object());
        let metric = |keys: &[&str]| {
            [document, metrics, Some(server)]
                .into_iter()
                .flatten()
                .find_map(|scope| keys.iter().find_map(|k| scope.get(*k)))
                .filter(|v| !v.is_null())
                .cloned()
        };
        ServerView {
            id: field("id").map(plain),
            state: field("state").map(plain),
            cpus: field("cpus").and_then(Value::as_f64),
            mem: field("mem").and_then(Value::as_f64),
            topics: field("topics")
                .and_then(Value::as_array)
                .map(|list| list.iter().map(plain).collect())
                .unwrap_or_default(),
            topics_regex: field("topics_regex").map(plain),
            agent_host: ["hostname", "agent_host", "host"]
                .into_iter()
                .find_map(field)
                .map(plain),
            records_per_s: metric(RATE_KEYS).and_then(|v| v.as_f64()),
            lag: metric(LAG_KEYS).and_then(|v| total_lag(&v)),
            health: metric(&["health"])
                .and_then(|h| h.as_str().map(str::to_owned))
                .map(|h| (h, metric(&["error"]).as_ref().map(plain))),
        }
    }
}

/// The lag as one figure: a number as it is, or the sum of a per-partition
/// map (the executor reports lag per topic partition).
fn total_lag(value: &Value) -> Option<Value> {
    match value {
        Value::Number(_) | Value::String(_) => Some(value.clone()),
        Value::Object(parts) if !parts.is_empty() => parts
            .values()
            .map(Value::as_i64)
            .sum::<Option<i64>>()
            .map(Value::from),
        _ => None,
    }
}

/// A JSON value as text: strings without their quotes.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The servers of an answer's `value.servers`, empty when absent.
pub fn servers(answer: &Value) -> Vec<ServerView> {
    answer
        .get("value")
        .and_then(|v| v.get("servers"))
        .and_then(Value::as_array)
        .map(|list| list.iter().map(ServerView::from_json).collect())
        .unwrap_or_default()
}

/// "Cluster:" and each server, in the original's layout.
pub fn render_cluster(servers: &[ServerView]) -> String {
    let mut out = String::from("Cluster:\n");
    if servers.is_empty() {
        out.push_str(NO_SERVERS);
        out.push('\n');
        return out;
    }
    for server in servers {
        render_server(&mut out, server);
    }
    out
}

fn render_server(out: &mut String, s: &ServerView) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "  server:");
    if let Some(id) = &s.id {
        let _ = writeln!(out, "    id: {id}");
    }
    if let Some(state) = &s.state {
        let _ = writeln!(out, "    state: {state}");
    }
    let has_config =
        s.cpus.is_some() || s.mem.is_some() || !s.topics.is_empty() || s.topics_regex.is_some();
    if has_config {
        let _ = writeln!(out, "    task configuration:");
        if let Some(cpus) = s.cpus {
            let _ = writeln!(out, "      cpu: {cpus:?}");
        }
        if let Some(mem) = s.mem {
            let _ = writeln!(out, "      mem: {mem:?}");
        }
        if !s.topics.is_empty() {
            let _ = writeln!(out, "      topics: {}", s.topics.join(", "));
        }
        if let Some(regex) = &s.topics_regex {
            let _ = writeln!(out, "      topics regex: {regex}");
        }
    }
    if let Some(host) = &s.agent_host {
        let _ = writeln!(out, "    agent host: {host}");
    }
    if let Some(rate) = s.records_per_s {
        let _ = writeln!(out, "    records/s: {}", rate_text(rate));
    }
    if let Some(lag) = &s.lag {
        let _ = writeln!(out, "    lag: {}", plain(lag));
    }
    match &s.health {
        Some((health, Some(error))) => {
            let _ = writeln!(out, "    health: {health}: {error}");
        }
        Some((health, None)) => {
            let _ = writeln!(out, "    health: {health}");
        }
        None => {}
    }
}

fn rate_text(rate: f64) -> String {
    if rate.fract() == 0.0 {
        format!("{rate:.0}")
    } else {
        format!("{rate:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_the_original_layout() {
        let answer = json!({"success": true, "message": "", "value": {"servers": [
            {"id": 1, "state": "Added", "cpus": 0.2, "mem": 256, "topics": []}
        ]}});
        assert_eq!(
            render_cluster(&servers(&answer)),
            "Cluster:\n  server:\n    id: 1\n    state: Added\n    task configuration:\n      cpu: 0.2\n      mem: 256.0\n"
        );
    }

    #[test]
    fn no_servers_says_how_to_add_some() {
        let answer = json!({"success": true, "message": "", "value": {"servers": []}});
        assert_eq!(
            render_cluster(&servers(&answer)),
            format!("Cluster:\n{NO_SERVERS}\n")
        );
        assert_eq!(
            render_cluster(&servers(&json!({"success": true}))),
            format!("Cluster:\n{NO_SERVERS}\n")
        );
    }

    #[test]
    fn adds_topics_host_rate_and_lag_when_present() {
        let answer = json!({"value": {"servers": [{
            "id": 2, "state": "Running", "cpus": 1.0, "mem": 512.5,
            "topics": ["a", "b"], "hostname": "agent-7",
            "metrics": {"received_ms": 1, "document": {"records_per_s": 1234.56, "lag": 17}}
        }, {
            "id": 3, "state": "Starting", "topics_regex": "^orders\\..*",
            "task": {"hostname": "agent-8"}, "metrics": {"records_per_s": 40}
        }]}});
        assert_eq!(
            render_cluster(&servers(&answer)),
            "Cluster:\n  server:\n    id: 2\n    state: Running\n    task configuration:\n      cpu: 1.0\n      mem: 512.5\n      topics: a, b\n    agent host: agent-7\n    records/s: 1234.6\n    lag: 17\n  server:\n    id: 3\n    state: Starting\n    task configuration:\n      topics regex: ^orders\\..*\n    agent host: agent-8\n    records/s: 40\n"
        );
    }

    #[test]
    fn the_executors_report_shows_its_produce_rate_and_summed_lag() {
        let view = ServerView::from_json(&json!({
            "id": 1, "state": "Running",
            "metrics": {"produce_rate": 5321.0, "consume_rate": 5400.0, "lag": {"orders/0": 3, "orders/1": 4}}
        }));
        assert_eq!(view.records_per_s, Some(5321.0));
        assert_eq!(view.lag, Some(json!(7)));
    }

    #[test]
    fn health_and_its_error_are_shown() {
        let answer = json!({"value": {"servers": [{
            "id": 4, "state": "Running",
            "metrics": {"health": "stalled", "error": "source partition t-0 has made no progress for 12 s: boom"}
        }, {
            "id": 5, "state": "Running", "metrics": {"health": "ok", "error": null}
        }]}});
        let text = render_cluster(&servers(&answer));
        assert!(
            text.contains(
                "    health: stalled: source partition t-0 has made no progress for 12 s: boom\n"
            ),
            "{text}"
        );
        assert!(text.contains("    health: ok\n"), "{text}");
    }

    #[test]
    fn odd_types_and_nulls_are_skipped_not_fatal() {
        let view = ServerView::from_json(&json!({
            "id": "7", "state": null, "cpus": "lots", "topics": "t", "hostname": null,
            "metrics": {"document": {"records_per_s": "fast", "lag": {"p0": "x"}}}
        }));
        assert_eq!(
            view,
            ServerView {
                id: Some("7".into()),
                ..ServerView::default()
            }
        );
        assert_eq!(ServerView::from_json(&json!(42)), ServerView::default());
    }
}
