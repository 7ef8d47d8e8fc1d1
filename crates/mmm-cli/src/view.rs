//! The human layout of the API's answers, kept as the original framework
//! printed it, plus each task's topics, agent host, records/s and lag when the
//! answer has them.
//!
//! The answer is read as the REST contract's types (`mmm_core::rest`), which
//! default missing fields and ignore unknown ones (an older or newer
//! scheduler); a field of the wrong type makes the answer unreadable.

use std::fmt::Write as _;

use mmm_core::human::duration as age;
use mmm_core::rest::{Answer, ServerView, ServersValue};
use serde::Deserialize;
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

/// What the human layout shows of one server, read from the contract's
/// [`ServerView`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Shown {
    /// The server as the API sent it.
    pub server: ServerView,
    /// Records per second, from the executor's metrics.
    pub records_per_s: Option<f64>,
    /// Consumer lag, from the executor's metrics.
    pub lag: Option<Value>,
    /// The executor's health ("ok", "degraded", "stalled") and its error text.
    pub health: Option<(String, Option<String>)>,
}

impl Shown {
    /// The server and the figures its metrics document holds.
    pub fn of(server: ServerView) -> Shown {
        let metrics = server.metrics.as_ref().filter(|m| m.is_object());
        let document = metrics
            .and_then(|m| m.get("document"))
            .filter(|d| d.is_object());
        let metric = |keys: &[&str]| {
            [document, metrics]
                .into_iter()
                .flatten()
                .find_map(|scope| keys.iter().find_map(|k| scope.get(*k)))
                .filter(|v| !v.is_null())
                .cloned()
        };
        Shown {
            records_per_s: metric(RATE_KEYS).and_then(|v| v.as_f64()),
            lag: metric(LAG_KEYS).and_then(|v| total_lag(&v)),
            health: metric(&["health"])
                .and_then(|h| h.as_str().map(str::to_owned))
                .map(|h| (h, metric(&["error"]).as_ref().map(plain))),
            server,
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

/// The servers of an answer, read as the REST contract's types.
pub fn servers(answer: &Value) -> Result<Vec<Shown>, serde_json::Error> {
    let answer = Answer::<ServersValue>::deserialize(answer)?;
    Ok(answer.value.servers.into_iter().map(Shown::of).collect())
}

/// "Cluster:" and each server, in the original's layout.
pub fn render_cluster(servers: &[Shown]) -> String {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    render_cluster_at(servers, now_ms)
}

/// [`render_cluster`] at `now_ms` (ms since the epoch), which ages are counted from.
pub fn render_cluster_at(servers: &[Shown], now_ms: u64) -> String {
    let mut out = String::from("Cluster:\n");
    if servers.is_empty() {
        out.push_str(NO_SERVERS);
        out.push('\n');
        return out;
    }
    for server in servers {
        render_server(&mut out, server, now_ms);
    }
    out
}

fn render_server(out: &mut String, shown: &Shown, now_ms: u64) {
    let s = &shown.server;
    // Writing to a String cannot fail.
    let _ = writeln!(out, "  server:");
    let _ = writeln!(out, "    id: {}", s.id);
    let _ = writeln!(out, "    state: {}", s.state);
    let _ = writeln!(out, "    task configuration:");
    let _ = writeln!(out, "      cpu: {:?}", s.cpus);
    let _ = writeln!(out, "      mem: {:?}", s.mem);
    if !s.topics.is_empty() {
        let _ = writeln!(out, "      topics: {}", s.topics.join(", "));
    }
    if let Some(regex) = &s.topics_regex {
        let _ = writeln!(out, "      topics regex: {regex}");
    }
    if let Some(host) = &s.hostname {
        let _ = writeln!(out, "    agent host: {host}");
    }
    if let Some(rate) = shown.records_per_s {
        let _ = writeln!(out, "    records/s: {}", rate_text(rate));
    }
    if let Some(lag) = &shown.lag {
        let _ = writeln!(out, "    lag: {}", plain(lag));
    }
    match &shown.health {
        Some((health, Some(error))) => {
            let _ = writeln!(out, "    health: {health}: {error}");
        }
        Some((health, None)) => {
            let _ = writeln!(out, "    health: {health}");
        }
        None => {}
    }
    if let Some((partition, lag)) = s.max_translation_lag() {
        let _ = writeln!(out, "    translation lag: {lag} ({partition})");
    }
    for (group, sync) in &s.group_syncs {
        let when = match sync.last_sync_unix_ms {
            0 => "never synced".to_string(),
            ms => format!(
                "synced {} ago ({} partitions)",
                age(now_ms.saturating_sub(ms) / 1000),
                sync.partitions
            ),
        };
        match &sync.skipped {
            Some(why) => {
                let _ = writeln!(
                    out,
                    "    group {group}: {when}; latest round skipped: {why}"
                );
            }
            None => {
                let _ = writeln!(out, "    group {group}: {when}");
            }
        }
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

    fn render(answer: Value) -> String {
        render_cluster(&servers(&answer).expect("the contract's shape"))
    }

    #[test]
    fn keeps_the_original_layout() {
        let answer = json!({"success": true, "message": "", "value": {"servers": [
            {"id": 1, "state": "Added", "cpus": 0.2, "mem": 256, "topics": []}
        ]}});
        assert_eq!(
            render(answer),
            "Cluster:\n  server:\n    id: 1\n    state: Added\n    task configuration:\n      cpu: 0.2\n      mem: 256.0\n"
        );
    }

    #[test]
    fn no_servers_says_how_to_add_some() {
        let answer = json!({"success": true, "message": "", "value": {"servers": []}});
        assert_eq!(render(answer), format!("Cluster:\n{NO_SERVERS}\n"));
        assert_eq!(
            render(json!({"success": true, "value": {}})),
            format!("Cluster:\n{NO_SERVERS}\n")
        );
    }

    #[test]
    fn adds_topics_host_rate_and_lag_when_present() {
        let answer = json!({"success": true, "value": {"servers": [{
            "id": 2, "state": "Running", "cpus": 1.0, "mem": 512.5,
            "topics": ["a", "b"], "hostname": "agent-7",
            "metrics": {"records_per_s": 1234.56, "lag": 17}
        }, {
            "id": 3, "state": "Starting", "cpus": 0.5, "mem": 64, "topics_regex": "^orders\\..*",
            "metrics": {"document": {"records_per_s": 40}}
        }]}});
        assert_eq!(
            render(answer),
            "Cluster:\n  server:\n    id: 2\n    state: Running\n    task configuration:\n      cpu: 1.0\n      mem: 512.5\n      topics: a, b\n    agent host: agent-7\n    records/s: 1234.6\n    lag: 17\n  server:\n    id: 3\n    state: Starting\n    task configuration:\n      cpu: 0.5\n      mem: 64.0\n      topics regex: ^orders\\..*\n    records/s: 40\n"
        );
    }

    #[test]
    fn the_executors_report_shows_its_produce_rate_and_summed_lag() {
        let shown = Shown::of(ServerView {
            id: 1,
            metrics: Some(json!({"produce_rate": 5321.0, "consume_rate": 5400.0,
                                 "lag": {"orders/0": 3, "orders/1": 4}})),
            ..ServerView::default()
        });
        assert_eq!(shown.records_per_s, Some(5321.0));
        assert_eq!(shown.lag, Some(json!(7)));
    }

    #[test]
    fn health_and_its_error_are_shown() {
        let answer = json!({"success": true, "value": {"servers": [{
            "id": 4, "state": "Running",
            "metrics": {"health": "stalled", "error": "source partition t-0 has made no progress for 12 s: boom"}
        }, {
            "id": 5, "state": "Running", "metrics": {"health": "ok", "error": null}
        }]}});
        let text = render_cluster(&servers(&answer).expect("readable"));
        assert!(
            text.contains(
                "    health: stalled: source partition t-0 has made no progress for 12 s: boom\n"
            ),
            "{text}"
        );
        assert!(text.contains("    health: ok\n"), "{text}");
    }

    #[test]
    fn translation_lag_and_group_syncs_are_shown_with_their_age() {
        const NOW: u64 = 1_795_000_000_000;
        let answer = json!({"success": true, "value": {"servers": [{
            "id": 6, "state": "Running",
            "translation_lag": {"orders-0": 3, "orders-1": 1250},
            "group_syncs": {
                "billing": {"last_sync_unix_ms": NOW - 429_000, "partitions": 2, "skipped": null},
                "audit": {"last_sync_unix_ms": 0, "partitions": 0,
                    "skipped": "the group has active members on the target"}}
        }, {
            "id": 7, "state": "Running", "metrics": {"lag": {"t-0": 1}}
        }]}});
        let text = render_cluster_at(&servers(&answer).expect("readable"), NOW);
        for line in [
            "    translation lag: 1250 (orders-1)\n",
            "    group billing: synced 7 min 09 s ago (2 partitions)\n",
            "    group audit: never synced; latest round skipped: the group has active members on the target\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        // A server whose executor writes no offset syncs shows no such line.
        let second = text.split("    id: 7\n").nth(1).expect("server 7");
        assert!(
            !second.contains("translation") && !second.contains("group "),
            "{second}"
        );
        assert_eq!(age(42), "42 s");
        assert_eq!(age(7500), "2 h 05 min");
        assert_eq!(age(3 * 86_400 + 4 * 3600), "3 d 4 h");
    }

    #[test]
    fn unknown_fields_are_ignored_and_wrong_types_refused() {
        let answer = json!({"success": true, "value": {"servers": [
            {"id": 7, "state": "Added", "future_field": {"x": 1}}
        ]}});
        assert_eq!(servers(&answer).expect("lenient")[0].server.id, 7);
        let wrong = json!({"success": true, "value": {"servers": [{"id": "seven"}]}});
        assert!(servers(&wrong).is_err());
    }
}
