//! The fault matrix: a live mirror through the real binaries, one fault
//! injected mid-stream per test, then every source record must be in the
//! target (duplicates counted, allowed) and the cluster must end as expected.
//!
//! Records per row: `MMM_FAULT_RECORDS` (20,000 by default; `cargo xtask test
//! --all` sets 200,000). Each row prints `row X: N records, D duplicates, T s`.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use mmm_e2e::{seeded_rng, verify_batches, wait_until, BatchVerdict, System};
use mmm_test_support::{
    consume_until_idle, create_topic, produce_generated, random_name, ChildGuard,
};
use rand::Rng;
use serde_json::Value;

const PARTITIONS: i32 = 4;
/// The records are produced in this many equal batches, with the fault
/// injected between two of them, while the executors mirror the earlier ones.
const BATCHES: usize = 10;
const VALUE_SIZE: usize = 200;

/// One row's live mirror: the system, its topic and how much was produced.
struct Stream {
    system: System,
    topic: String,
    per_batch: usize,
    produced_batches: usize,
    started: Instant,
}

impl Stream {
    /// Starts the system with `agents` agents and a fresh topic.
    fn start(agents: u32, prefix: &str) -> Result<Stream> {
        Stream::start_with(agents, prefix, "")
    }

    /// Like [`Stream::start`], with `extra` TOML for the scheduler.
    fn start_with(agents: u32, prefix: &str, extra: &str) -> Result<Stream> {
        let started = Instant::now();
        let topic = random_name(prefix);
        let system = System::start_with(agents, std::slice::from_ref(&topic), extra)?;
        create_topic(&system.source.bootstrap(), &topic, PARTITIONS)?;
        let per_batch = records_per_row() / BATCHES;
        Ok(Stream {
            system,
            topic,
            per_batch,
            produced_batches: 0,
            started,
        })
    }

    fn total(&self) -> usize {
        BATCHES * self.per_batch
    }

    /// Adds `count` servers through mmm-cli and waits until they run.
    fn add_running(&self, count: usize) -> Result<()> {
        let out = self.system.cli(&["add", &count.to_string()])?;
        ensure!(
            out.status.success(),
            "mmm-cli add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.system
            .wait_for_servers(count, "Running", Duration::from_secs(90))
    }

    /// Produces the next batch (each batch's sequences start at 0 again).
    fn produce_batch(&mut self) -> Result<()> {
        ensure!(self.produced_batches < BATCHES, "all batches are produced");
        produce_generated(
            &self.system.source.bootstrap(),
            &self.topic,
            PARTITIONS,
            self.per_batch,
            VALUE_SIZE,
        )?;
        self.produced_batches += 1;
        Ok(())
    }

    /// Produces the batches up to (not including) batch `until`.
    fn produce_until(&mut self, until: usize) -> Result<()> {
        while self.produced_batches < until.min(BATCHES) {
            self.produce_batch()?;
        }
        Ok(())
    }

    /// Produces what is left, reads the target until every record is there
    /// (or the deadline passes), and prints the row's figures.
    fn finish(&mut self, row: &str) -> Result<BatchVerdict> {
        self.produce_until(BATCHES)?;
        let verdict = self.read_until_complete()?;
        eprintln!(
            "row {row}: {} records, {} duplicates, {:.0} s",
            self.total(),
            verdict.duplicates,
            self.started.elapsed().as_secs_f64()
        );
        ensure!(
            verdict.complete(),
            "row {row}: records lost: {}",
            verdict.summary()
        );
        Ok(verdict)
    }

    fn read_until_complete(&self) -> Result<BatchVerdict> {
        let total = self.total();
        let timeout = Duration::from_secs(120) + Duration::from_millis(total as u64);
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let records = consume_until_idle(
                &self.system.target.bootstrap(),
                &self.topic,
                total,
                Duration::from_secs(3),
                left.max(Duration::from_secs(5)),
            );
            match records {
                Ok(records) => {
                    let verdict = verify_batches(&records, PARTITIONS, BATCHES, self.per_batch);
                    if verdict.complete() || Instant::now() > deadline {
                        return Ok(verdict);
                    }
                }
                Err(e) if Instant::now() > deadline => return Err(e.into()),
                Err(_) => {}
            }
        }
    }

    /// The cluster ends with `count` servers Running and exactly one
    /// executor process per server.
    fn assert_settled(&self, count: usize) -> Result<()> {
        self.system
            .wait_for_servers(count, "Running", Duration::from_secs(60))?;
        wait_until(
            &format!("exactly {count} executors"),
            Duration::from_secs(30),
            || Ok(self.system.executor_pids().len() == count),
        )?;
        let live = live_tasks(&self.system)?;
        ensure!(
            live.len() == count,
            "mesos-sim runs {} live tasks, not {count}: {live:?}",
            live.len()
        );
        Ok(())
    }
}

fn records_per_row() -> usize {
    let wanted = std::env::var("MMM_FAULT_RECORDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(20_000);
    // Whole batches of whole rounds over the partitions.
    let unit = BATCHES * usize::try_from(PARTITIONS).unwrap_or(1);
    (wanted / unit).max(1) * unit
}

/// mesos-sim's tasks that run (a task of a lost agent stays known to the
/// master as TASK_UNREACHABLE, as with a real master, and is not counted).
fn live_tasks(system: &System) -> Result<Vec<Value>> {
    let state = system.sim_get("/sim/state")?;
    Ok(state["tasks"]
        .as_array()
        .map(|tasks| {
            tasks
                .iter()
                .filter(|t| t["live"] == true && t["state"] == "TASK_RUNNING")
                .cloned()
                .collect()
        })
        .unwrap_or_default())
}

/// The framework mesos-sim knows, as (id, connected).
fn framework(system: &System) -> Result<(String, bool)> {
    let state = system.sim_get("/sim/state")?;
    let frameworks = state["frameworks"]
        .as_array()
        .context("no frameworks in /sim/state")?;
    ensure!(
        frameworks.len() == 1,
        "one framework expected: {frameworks:?}"
    );
    Ok((
        frameworks[0]["id"].as_str().unwrap_or_default().to_owned(),
        frameworks[0]["connected"] == true,
    ))
}

fn sorted(mut pids: Vec<u32>) -> Vec<u32> {
    pids.sort_unstable();
    pids
}

#[test]
fn row1_executor_sigkilled_three_times_loses_nothing() -> Result<()> {
    let mut s = Stream::start(2, "fault-exec-kill")?;
    s.produce_batch()?;
    s.add_running(1)?;
    let mut rng = seeded_rng("row 1");
    for round in 0..3 {
        s.produce_until(2 + round * 3)?;
        // A random moment while the executor mirrors the batches just produced.
        std::thread::sleep(Duration::from_millis(rng.random_range(0..1500)));
        let pids = s.system.executor_pids();
        ensure!(
            pids.len() == 1,
            "one executor before kill {round}: {pids:?}"
        );
        let status = Command::new("kill")
            .arg("-KILL")
            .arg(pids[0].to_string())
            .status()?;
        ensure!(status.success(), "kill -KILL {}", pids[0]);
        wait_until(
            &format!("the executor relaunched after kill {}", round + 1),
            Duration::from_secs(90),
            || {
                let now = s.system.executor_pids();
                Ok(now.len() == 1 && now[0] != pids[0])
            },
        )?;
        s.system
            .wait_for_servers(1, "Running", Duration::from_secs(60))?;
    }
    s.finish("1 (executor SIGKILL x3)")?;
    s.assert_settled(1)
}

#[test]
fn row2_target_broker_paused_ten_seconds_loses_nothing() -> Result<()> {
    let mut s = Stream::start(1, "fault-target")?;
    s.produce_batch()?;
    s.add_running(1)?;
    s.produce_until(BATCHES / 2)?;
    s.system.target.pause()?;
    // The outage itself lasts ten seconds; records keep arriving at the source.
    let outage = Instant::now();
    s.produce_until(BATCHES / 2 + 2)?;
    std::thread::sleep(Duration::from_secs(10).saturating_sub(outage.elapsed()));
    s.system.target.resume()?;
    s.finish("2 (target broker paused 10 s)")?;
    s.assert_settled(1)
}

#[test]
fn row3_source_broker_paused_ten_seconds_loses_nothing() -> Result<()> {
    let mut s = Stream::start(1, "fault-source")?;
    s.produce_batch()?;
    s.add_running(1)?;
    s.produce_until(BATCHES / 2)?;
    s.system.source.pause()?;
    std::thread::sleep(Duration::from_secs(10));
    s.system.source.resume()?;
    s.finish("3 (source broker paused 10 s)")?;
    s.assert_settled(1)
}

#[test]
fn row4_scheduler_sigkilled_and_restarted_mid_stream_keeps_its_servers() -> Result<()> {
    let mut s = Stream::start(2, "fault-scheduler")?;
    s.produce_batch()?;
    s.add_running(2)?;
    let before = sorted(s.system.executor_pids());
    ensure!(before.len() == 2, "two executors: {before:?}");
    let (framework_before, _) = framework(&s.system)?;
    s.produce_until(BATCHES / 2)?;
    s.system.kill_scheduler()?;
    s.produce_until(BATCHES / 2 + 2)?;
    s.system.start_scheduler()?;
    s.system
        .wait_for_servers(2, "Running", Duration::from_secs(90))?;
    let ids: Vec<u64> = s.system.servers()?.into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, vec![1, 2], "the same servers after the restart");
    wait_until(
        "the framework to be connected again",
        Duration::from_secs(30),
        || Ok(framework(&s.system)? == (framework_before.clone(), true)),
    )?;
    s.finish("4 (scheduler SIGKILL + restart)")?;
    s.assert_settled(2)?;
    assert_eq!(
        sorted(s.system.executor_pids()),
        before,
        "the running executors were kept, none added"
    );
    Ok(())
}

#[test]
fn row5_master_restart_keeps_tasks_and_the_scheduler_resubscribes() -> Result<()> {
    let mut s = Stream::start(2, "fault-master")?;
    s.produce_batch()?;
    s.add_running(2)?;
    let before = sorted(s.system.executor_pids());
    let (framework_before, _) = framework(&s.system)?;
    let master_before = s.system.sim_get("/sim/state")?["master_id"].clone();
    s.produce_until(BATCHES / 2)?;
    s.system.sim_post("/sim/master/restart", "")?;
    ensure!(
        s.system.sim_get("/sim/state")?["master_id"] != master_before,
        "the master id changed"
    );
    wait_until(
        "the scheduler to subscribe again to the new master",
        Duration::from_secs(60),
        || Ok(framework(&s.system)? == (framework_before.clone(), true)),
    )?;
    s.finish("5 (master restart)")?;
    s.assert_settled(2)?;
    assert_eq!(
        sorted(s.system.executor_pids()),
        before,
        "the tasks were kept through the failover"
    );
    Ok(())
}

#[test]
fn row6_lost_agent_moves_its_task_to_the_other_agent() -> Result<()> {
    // An unreachable task is awaited 5 minutes by default before it is
    // replaced; a short wait keeps the row quick.
    let mut s = Stream::start_with(
        2,
        "fault-agent",
        "\n[scheduler]\nunreachable_timeout_ms = 5000\n",
    )?;
    s.produce_batch()?;
    s.add_running(1)?;
    let tasks = live_tasks(&s.system)?;
    ensure!(tasks.len() == 1, "one live task: {tasks:?}");
    let lost_agent = tasks[0]["agent_id"]
        .as_str()
        .context("the task has an agent_id")?
        .to_owned();
    s.produce_until(BATCHES / 2)?;
    s.system
        .sim_post(&format!("/sim/agents/{lost_agent}/kill"), "")?;
    let moved = wait_until(
        "the task running on the other agent",
        Duration::from_secs(120),
        || {
            let tasks = live_tasks(&s.system)?;
            Ok(tasks.len() == 1 && tasks[0]["agent_id"] != lost_agent.as_str())
        },
    );
    if let Err(e) = moved {
        let log = fs::read_dir(s.system.dir.path())?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("scheduler-"))
            .map(|e| fs::read_to_string(e.path()).unwrap_or_default())
            .collect::<String>();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        bail!(
            "{e:#}\nsim state: {}\nservers: {:?}\nscheduler log (last lines, newest first):\n{}",
            s.system.sim_get("/sim/state")?,
            s.system.servers()?,
            tail.join("\n")
        );
    }
    s.finish("6 (agent lost)")?;
    s.assert_settled(1)
}

#[test]
fn row7_duplicated_and_reordered_updates_converge() -> Result<()> {
    let mut s = Stream::start(2, "fault-updates")?;
    s.system
        .sim_post("/sim/updates/duplicate", r#"{"count": 4}"#)?;
    s.system
        .sim_post("/sim/updates/reorder", r#"{"count": 4}"#)?;
    s.produce_batch()?;
    s.add_running(2)?;
    s.finish("7 (updates duplicated + reordered)")?;
    s.assert_settled(2)
}

#[test]
fn row8_a_failed_state_write_refuses_the_add_and_launches_nothing() -> Result<()> {
    let mut s = Stream::start(1, "fault-store")?;
    s.produce_batch()?;
    s.add_running(1)?;
    s.produce_until(BATCHES / 2)?;
    let before = s.system.servers()?;
    let pids = sorted(s.system.executor_pids());
    let tasks_before = s.system.sim_get("/sim/state")?["tasks"]
        .as_array()
        .map_or(0, Vec::len);

    // Running as root, a read-only directory would not stop the write: a
    // file where the state directory was makes every write of it fail.
    let state_dir = s.system.state_dir();
    let moved = s.system.dir.path().join("state.moved");
    fs::rename(&state_dir, &moved).context("moving the state directory away")?;
    fs::write(&state_dir, b"not a directory").context("blocking the state directory")?;

    let out = s.system.cli(&["add", "1"])?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(!out.status.success(), "the add was accepted: {said}");
    ensure!(
        said.contains("could not be stored"),
        "the error says why: {said}"
    );
    assert_eq!(s.system.servers()?, before, "the cluster is unchanged");
    let tasks_after = s.system.sim_get("/sim/state")?["tasks"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(tasks_after, tasks_before, "nothing was launched");
    assert_eq!(sorted(s.system.executor_pids()), pids, "no executor added");

    fs::remove_file(&state_dir).context("unblocking")?;
    fs::rename(&moved, &state_dir).context("putting the state directory back")?;
    s.finish("8 (state write fails)")?;
    s.assert_settled(1)
}

#[test]
fn row9_a_second_scheduler_on_the_same_state_refuses_to_run() -> Result<()> {
    let mut s = Stream::start(1, "fault-second")?;
    s.produce_batch()?;
    s.add_running(1)?;
    let pids = sorted(s.system.executor_pids());
    let (framework_before, _) = framework(&s.system)?;
    s.produce_until(BATCHES / 2)?;

    // The same configuration: the API binds port 0, so only the state is shared.
    let d = s.system.dir.path();
    let second_config = d.join("mmm.toml");
    let log = d.join("second-scheduler.log");
    let mut second = ChildGuard::spawn_logged(
        "second mmm-scheduler",
        s.system.scheduler_command(&second_config)?,
        &log,
    )?;
    let Some(exit) = second.wait_timeout(Duration::from_secs(30))? else {
        bail!("the second scheduler kept running");
    };
    let said = fs::read_to_string(&log).unwrap_or_default();
    ensure!(!exit.success(), "the second scheduler exited with {exit}");
    ensure!(
        said.contains("locked") && said.contains("mmm-state.json.lock"),
        "the message names the lock: {said}"
    );

    ensure!(
        framework(&s.system)? == (framework_before, true),
        "the first scheduler keeps its framework"
    );
    s.finish("9 (second scheduler on the same state)")?;
    s.assert_settled(1)?;
    assert_eq!(sorted(s.system.executor_pids()), pids, "no executor added");
    Ok(())
}

#[test]
fn row10_executor_partitioned_from_its_agent_resubscribes_and_loses_nothing() -> Result<()> {
    let mut s = Stream::start(1, "fault-partition")?;
    s.produce_batch()?;
    s.add_running(1)?;
    let before = s.system.executor_pids();
    let task_before = live_tasks(&s.system)?;
    ensure!(task_before.len() == 1, "one live task: {task_before:?}");
    let agent = task_before[0]["agent_id"]
        .as_str()
        .context("the task has an agent_id")?
        .to_owned();
    s.produce_until(BATCHES / 2)?;
    let dropped: Value = serde_json::from_str(
        &s.system
            .sim_post(&format!("/sim/agents/{agent}/drop-executor-streams"), "")?,
    )?;
    ensure!(
        dropped["dropped"] == 1,
        "one executor stream was open: {dropped}"
    );
    wait_until(
        "the executor to subscribe again",
        Duration::from_secs(60),
        || {
            let state = s.system.sim_get("/sim/state")?;
            let sandboxes = state["sandboxes"].as_array().cloned().unwrap_or_default();
            Ok(sandboxes
                .iter()
                .any(|b| b["running"] == true && b["subscriptions"] == 2))
        },
    )?;
    s.finish("10 (executor-agent partition)")?;
    s.assert_settled(1)?;
    assert_eq!(
        s.system.executor_pids(),
        before,
        "the executor recovered its subscription instead of being replaced"
    );
    assert_eq!(
        live_tasks(&s.system)?[0]["task_id"],
        task_before[0]["task_id"],
        "the same task runs"
    );
    // The agent reaches the executor again: a delete's KILL gets through.
    ensure!(
        s.system.cli(&["delete", "1"])?.status.success(),
        "delete accepted"
    );
    wait_until(
        "the server removed after its kill",
        Duration::from_secs(60),
        || Ok(s.system.servers()?.is_empty()),
    )?;
    wait_until("the executor to exit", Duration::from_secs(30), || {
        Ok(s.system.executor_pids().is_empty())
    })
}
