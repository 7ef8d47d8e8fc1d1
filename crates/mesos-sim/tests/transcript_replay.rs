//! Replays the recorded session of a real Mesos master and agent
//! (tests/fixtures/*.txt) against the simulator and compares the answers.

mod common;

use bytes::Bytes;
use common::{framework_info, post_raw, Scheduler};
use futures::StreamExt;
use mesos_proto::v1::framework_info::capability::Type as Cap;
use mesos_proto::v1::scheduler::{self as sched, call, event::Type as Ev};
use mesos_proto::v1::{executor as exec, TaskState};
use mesos_proto::{calls, recordio, Message, CONTENT_TYPE_PROTOBUF, STREAM_ID_HEADER};

const SCHEDULER_SESSION: &str = include_str!("fixtures/scheduler-session.txt");
const EXECUTOR_SESSION: &str = include_str!("fixtures/executor-session.txt");

/// A protobuf text-format message: field name -> values, in order.
#[derive(Debug, Default, Clone)]
struct Node {
    fields: Vec<(String, Value)>,
}

#[derive(Debug, Clone)]
enum Value {
    Scalar(String),
    Message(Node),
}

impl Node {
    fn parse(text: &str) -> Node {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        Self::parse_body(&mut lines)
    }

    fn parse_body<'a>(lines: &mut impl Iterator<Item = &'a str>) -> Node {
        let mut node = Node::default();
        while let Some(line) = lines.next() {
            if line == "}" {
                break;
            }
            if let Some(name) = line.strip_suffix(" {") {
                node.fields
                    .push((name.to_owned(), Value::Message(Self::parse_body(lines))));
            } else if let Some((name, value)) = line.split_once(": ") {
                node.fields.push((
                    name.to_owned(),
                    Value::Scalar(value.trim_matches('"').to_owned()),
                ));
            }
        }
        node
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    fn scalar(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(Value::Scalar(s)) => Some(s),
            _ => None,
        }
    }

    fn message(&self, name: &str) -> Option<&Node> {
        match self.get(name) {
            Some(Value::Message(m)) => Some(m),
            _ => None,
        }
    }

    fn all(&self, name: &str) -> Vec<&Node> {
        self.fields
            .iter()
            .filter(|(n, _)| n == name)
            .filter_map(|(_, v)| match v {
                Value::Message(m) => Some(m),
                Value::Scalar(_) => None,
            })
            .collect()
    }

    fn names(&self) -> Vec<&str> {
        self.fields.iter().map(|(n, _)| n.as_str()).collect()
    }
}

/// The `### ...` sections of a transcript: (header, body).
fn sections(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(header) = line.strip_prefix("### ") {
            out.push((header.to_owned(), String::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.push_str(line);
            last.1.push('\n');
        }
    }
    out
}

/// "master answers HTTP 400 \"text\"" -> (400, "text").
fn answer(header: &str) -> Option<(u16, String)> {
    let rest = header.strip_prefix("master answers HTTP ")?;
    let (code, text) = rest.split_once(' ').unwrap_or((rest, ""));
    let text = text.trim();
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .or_else(|| text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')))
        .unwrap_or(text);
    Some((code.parse().ok()?, text.to_owned()))
}

fn event_section(all: &[(String, String)], header: &str) -> Vec<Node> {
    all.iter()
        .filter(|(h, _)| h == header)
        .map(|(_, b)| Node::parse(b))
        .collect()
}

/// The five bad calls of the recording, replayed: same status, same text.
#[tokio::test]
async fn the_bad_calls_get_the_recorded_answers() {
    let all = sections(SCHEDULER_SESSION);
    let sim = common::start(1).await;
    let s = Scheduler::subscribe(
        &sim.master_url(),
        framework_info(&[Cap::PartitionAware, Cap::TaskKillingState]),
    )
    .await;
    let recorded_fw = "794979ca-5ee7-4fc5-9ea8-83abc3d67026-0000";
    let mut replayed = 0;
    for pair in all.windows(2) {
        let (request, body) = (&pair[0].0, &pair[0].1);
        let Some(what) = request.strip_prefix("scheduler -> ") else {
            continue;
        };
        let Some((status, text)) = answer(&pair[1].0) else {
            continue;
        };
        if status == 202 || what.starts_with("SUBSCRIBE") {
            continue;
        }
        let node = Node::parse(body);
        let mut call = sched::Call::default();
        if let Some(t) = node.scalar("type") {
            call.r#type = call::Type::from_str_name(t).map(|t| t as i32);
        }
        if let Some(fw) = node.message("framework_id").and_then(|f| f.scalar("value")) {
            let value = if fw == recorded_fw {
                s.framework_id.value.clone()
            } else {
                fw.to_owned()
            };
            call.framework_id = Some(mesos_proto::ids::framework_id(value));
        }
        let with_stream = [(STREAM_ID_HEADER, s.stream_id.as_str())];
        let got = if what.contains("undecodable") {
            post_raw(
                &s.url,
                Some(CONTENT_TYPE_PROTOBUF),
                &with_stream,
                vec![0x0a, 0xff, 0x01],
            )
            .await
        } else if what.contains("text/plain") {
            post_raw(&s.url, Some("text/plain"), &with_stream, b"revive".to_vec()).await
        } else if what.contains("without Mesos-Stream-Id") {
            post_raw(
                &s.url,
                Some(CONTENT_TYPE_PROTOBUF),
                &[],
                call.encode_to_vec(),
            )
            .await
        } else {
            s.call(call).await
        };
        assert_eq!(
            (got.status, got.body.as_str()),
            (status, text.as_str()),
            "replaying {what}"
        );
        replayed += 1;
    }
    assert_eq!(replayed, 5, "the recording has five bad calls");
    sim.shutdown().await;
}

/// Offers, reconciliation, the executor's view and FAILURE, compared field by
/// field with the recording.
#[tokio::test]
async fn the_session_matches_the_recording() {
    let all = sections(SCHEDULER_SESSION);
    let exec_all = sections(EXECUTOR_SESSION);
    let sim = common::start(1).await;
    let mut s = Scheduler::subscribe(
        &sim.master_url(),
        framework_info(&[Cap::PartitionAware, Cap::TaskKillingState]),
    )
    .await;

    // SUBSCRIBED: same fields, same master_info shape.
    let recorded_subscribed = &event_section(&all, "master event SUBSCRIBED")[0];
    let rec_sub = recorded_subscribed
        .message("subscribed")
        .expect("subscribed");
    assert_eq!(
        rec_sub.names(),
        ["framework_id", "heartbeat_interval_seconds", "master_info"]
    );
    let rec_master = rec_sub.message("master_info").expect("master_info");
    let ours = s.subscribed.master_info.clone().expect("master_info");
    assert_eq!(rec_master.scalar("ip"), Some(ours.ip.to_string().as_str()));
    assert_eq!(rec_master.scalar("version"), ours.version.as_deref());
    assert_eq!(
        rec_master.all("capabilities").len(),
        ours.capabilities.len()
    );

    // OFFERS: resource order, role "*", no allocation_info, attributes, url path.
    let recorded_offers = &event_section(&all, "master event OFFERS")[0];
    let rec_offer = recorded_offers
        .message("offers")
        .and_then(|o| o.message("offers"))
        .expect("offer");
    let offer = s.offer().await;
    let rec_resources = rec_offer.all("resources");
    assert_eq!(rec_resources.len(), offer.resources.len());
    for (rec, got) in rec_resources.iter().zip(&offer.resources) {
        assert_eq!(rec.scalar("name"), Some(got.name.as_str()));
        assert_eq!(
            rec.scalar("type"),
            mesos_proto::v1::value::Type::try_from(got.r#type)
                .ok()
                .map(|t| t.as_str_name())
        );
        #[allow(deprecated)]
        let role = got.role.as_deref();
        assert_eq!(rec.scalar("role"), role);
        assert!(rec.get("allocation_info").is_none() && got.allocation_info.is_none());
        if let Some(v) = rec.message("scalar").and_then(|x| x.scalar("value")) {
            assert_eq!(v.parse::<f64>().ok(), got.scalar.as_ref().map(|x| x.value));
        }
    }
    let rec_attr = rec_offer.message("attributes").expect("attribute");
    assert_eq!(
        rec_attr.scalar("name"),
        Some(offer.attributes[0].name.as_str())
    );
    assert_eq!(
        rec_attr.message("text").and_then(|t| t.scalar("value")),
        offer.attributes[0].text.as_ref().map(|t| t.value.as_str())
    );
    assert_eq!(rec_offer.scalar("hostname"), Some(offer.hostname.as_str()));
    let rec_url = rec_offer.message("url").expect("url");
    assert_eq!(
        rec_url.scalar("path"),
        offer.url.as_ref().and_then(|u| u.path.as_deref())
    );

    // ACCEPT the recorded task, with an executor that never subscribes: the
    // test plays the executor itself through the agent's API.
    let rec_accept = all
        .iter()
        .find(|(h, b)| h == "scheduler -> ACCEPT" && b.contains("launch"))
        .map(|(_, b)| Node::parse(b))
        .expect("recorded ACCEPT");
    let rec_task = rec_accept
        .message("accept")
        .and_then(|a| a.message("operations"))
        .and_then(|o| o.message("launch"))
        .and_then(|l| l.message("task_infos"))
        .expect("task_infos");
    let rec_exec = rec_task.message("executor").expect("executor");
    let exec_id = rec_exec
        .message("executor_id")
        .and_then(|e| e.scalar("value"))
        .expect("id")
        .to_owned();
    let task_id = rec_task
        .message("task_id")
        .and_then(|e| e.scalar("value"))
        .expect("id")
        .to_owned();
    let mut task = common::executor_task(
        &offer,
        &task_id,
        &exec_id,
        "http://unused",
        "{\"version\": 1}",
    );
    task.name = rec_task.scalar("name").expect("name").to_owned();
    task.resources = task
        .resources
        .into_iter()
        .map(|r| {
            mesos_proto::resources::with_allocation(
                r,
                Some(mesos_proto::v1::resource::AllocationInfo {
                    role: Some("*".into()),
                }),
            )
        })
        .collect();
    let e = task.executor.as_mut().expect("executor");
    e.name = rec_exec.scalar("name").map(str::to_owned);
    e.command = Some(mesos_proto::v1::CommandInfo {
        value: Some("exec /bin/sleep 60".into()),
        ..Default::default()
    });
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![task.clone()],
        5.0,
    ))
    .await;
    sim.wait_for("executor process", common::WAIT, |snap| {
        snap.sandboxes.first().and_then(|b| b.pid)
    })
    .await
    .expect("started");

    let endpoint = sim.agent_endpoint(&offer.agent_id.value).expect("agent");
    let url = format!("http://{endpoint}/api/v1/executor");
    let eid = mesos_proto::ids::executor_id(&exec_id);
    let response = reqwest::Client::new()
        .post(&url)
        .header("Content-Type", CONTENT_TYPE_PROTOBUF)
        .header("Accept", CONTENT_TYPE_PROTOBUF)
        .body(calls::executor_subscribe(&s.framework_id, &eid, vec![], vec![]).encode_to_vec())
        .send()
        .await
        .expect("agent reachable");
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers().get(STREAM_ID_HEADER).is_none(),
        "no stream id on the executor API"
    );
    let mut stream = response.bytes_stream();
    let mut decoder = recordio::Decoder::default();
    let mut events: Vec<exec::Event> = Vec::new();
    let mut next_event = async || -> exec::Event {
        loop {
            if let Some(r) = decoder.next_record().expect("framing") {
                return exec::Event::decode(r).expect("event");
            }
            let chunk = tokio::time::timeout(common::WAIT, stream.next())
                .await
                .expect("in time")
                .expect("open")
                .expect("chunk");
            decoder.feed(&chunk);
        }
    };
    events.push(next_event().await);
    events.push(next_event().await);

    // SUBSCRIBED as recorded.
    let rec_exec_sub = event_section(&exec_all, "agent event SUBSCRIBED")[0]
        .message("subscribed")
        .cloned()
        .expect("subscribed");
    assert_eq!(
        rec_exec_sub.names(),
        [
            "executor_info",
            "framework_info",
            "agent_info",
            "container_id"
        ]
    );
    let sub = events[0].subscribed.clone().expect("SUBSCRIBED first");
    assert_eq!(sub.executor_info, task.executor.clone().expect("executor"));
    assert_eq!(sub.framework_info.id, Some(s.framework_id.clone()));
    assert_eq!(sub.framework_info.checkpoint, Some(true));
    let rec_agent = rec_exec_sub.message("agent_info").expect("agent_info");
    let names: Vec<&str> = rec_agent
        .all("resources")
        .iter()
        .filter_map(|r| r.scalar("name"))
        .collect();
    let got_names: Vec<&str> = sub
        .agent_info
        .resources
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, got_names);
    #[allow(deprecated)]
    let no_roles = sub.agent_info.resources.iter().all(|r| r.role.is_none());
    assert!(
        no_roles
            && rec_agent
                .all("resources")
                .iter()
                .all(|r| r.get("role").is_none())
    );
    assert_eq!(
        sub.agent_info.hostname,
        rec_agent.scalar("hostname").expect("hostname")
    );
    assert_eq!(
        sub.agent_info.port,
        Some(i32::from(
            url.split(':')
                .nth(2)
                .and_then(|p| p.split('/').next())
                .and_then(|p| p.parse::<u16>().ok())
                .expect("port")
        ))
    );
    assert!(sub.container_id.is_some());

    // LAUNCH: the whole TaskInfo as sent, allocation_info included.
    let launch = events[1].launch.clone().expect("LAUNCH second").task;
    let mut expected = task.clone();
    if let Some(e) = expected.executor.as_mut() {
        e.framework_id = Some(s.framework_id.clone());
    }
    assert_eq!(launch, expected);
    let rec_launch = &event_section(&exec_all, "agent event LAUNCH")[0];
    let rec_launch_res = rec_launch
        .message("launch")
        .and_then(|l| l.message("task"))
        .map(|t| t.all("resources").len());
    assert_eq!(rec_launch_res, Some(launch.resources.len()));

    // UPDATE from the "executor" reaches the scheduler keeping SOURCE_EXECUTOR;
    // ACKNOWLEDGE comes back as ACKNOWLEDGED {task_id, uuid}.
    let uuid = Bytes::copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let status = mesos_proto::v1::TaskStatus {
        task_id: mesos_proto::ids::task_id(&task_id),
        state: TaskState::TaskRunning as i32,
        source: Some(mesos_proto::v1::task_status::Source::Executor as i32),
        uuid: Some(uuid.clone()),
        timestamp: Some(1.0),
        ..Default::default()
    };
    let a = post_raw(
        &url,
        Some(CONTENT_TYPE_PROTOBUF),
        &[],
        calls::executor_update(&s.framework_id, &eid, status).encode_to_vec(),
    )
    .await;
    assert_eq!((a.status, a.body.as_str()), (202, ""));
    let running = s.update(&task_id, TaskState::TaskRunning).await;
    let rec_update = event_section(&all, "master event UPDATE")[0]
        .message("update")
        .and_then(|u| u.message("status"))
        .cloned()
        .expect("status");
    assert_eq!(
        rec_update.names(),
        [
            "task_id",
            "state",
            "agent_id",
            "timestamp",
            "source",
            "uuid",
            "container_status"
        ]
    );
    assert!(running.executor_id.is_none() && running.message.is_none() && running.reason.is_none());
    assert!(
        running.agent_id.is_some()
            && running.timestamp.is_some()
            && running.container_status.is_some()
    );
    assert_eq!(running.uuid.as_ref(), Some(&uuid));
    let rec_cs = rec_update
        .message("container_status")
        .expect("container_status");
    assert_eq!(
        rec_cs.names(),
        ["network_infos", "executor_pid", "container_id"]
    );

    s.ack(&running).await;
    let acked = next_event().await;
    let rec_acked = event_section(&exec_all, "agent event ACKNOWLEDGED")[0]
        .message("acknowledged")
        .cloned()
        .expect("acknowledged");
    assert_eq!(rec_acked.names(), ["task_id", "uuid"]);
    let ack = acked.acknowledged.expect("ACKNOWLEDGED");
    assert_eq!(
        (ack.task_id.value.as_str(), &ack.uuid),
        (task_id.as_str(), &uuid)
    );

    // Reconciliation answers carry what the recording shows, and no uuid.
    let recorded_rec = all
        .iter()
        .filter(|(h, b)| h == "master event UPDATE" && b.contains("REASON_RECONCILIATION"))
        .map(|(_, b)| Node::parse(b))
        .next()
        .and_then(|n| {
            n.message("update")
                .and_then(|u| u.message("status"))
                .cloned()
        })
        .expect("a recorded reconciliation answer");
    s.call_ok(calls::reconcile(&s.framework_id, Vec::new()))
        .await;
    let r = s
        .expect("reconciliation answer", |e| {
            e.update.as_ref().is_some_and(|u| u.status.reason.is_some())
        })
        .await
        .update
        .expect("update")
        .status;
    assert_eq!(recorded_rec.scalar("message"), r.message.as_deref());
    assert_eq!(recorded_rec.scalar("source"), Some("SOURCE_MASTER"));
    assert_eq!(
        r.source,
        Some(mesos_proto::v1::task_status::Source::Master as i32)
    );
    assert_eq!(recorded_rec.scalar("reason"), Some("REASON_RECONCILIATION"));
    assert!(recorded_rec.get("uuid").is_none() && r.uuid.is_none());
    assert_eq!(
        recorded_rec.names(),
        [
            "task_id",
            "state",
            "message",
            "agent_id",
            "timestamp",
            "executor_id",
            "source",
            "reason",
            "container_status"
        ]
    );
    assert!(r.executor_id.is_some() && r.container_status.is_some() && r.agent_id.is_some());

    // The executor exits after a terminal update: FAILURE with its status.
    let killed = mesos_proto::v1::TaskStatus {
        task_id: mesos_proto::ids::task_id(&task_id),
        state: TaskState::TaskKilled as i32,
        source: Some(mesos_proto::v1::task_status::Source::Executor as i32),
        uuid: Some(Bytes::copy_from_slice(uuid::Uuid::new_v4().as_bytes())),
        ..Default::default()
    };
    post_raw(
        &url,
        Some(CONTENT_TYPE_PROTOBUF),
        &[],
        calls::executor_update(&s.framework_id, &eid, killed).encode_to_vec(),
    )
    .await;
    let k = s.update(&task_id, TaskState::TaskKilled).await;
    s.ack(&k).await;
    s.call_ok(calls::shutdown(
        &s.framework_id,
        eid.clone(),
        offer.agent_id.clone(),
    ))
    .await;
    let failure = s
        .expect("FAILURE", |e| e.r#type == Some(Ev::Failure as i32))
        .await
        .failure
        .expect("failure");
    let rec_failure = event_section(&all, "master event FAILURE")[0]
        .message("failure")
        .cloned()
        .expect("failure");
    assert_eq!(rec_failure.names(), ["agent_id", "executor_id", "status"]);
    assert!(
        failure.agent_id.is_some() && failure.executor_id.is_some() && failure.status.is_some()
    );
    let task_states = sim.task(&task_id).expect("task").states().join(",");
    assert_eq!(task_states, "TASK_STAGING,TASK_RUNNING,TASK_KILLED");
    sim.shutdown().await;
}
