//! The executor and its agent on production settings, through the real
//! binaries: agents that authenticate executors and serve https, proxies in
//! the executors' environment, agent restarts within the re-registration
//! window, and an agent that refuses updates for a while.

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use mmm_e2e::{verify_batches, wait_until, System};
use mmm_test_support::{consume_until_idle, create_topic, produce_generated, random_name};

const PARTITIONS: i32 = 2;

/// Reads the target until `batches` batches of `per_batch` records are all
/// there (duplicates allowed), or fails with what is missing.
fn wait_mirrored(system: &System, topic: &str, batches: usize, per_batch: usize) -> Result<()> {
    let mut last = String::new();
    wait_until(
        "every record in the target",
        Duration::from_secs(120),
        || {
            let records = consume_until_idle(
                &system.target.bootstrap(),
                topic,
                batches * per_batch,
                Duration::from_secs(2),
                Duration::from_secs(20),
            )?;
            let verdict = verify_batches(&records, PARTITIONS, batches, per_batch);
            last = verdict.summary();
            Ok(verdict.complete())
        },
    )
    .with_context(|| format!("last read: {last}"))
}

fn dead_proxy() -> Result<String> {
    let port = mmm_test_support::free_port()?;
    Ok(format!("http://127.0.0.1:{port}"))
}

/// Agents that authenticate executors and serve https only, with every proxy
/// variable of the executors pointing nowhere: the task runs and mirrors.
#[test]
fn executors_authenticate_over_https_and_ignore_proxies() -> Result<()> {
    let topic = random_name("e2e-secure");
    let proxy = dead_proxy()?;
    let proxies: Vec<String> = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "https_proxy"]
        .iter()
        .map(|name| format!("{name}={proxy}"))
        .collect();
    let mut sim_args = vec!["--authenticate-http-executors", "--tls-dir", "{dir}/tls"];
    for p in &proxies {
        sim_args.extend(["--executor-env", p.as_str()]);
    }
    let system = System::start_custom(
        1,
        std::slice::from_ref(&topic),
        &sim_args,
        "ca_file = \"{dir}/tls/ca.pem\"",
        "",
    )?;
    ensure!(
        system.master_url.starts_with("https://"),
        "{}",
        system.master_url
    );
    create_topic(&system.source.bootstrap(), &topic, PARTITIONS)?;
    produce_generated(&system.source.bootstrap(), &topic, PARTITIONS, 2_000, 100)?;
    ensure!(system.cli(&["add", "1"])?.status.success(), "mmm-cli add");
    system.wait_for_servers(1, "Running", Duration::from_secs(90))?;
    wait_mirrored(&system, &topic, 1, 2_000)?;
    let log = executor_logs(system.dir.path());
    ensure!(
        log.contains("https://127.0.0.1:"),
        "the executor used https: {log}"
    );
    Ok(())
}

/// Agent restarts: the executor subscribes again within the re-registration
/// window each time and the task keeps running; an agent that refuses the
/// terminal update while its stream is up gets it again; a terminal update
/// refused until the agent restarts arrives after the restart.
#[test]
fn agent_restarts_and_refused_updates_lose_no_task_and_no_update() -> Result<()> {
    let topic = random_name("e2e-agent");
    let system = System::start(1, std::slice::from_ref(&topic))?;
    let none = task_ids(&system)?;
    create_topic(&system.source.bootstrap(), &topic, PARTITIONS)?;
    produce_generated(&system.source.bootstrap(), &topic, PARTITIONS, 2_000, 100)?;
    ensure!(system.cli(&["add", "1"])?.status.success(), "mmm-cli add");
    system.wait_for_servers(1, "Running", Duration::from_secs(90))?;
    let agent = agent_id(&system)?;
    let pids = system.executor_pids();

    for restart in 1..=3u64 {
        system.sim_post(
            &format!("/sim/agents/{agent}/restart"),
            r#"{"downtime_secs": 1}"#,
        )?;
        wait_until(
            &format!("re-subscription after restart {restart}"),
            Duration::from_secs(30),
            || Ok(subscriptions(&system)? == restart + 1),
        )?;
    }
    produce_generated(&system.source.bootstrap(), &topic, PARTITIONS, 2_000, 100)?;
    wait_mirrored(&system, &topic, 2, 2_000)?;
    ensure!(
        system.executor_pids() == pids,
        "the same executor ran throughout"
    );
    let states = task_states(&system, &none)?;
    ensure!(
        states
            .iter()
            .all(|(s, _)| s == "TASK_STAGING" || s == "TASK_RUNNING"),
        "no task was lost over the restarts: {states:?}"
    );

    // The agent refuses the terminal update twice while the stream is up.
    system.sim_post(
        &format!("/sim/agents/{agent}/fail-executor-updates"),
        r#"{"count": 2}"#,
    )?;
    ensure!(system.cli(&["delete", "1"])?.status.success(), "delete 1");
    wait_until("server 1 deleted", Duration::from_secs(60), || {
        Ok(system.servers()?.is_empty())
    })?;
    let last = task_states(&system, &none)?.pop();
    ensure!(
        last == Some(("TASK_KILLED".into(), "SOURCE_EXECUTOR".into())),
        "the executor's TASK_KILLED arrived: {last:?}"
    );

    // Refused until the agent restarts: it arrives with the re-subscription.
    let first = task_ids(&system)?;
    ensure!(system.cli(&["add", "1"])?.status.success(), "mmm-cli add");
    system.wait_for_servers(1, "Running", Duration::from_secs(90))?;
    let id = system
        .servers()?
        .first()
        .map(|(id, _)| *id)
        .context("a server")?;
    let before = subscriptions(&system)?;
    system.sim_post(
        &format!("/sim/agents/{agent}/fail-executor-updates"),
        r#"{"count": 100000}"#,
    )?;
    ensure!(
        system.cli(&["delete", &id.to_string()])?.status.success(),
        "delete {id}"
    );
    wait_until("the TASK_KILLED refused", Duration::from_secs(60), || {
        Ok(executor_logs(system.dir.path()).contains("UPDATE not delivered yet"))
    })?;
    system.sim_post(
        &format!("/sim/agents/{agent}/restart"),
        r#"{"downtime_secs": 1}"#,
    )?;
    wait_until("the second server deleted", Duration::from_secs(60), || {
        Ok(system.servers()?.is_empty())
    })?;
    ensure!(subscriptions(&system)? > before, "it subscribed again");
    let last = task_states(&system, &first)?.pop();
    ensure!(
        last == Some(("TASK_KILLED".into(), "SOURCE_EXECUTOR".into())),
        "the executor's TASK_KILLED arrived after the restart: {last:?}"
    );
    Ok(())
}

fn agent_id(system: &System) -> Result<String> {
    let state = system.sim_get("/sim/state")?;
    state["agents"][0]["id"]
        .as_str()
        .map(str::to_owned)
        .context("no agent in /sim/state")
}

/// SUBSCRIBE calls over all sandboxes.
fn subscriptions(system: &System) -> Result<u64> {
    let state = system.sim_get("/sim/state")?;
    Ok(state["sandboxes"]
        .as_array()
        .map(|s| s.iter().filter_map(|v| v["subscriptions"].as_u64()).sum())
        .unwrap_or(0))
}

/// The ids of every task mesos-sim knows.
fn task_ids(system: &System) -> Result<Vec<String>> {
    let state = system.sim_get("/sim/state")?;
    Ok(state["tasks"]
        .as_array()
        .map(|tasks| {
            tasks
                .iter()
                .filter_map(|t| t["task_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// The (state, source) history of the only task whose id is not in `old`.
fn task_states(system: &System, old: &[String]) -> Result<Vec<(String, String)>> {
    let state = system.sim_get("/sim/state")?;
    let mut new = state["tasks"].as_array().into_iter().flatten().filter(|t| {
        t["task_id"]
            .as_str()
            .is_some_and(|id| !old.iter().any(|o| o == id))
    });
    let task = new.next().context("no new task in /sim/state")?;
    ensure!(new.next().is_none(), "more than one new task");
    Ok(task["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .map(|c| {
                    (
                        c["state"].as_str().unwrap_or_default().to_owned(),
                        c["source"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default())
}

/// Every executor.log under `dir`, concatenated.
fn executor_logs(dir: &Path) -> String {
    let mut out = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "executor.log") {
                out.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    out
}
