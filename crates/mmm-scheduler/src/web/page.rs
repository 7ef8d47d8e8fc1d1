//! The status page's HTML. Every text that comes from the cluster, Mesos or
//! an executor goes through [`esc`]: topic names and status messages are
//! not ours to trust.

use std::fmt::Write;

use mmm_core::model::StateChange;
use serde::Serialize;

use super::chart;
use super::dashboard::{Dashboard, FrameworkView, TaskView};
use super::format::{clock, duration, esc, figure, utc};

/// The parts of the page its script replaces on every refresh.
#[derive(Debug, Clone, Serialize)]
pub struct Fragments {
    pub framework: String,
    pub rows: String,
    pub chart: String,
    pub rendered_at: String,
}

impl Fragments {
    pub fn of(d: &Dashboard) -> Fragments {
        Fragments {
            framework: framework(&d.framework, d.protected, d.insecure),
            rows: rows(&d.tasks, d.now_ms),
            chart: chart::render(&d.samples, d.now_ms),
            rendered_at: utc(d.now_ms),
        }
    }
}

/// The whole page, complete without any script.
pub fn render(d: &Dashboard) -> String {
    let parts = Fragments::of(d);
    let name = esc(&d.framework.name);
    let token_hint = if d.protected {
        "required: this API is protected"
    } else {
        "not needed: this API is open"
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name} · mmm status</title>
<link rel="stylesheet" href="/assets/status.css">
<script src="/assets/status.js" defer></script>
</head>
<body>
<header><h1>{name}</h1><p class="subtitle">Kafka mirroring on Mesos</p></header>
<main>
<section id="framework" aria-label="Framework">{framework}</section>
<section class="chart" aria-labelledby="chart-title">
<h2 id="chart-title">Replication rate and lag</h2>
<div id="chart-box">{chart}</div>
</section>
<section aria-labelledby="tasks-title">
<h2 id="tasks-title">Tasks</h2>
<div class="controls needs-js">
<form id="add-form">
<label>Amount <input id="add-amount" name="amount" type="number" min="1" value="1" required></label>
<label>Topics <input id="add-topics" name="topics" placeholder="scheduler default" size="24"></label>
<label>CPUs <input id="add-cpus" name="cpus" type="number" min="0" step="any" placeholder="default" size="6"></label>
<label>Memory MB <input id="add-mem" name="mem" type="number" min="0" step="any" placeholder="default" size="6"></label>
<button id="add" type="submit">Add tasks</button>
</form>
<label class="token">API token ({token_hint}) <input id="token" type="password" autocomplete="off" size="20"></label>
</div>
<p id="notice" role="status" aria-live="polite"></p>
<div class="table-box">
<table id="tasks">
<thead><tr><th>ID</th><th>State</th><th>Agent host</th><th>Topics</th><th class="num">In rec/s</th><th class="num">Out rec/s</th><th class="num">Lag</th><th>Last commit</th><th>Offset sync</th><th>Recent changes</th><th class="needs-js">Actions</th></tr></thead>
<tbody id="task-rows">{rows}</tbody>
</table>
</div>
</section>
<noscript><p class="noscript">Live updates and the buttons need JavaScript: reload for fresh figures, or use <code>mmm-cli</code>.</p></noscript>
</main>
<footer>Rendered at <span id="rendered-at">{rendered_at}</span> · <a href="/api/dashboard">JSON</a> · <a href="/metrics">metrics</a> · <a href="/health">health</a></footer>
</body>
</html>
"#,
        framework = parts.framework,
        chart = parts.chart,
        rows = parts.rows,
        rendered_at = parts.rendered_at,
    )
}

fn framework(f: &FrameworkView, protected: bool, insecure: bool) -> String {
    let or_unknown = |v: &Option<String>| v.as_deref().map_or("–".to_string(), esc);
    let mut subscription = format!(r#"<span class="badge sub-{0}">{0}</span>"#, f.subscription);
    if let Some(reason) = &f.reason {
        let _ = write!(
            subscription,
            r#" <span class="reason">{}</span>"#,
            esc(reason)
        );
    }
    format!(
        r#"<dl class="facts">
<div><dt>Framework ID</dt><dd id="framework-id">{id}</dd></div>
<div><dt>Master</dt><dd id="framework-master">{master}</dd></div>
<div><dt>Subscription</dt><dd id="framework-subscription">{subscription}</dd></div>
<div><dt>Up for</dt><dd id="framework-uptime" title="since {since}">{uptime}</dd></div>
<div><dt>API</dt><dd>{api}</dd></div>
</dl>"#,
        id = or_unknown(&f.id),
        master = or_unknown(&f.master),
        since = utc(f.started_ms),
        uptime = duration(f.uptime_secs),
        api = if protected {
            "token required for changes"
        } else if insecure {
            r#"<strong class="warning">insecure: reachable from the network without a token ([api] insecure = true)</strong>"#
        } else {
            "open (loopback only)"
        },
    )
}

fn rows(tasks: &[TaskView], now_ms: u64) -> String {
    if tasks.is_empty() {
        return r#"<tr class="empty"><td colspan="11">No tasks yet: add some here or with <code>mmm-cli add</code>.</td></tr>"#.to_string();
    }
    tasks.iter().map(|t| row(t, now_ms)).collect()
}

/// The largest translation lag and each synced group's last sync, by age.
fn offset_sync(t: &TaskView, now_ms: u64) -> String {
    let mut out = String::new();
    if let Some(lag) = t.translation_lag {
        let _ = write!(
            out,
            r#"<div class="translation">translation lag <span class="figure">{}</span> <span class="partition">{}</span></div>"#,
            figure(Some(lag as f64)),
            esc(t.translation_lag_partition.as_deref().unwrap_or_default()),
        );
    }
    for (group, sync) in &t.group_syncs {
        let when = match sync.last_sync_unix_ms {
            0 => "never synced".to_string(),
            ms => format!(
                r#"<time title="{}">{} ago</time>"#,
                utc(ms),
                duration(now_ms.saturating_sub(ms) / 1000)
            ),
        };
        let skipped = sync.skipped.as_deref().map_or(String::new(), |why| {
            format!(r#" <span class="skipped">{}</span>"#, esc(why))
        });
        let _ = write!(
            out,
            r#"<div class="group"><span class="name">{}</span> {when}{skipped}</div>"#,
            esc(group)
        );
    }
    if out.is_empty() {
        out.push('–');
    }
    out
}

fn row(t: &TaskView, now_ms: u64) -> String {
    let topics = match &t.topics_regex {
        Some(regex) => format!("<code>/{}/</code>", esc(regex)),
        None if t.topics.is_empty() => "–".to_string(),
        None => t
            .topics
            .iter()
            .map(|topic| esc(topic))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let host = t.host.as_deref().map_or("–".to_string(), esc);
    let commit = t.last_commit_ms.map_or("–".to_string(), |ms| {
        format!(r#"<time title="{}">{}</time>"#, utc(ms), clock(ms))
    });
    let reported = t.metrics_at_ms.map_or("no report yet".to_string(), |ms| {
        format!("reported {}", utc(ms))
    });
    let goal = if t.goal == "Run" {
        String::new()
    } else {
        format!(r#" <span class="goal">→ {}</span>"#, esc(&t.goal))
    };
    let health = match (t.health.as_deref(), &t.health_error) {
        (None | Some("ok"), _) => String::new(),
        (Some(h), error) => format!(
            r#" <span class="health health-{h}">{h}</span><div class="health-error">{e}</div>"#,
            h = esc(h),
            e = esc(error.as_deref().unwrap_or_default()),
        ),
    };
    let toggle = match t.state {
        "Stopped" | "Failed" | "Finished" => "start",
        _ => "stop",
    };
    format!(
        r#"<tr id="task-{id}" data-state="{state}"><td class="id">{id}</td><td class="state"><span class="badge state-{state}">{state}</span>{goal}{health}</td><td class="host">{host}</td><td class="topics">{topics}</td><td class="num in" title="{reported}">{rin}</td><td class="num out" title="{reported}">{rout}</td><td class="num lag">{lag}</td><td class="commit">{commit}</td><td class="sync">{sync}</td><td class="changes">{changes}</td><td class="actions needs-js"><button type="button" data-action="{toggle}" data-id="{id}">{toggle_label}</button> <button type="button" class="danger" data-action="delete" data-id="{id}">Delete</button></td></tr>"#,
        id = t.id,
        state = t.state,
        rin = figure(t.records_in_per_sec),
        rout = figure(t.records_out_per_sec),
        lag = figure(t.lag),
        changes = changes(&t.changes),
        sync = offset_sync(t, now_ms),
        toggle_label = if toggle == "start" { "Start" } else { "Stop" },
    )
}

fn changes(list: &[StateChange]) -> String {
    let mut out = String::from(r#"<ul>"#);
    for c in list {
        let _ = write!(
            out,
            r#"<li><time title="{}">{}</time> {}"#,
            utc(c.at_ms),
            clock(c.at_ms),
            c.state
        );
        if let Some(m) = &c.message {
            let _ = write!(out, r#" <span class="message">{}</span>"#, esc(m));
        }
        out.push_str("</li>");
    }
    out.push_str("</ul>");
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use mmm_core::model::{Cluster, Metrics, ServerState, TaskConfig};
    use serde_json::json;

    use super::*;
    use crate::mesos::connection::SubscriptionState;
    use crate::web::dashboard::Sources;

    const NOW: u64 = 1_795_000_000_000;

    fn task(topics: &[&str]) -> TaskConfig {
        TaskConfig {
            cpus: 0.5,
            mem: 256.0,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            topics_regex: None,
            consumer: Default::default(),
            producer: Default::default(),
        }
    }

    fn dashboard(cluster: &Cluster, subscription: &SubscriptionState) -> Dashboard {
        Dashboard::build(
            Sources {
                framework_name: "mmm <prod>",
                cluster,
                subscription,
                samples: &BTreeMap::new(),
                started_ms: NOW - 3_723_000,
                protected: true,
                insecure: false,
            },
            NOW,
        )
    }

    fn running_cluster() -> Cluster {
        let mut cluster = Cluster::new();
        let id = cluster
            .add(None, task(&["orders", "payments"]), NOW - 60_000)
            .expect("add");
        let s = cluster.get_mut(id).expect("server");
        s.transition(ServerState::Starting, NOW - 50_000, None)
            .expect("starting");
        s.transition(
            ServerState::Running,
            NOW - 40_000,
            Some("executor says hi".into()),
        )
        .expect("running");
        s.hostname = Some("agent-7.example".into());
        s.task_id = Some("mmm-1-abc".into());
        s.metrics = Some(Metrics {
            received_ms: NOW - 1_000,
            document: json!({"consume_rate": 1520.4, "produce_rate": 1500,
                "lag": {"orders-0": 40, "orders-1": 2}, "last_commit_unix_ms": NOW - 2_000}),
        });
        cluster
    }

    #[test]
    fn shows_the_framework_and_every_task_field() {
        let html = render(&dashboard(
            &running_cluster(),
            &SubscriptionState::Subscribed {
                framework_id: "fw-123".into(),
                master: "http://127.0.0.1:5050".into(),
            },
        ));
        for needle in [
            "<title>mmm &lt;prod&gt; · mmm status</title>",
            r#"<dd id="framework-id">fw-123</dd>"#,
            r#"<dd id="framework-master">http://127.0.0.1:5050</dd>"#,
            r#"<span class="badge sub-subscribed">subscribed</span>"#,
            ">1 h 02 min</dd>",
            r#"<tr id="task-1" data-state="Running">"#,
            r#"<td class="host">agent-7.example</td>"#,
            r#"<td class="topics">orders, payments</td>"#,
            ">1\u{2009}520</td>",
            ">1\u{2009}500</td>",
            r#"<td class="num lag">42</td>"#,
            ">11:06:38</time>",
            "Running <span class=\"message\">executor says hi</span>",
            r#"data-action="stop" data-id="1""#,
            r#"<svg id="chart""#,
            "required: this API is protected",
        ] {
            assert!(html.contains(needle), "missing {needle:?} in\n{html}");
        }
        // Newest change first.
        let running = html.find("Running <span").expect("running change");
        let added = html.find("</time> Added").expect("added change");
        assert!(running < added);
    }

    #[test]
    fn topics_and_messages_cannot_inject_markup() {
        let mut cluster = Cluster::new();
        let id = cluster
            .add(None, task(&["<script>alert(1)</script>"]), NOW)
            .expect("add");
        let s = cluster.get_mut(id).expect("server");
        s.transition(
            ServerState::Stopped,
            NOW,
            Some(r#"<img src=x onerror="alert(2)">"#.into()),
        )
        .expect("stop");
        s.hostname = Some("<b>host</b>".into());
        let d = dashboard(
            &cluster,
            &SubscriptionState::Disconnected {
                reason: "<script>bad()</script>".into(),
            },
        );
        let html = render(&d);
        assert!(
            !html.contains("<script>alert") && !html.contains("<img"),
            "{html}"
        );
        assert!(
            !html.contains("<b>host") && !html.contains("<script>bad"),
            "{html}"
        );
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("&lt;img src=x onerror=&quot;alert(2)&quot;&gt;"),
            "{html}"
        );
        assert!(
            html.contains(r#"data-action="start" data-id="1""#),
            "{html}"
        );
        // The script tag of the page itself is the only one.
        assert_eq!(html.matches("<script").count(), 1);
    }

    #[test]
    fn a_stalled_task_shows_its_health_and_error() {
        let mut cluster = running_cluster();
        let s = cluster.get_mut(1).expect("server");
        s.metrics = Some(Metrics {
            received_ms: NOW,
            document: json!({"health": "stalled",
                "error": "source partition orders-0 has made no progress for 12 s: <codec>"}),
        });
        let html = render(&dashboard(&cluster, &SubscriptionState::Connecting));
        for needle in [
            r#"<span class="health health-stalled">stalled</span>"#,
            "orders-0 has made no progress for 12 s: &lt;codec&gt;",
        ] {
            assert!(html.contains(needle), "missing {needle:?} in\n{html}");
        }
        let healthy = render(&dashboard(
            &running_cluster(),
            &SubscriptionState::Connecting,
        ));
        assert!(!healthy.contains("class=\"health "), "{healthy}");
    }

    #[test]
    fn offset_sync_shows_the_largest_translation_lag_and_each_groups_last_sync() {
        let mut cluster = running_cluster();
        cluster.get_mut(1).expect("server").metrics = Some(Metrics {
            received_ms: NOW,
            document: json!({"kind": "metrics",
                "offset_syncs": {"topic": "mmm-offset-syncs",
                    "translation_lag": {"orders-0": 3, "orders-1": 1250}},
                "group_syncs": {
                    "billing": {"last_sync_unix_ms": NOW - 12_000, "partitions": 2},
                    "<audit>": {"last_sync_unix_ms": 0, "partitions": 0,
                        "skipped": "the group has <active> members on the target"}}}),
        });
        let d = dashboard(&cluster, &SubscriptionState::Connecting);
        let html = render(&d);
        for needle in [
            "<th>Offset sync</th>",
            "translation lag <span class=\"figure\">1\u{2009}250</span> <span class=\"partition\">orders-1</span>",
            r#"<span class="name">billing</span> <time title="2026-11-18 11:06:28 UTC">12 s ago</time>"#,
            r#"<span class="name">&lt;audit&gt;</span> never synced <span class="skipped">the group has &lt;active&gt; members on the target</span>"#,
        ] {
            assert!(html.contains(needle), "missing {needle:?} in\n{html}");
        }
        let v = serde_json::to_value(&d).expect("json");
        assert_eq!(v["tasks"][0]["translation_lag"], 1250);
        assert_eq!(v["tasks"][0]["translation_lag_partition"], "orders-1");
        assert_eq!(
            v["tasks"][0]["group_syncs"]["billing"]["last_sync_unix_ms"],
            NOW - 12_000
        );
        // A report without offset syncs shows a dash.
        let html = render(&dashboard(
            &running_cluster(),
            &SubscriptionState::Connecting,
        ));
        assert!(html.contains(r#"<td class="sync">–</td>"#), "{html}");
    }

    #[test]
    fn an_empty_cluster_and_a_lost_master_are_said_so() {
        let html = render(&dashboard(
            &Cluster::new(),
            &SubscriptionState::Disconnected {
                reason: "master gone".into(),
            },
        ));
        assert!(html.contains("No tasks yet"), "{html}");
        assert!(
            html.contains(r#"<span class="badge sub-disconnected">disconnected</span> <span class="reason">master gone</span>"#),
            "{html}"
        );
        assert!(html.contains(r#"<dd id="framework-master">–</dd>"#));
    }

    #[test]
    fn the_json_names_every_figure() {
        let d = dashboard(&running_cluster(), &SubscriptionState::Connecting);
        let v = serde_json::to_value(&d).expect("json");
        let t = &v["tasks"][0];
        assert_eq!(t["id"], 1);
        assert_eq!(t["state"], "Running");
        assert_eq!(t["host"], "agent-7.example");
        assert_eq!(t["records_in_per_sec"], 1520.4);
        assert_eq!(t["records_out_per_sec"], 1500.0);
        assert_eq!(t["lag"], 42.0);
        assert_eq!(t["last_commit_ms"], NOW - 2_000);
        assert_eq!(t["changes"][0]["state"], "Running");
        assert_eq!(t["changes"][0]["message"], "executor says hi");
        assert_eq!(v["framework"]["subscription"], "connecting");
        assert_eq!(v["framework"]["uptime_secs"], 3723);
        assert_eq!(v["protected"], true);
    }
}
