//! Compatibility with what a real Mesos sends: every message of a session
//! recorded from a Mesos master and agent (protobuf text format, decoded there
//! with Mesos's own .proto files; see `tests/fixtures/`) is parsed against the
//! descriptors of our `proto/` files, encoded, and decoded with the generated
//! types. A field or enum value that our files leave out, name differently or
//! type differently fails the parse; one the generated types drop fails the
//! round trip. Text format carries no field numbers: those are pinned by the
//! golden-byte tests in `src/calls.rs`.

use std::path::PathBuf;

use mesos_proto::v1::{self, executor, scheduler};
use mesos_proto::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};

const SCHEDULER_SESSION: &str = include_str!("fixtures/scheduler-session.txt");
const EXECUTOR_SESSION: &str = include_str!("fixtures/executor-session.txt");

/// The status uuid of the task's TASK_RUNNING update, as Mesos escaped it:
/// `"/*/\030\341\277A\311\214&\220\364\005\325\022\220"`.
const RUNNING_UUID: [u8; 16] = [
    0x2f, 0x2a, 0x2f, 0x18, 0xe1, 0xbf, 0x41, 0xc9, 0x8c, 0x26, 0x90, 0xf4, 0x05, 0xd5, 0x12, 0x90,
];

fn descriptor_pool() -> DescriptorPool {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let mut compiler = protox::Compiler::new([root]).expect("proto/ is a readable include path");
    compiler.include_imports(true);
    compiler
        .open_files([
            "mesos/v1/mesos.proto",
            "mesos/v1/scheduler/scheduler.proto",
            "mesos/v1/executor/executor.proto",
        ])
        .expect("our proto files compile");
    compiler.descriptor_pool()
}

/// One `### ...` section of a transcript: who speaks, and the text after it.
struct Block<'a> {
    header: &'a str,
    body: String,
}

fn blocks(transcript: &str) -> Vec<Block<'_>> {
    let mut out: Vec<Block<'_>> = Vec::new();
    for line in transcript.lines() {
        if let Some(header) = line.strip_prefix("### ") {
            out.push(Block {
                header,
                body: String::new(),
            });
        } else if let Some(block) = out.last_mut() {
            block.body.push_str(line);
            block.body.push('\n');
        }
    }
    out
}

/// The protobuf message a section holds, or `None` for environment lines and
/// HTTP answers.
fn message_name(header: &str) -> Option<&'static str> {
    if header.starts_with("scheduler -> ") {
        Some("mesos.v1.scheduler.Call")
    } else if header.starts_with("master event ") {
        Some("mesos.v1.scheduler.Event")
    } else if header.starts_with("executor -> ") {
        Some("mesos.v1.executor.Call")
    } else if header.starts_with("agent event ") {
        Some("mesos.v1.executor.Event")
    } else {
        None
    }
}

/// A parsed message section: its header, its descriptor and the bytes our
/// descriptors encode it to.
struct Recorded<'a> {
    header: &'a str,
    descriptor: MessageDescriptor,
    parsed: DynamicMessage,
    bytes: Vec<u8>,
}

fn recorded<'a>(pool: &DescriptorPool, transcript: &'a str) -> Vec<Recorded<'a>> {
    blocks(transcript)
        .into_iter()
        .filter_map(|block| {
            let name = message_name(block.header)?;
            // The "undecodable body" and "text/plain body" sections record
            // bytes that are not a message at all.
            if block.body.trim().is_empty() {
                return None;
            }
            let descriptor = pool
                .get_message_by_name(name)
                .unwrap_or_else(|| panic!("{name} is declared in proto/"));
            let parsed = DynamicMessage::parse_text_format(descriptor.clone(), &block.body)
                .unwrap_or_else(|e| panic!("section '{}' does not parse: {e}", block.header));
            let bytes = parsed.encode_to_vec();
            Some(Recorded {
                header: block.header,
                descriptor,
                parsed,
                bytes,
            })
        })
        .collect()
}

fn find<'r>(all: &'r [Recorded<'_>], header: &str) -> &'r Recorded<'r> {
    all.iter()
        .find(|r| r.header.starts_with(header))
        .unwrap_or_else(|| panic!("the transcript has a section '{header}'"))
}

fn find_all<'r>(all: &'r [Recorded<'_>], header: &str) -> Vec<&'r Recorded<'r>> {
    all.iter()
        .filter(|r| r.header.starts_with(header))
        .collect()
}

/// Decodes with the generated type, re-encodes, and checks that the result
/// still equals what the transcript says: nothing lost, nothing renumbered.
fn round_trip<M: Message + Default>(r: &Recorded<'_>) -> M {
    let typed = M::decode(r.bytes.as_slice())
        .unwrap_or_else(|e| panic!("section '{}' does not decode: {e}", r.header));
    let again = DynamicMessage::decode(r.descriptor.clone(), typed.encode_to_vec().as_slice())
        .unwrap_or_else(|e| panic!("section '{}' re-encoding does not decode: {e}", r.header));
    assert_eq!(
        again, r.parsed,
        "section '{}' changed in a round trip through the generated type",
        r.header
    );
    typed
}

fn scheduler_call(r: &Recorded<'_>) -> scheduler::Call {
    round_trip(r)
}

fn scheduler_event(r: &Recorded<'_>) -> scheduler::Event {
    round_trip(r)
}

fn executor_call(r: &Recorded<'_>) -> executor::Call {
    round_trip(r)
}

fn executor_event(r: &Recorded<'_>) -> executor::Event {
    round_trip(r)
}

#[test]
fn every_recorded_message_survives_a_round_trip_through_our_types() {
    let pool = descriptor_pool();
    let scheduler_side = recorded(&pool, SCHEDULER_SESSION);
    let executor_side = recorded(&pool, EXECUTOR_SESSION);
    // 11 calls and 11 events on the scheduler side, 4 calls and 4 events on
    // the executor side.
    assert_eq!(scheduler_side.len(), 22, "scheduler sections found");
    assert_eq!(executor_side.len(), 8, "executor sections found");
    for r in scheduler_side.iter().chain(&executor_side) {
        match r.descriptor.full_name() {
            "mesos.v1.scheduler.Call" => drop(scheduler_call(r)),
            "mesos.v1.scheduler.Event" => drop(scheduler_event(r)),
            "mesos.v1.executor.Call" => drop(executor_call(r)),
            "mesos.v1.executor.Event" => drop(executor_event(r)),
            other => panic!("unexpected message {other}"),
        }
    }
}

#[test]
fn subscribe_declares_partition_aware_and_task_killing_state() {
    let all = recorded(&descriptor_pool(), SCHEDULER_SESSION);
    let call = scheduler_call(find(&all, "scheduler -> SUBSCRIBE"));
    assert_eq!(call.r#type, Some(scheduler::call::Type::Subscribe as i32));
    assert_eq!(call.framework_id, None);
    let info = call.subscribe.expect("subscribe field").framework_info;
    assert_eq!(info.user, "root");
    assert_eq!(info.name, "transcript");
    assert_eq!(info.failover_timeout, Some(3600.0));
    assert_eq!(info.checkpoint, Some(true));
    let capabilities: Vec<Option<i32>> = info.capabilities.iter().map(|c| c.r#type).collect();
    use v1::framework_info::capability::Type;
    assert_eq!(
        capabilities,
        [
            Some(Type::PartitionAware as i32),
            Some(Type::TaskKillingState as i32)
        ]
    );
}

#[test]
fn subscribed_carries_the_heartbeat_interval_and_master_info() {
    let all = recorded(&descriptor_pool(), SCHEDULER_SESSION);
    let event = scheduler_event(find(&all, "master event SUBSCRIBED"));
    let subscribed = event.subscribed.expect("subscribed field");
    assert_eq!(
        subscribed.framework_id.value,
        "794979ca-5ee7-4fc5-9ea8-83abc3d67026-0000"
    );
    assert_eq!(subscribed.heartbeat_interval_seconds, Some(15.0));
    let master = subscribed.master_info.expect("master_info");
    assert_eq!(master.ip, 16_777_343, "127.0.0.1 packed in network order");
    assert_eq!(master.port, 43551);
    let address = master.address.expect("address");
    assert_eq!(address.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(address.port, 43551);
    assert_eq!(master.capabilities.len(), 3);
}

#[test]
// `Resource.role` is deprecated in Mesos, yet it is what a framework without
// RESERVATION_REFINEMENT receives.
#[allow(deprecated)]
fn offers_use_the_pre_refinement_role_star_and_no_allocation_info() {
    let all = recorded(&descriptor_pool(), SCHEDULER_SESSION);
    let offer_events = find_all(&all, "master event OFFERS");
    assert_eq!(offer_events.len(), 2);
    for r in offer_events {
        let offers = scheduler_event(r).offers.expect("offers field").offers;
        assert_eq!(offers.len(), 1);
        let offer = &offers[0];
        assert_eq!(offer.hostname, "127.0.0.1");
        assert_eq!(offer.allocation_info, None);
        let names: Vec<&str> = offer.resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["ports", "cpus", "mem", "disk"]);
        for resource in &offer.resources {
            assert_eq!(resource.role.as_deref(), Some("*"), "{}", resource.name);
            assert_eq!(resource.allocation_info, None, "{}", resource.name);
            assert!(resource.reservations.is_empty(), "{}", resource.name);
        }
        let ports = offer.resources[0].ranges.as_ref().expect("ports ranges");
        assert_eq!((ports.range[0].begin, ports.range[0].end), (31000, 31100));
        let mem = offer.resources[2].scalar.as_ref().expect("mem scalar");
        assert_eq!(mem.value, 1024.0);
        let rack = &offer.attributes[0];
        assert_eq!(rack.name, "rack");
        assert_eq!(rack.r#type, v1::value::Type::Text as i32);
        assert_eq!(rack.text.as_ref().map(|t| t.value.as_str()), Some("r1"));
        let url = offer.url.as_ref().expect("url");
        assert_eq!(url.address.port, 57381);
        assert_eq!(url.path.as_deref(), Some("/slave(1)"));
    }
}

#[test]
fn accept_launches_a_task_with_a_custom_executor_fetched_over_http() {
    let all = recorded(&descriptor_pool(), SCHEDULER_SESSION);
    let accepts = find_all(&all, "scheduler -> ACCEPT");
    let call = scheduler_call(
        accepts
            .iter()
            .find(|r| r.header == "scheduler -> ACCEPT")
            .expect("the real ACCEPT"),
    );
    let accept = call.accept.expect("accept field");
    assert_eq!(
        accept.filters.and_then(|f| f.refuse_seconds),
        Some(5.0),
        "refuse_seconds"
    );
    let operation = &accept.operations[0];
    assert_eq!(
        operation.r#type,
        Some(v1::offer::operation::Type::Launch as i32)
    );
    let task = &operation.launch.as_ref().expect("launch").task_infos[0];
    assert_eq!(task.name, "transcript-task");
    assert_eq!(task.data.as_deref(), Some(&b"{\"version\": 1}"[..]));
    for resource in &task.resources {
        assert_eq!(
            resource
                .allocation_info
                .as_ref()
                .and_then(|a| a.role.as_deref()),
            Some("*")
        );
    }
    let executor = task.executor.as_ref().expect("executor");
    assert_eq!(
        executor.r#type,
        Some(v1::executor_info::Type::Custom as i32)
    );
    assert_eq!(executor.executor_id.value, "mmm-1-exec");
    let command = executor.command.as_ref().expect("command");
    assert_eq!(command.value.as_deref(), Some("./recording-executor"));
    let uri = &command.uris[0];
    assert_eq!(uri.value, "http://127.0.0.1:39661/recording-executor");
    assert_eq!(uri.executable, Some(true));
    assert_eq!(uri.extract, Some(false));
}

#[test]
fn update_uuid_bytes_are_the_ones_acknowledged() {
    let all = recorded(&descriptor_pool(), SCHEDULER_SESSION);
    let update = scheduler_event(find(&all, "master event UPDATE"));
    let status = update.update.expect("update field").status;
    assert_eq!(status.state, v1::TaskState::TaskRunning as i32);
    assert_eq!(
        status.source,
        Some(v1::task_status::Source::Executor as i32)
    );
    assert_eq!(status.uuid.as_deref(), Some(&RUNNING_UUID[..]));
    let container = status.container_status.expect("container_status");
    assert_eq!(container.executor_pid, Some(4406));
    assert_eq!(
        container.network_infos[0].ip_addresses[0]
            .ip_address
            .as_deref(),
        Some("127.0.0.1")
    );

    let ack = scheduler_call(find(&all, "scheduler -> ACKNOWLEDGE"));
    let ack = ack.acknowledge.expect("acknowledge field");
    assert_eq!(ack.uuid.as_ref(), &RUNNING_UUID[..]);
    assert_eq!(ack.task_id, status.task_id);
}

#[test]
fn reconciliation_answers_come_from_the_master_without_uuid() {
    let all = recorded(&descriptor_pool(), SCHEDULER_SESSION);
    let implicit = scheduler_call(find(&all, "scheduler -> RECONCILE (implicit"));
    assert_eq!(
        implicit.reconcile.map(|r| r.tasks.len()),
        Some(0),
        "implicit reconciliation is an empty, present field"
    );
    let answers: Vec<v1::TaskStatus> = find_all(&all, "master event UPDATE")
        .into_iter()
        .map(|r| scheduler_event(r).update.expect("update field").status)
        .filter(|s| s.reason == Some(v1::task_status::Reason::Reconciliation as i32))
        .collect();
    assert_eq!(answers.len(), 2, "explicit and implicit answers");
    for status in answers {
        assert_eq!(status.source, Some(v1::task_status::Source::Master as i32));
        assert_eq!(status.uuid, None);
        assert_eq!(status.state, v1::TaskState::TaskRunning as i32);
    }
}

#[test]
fn failure_names_the_agent_and_executor() {
    let all = recorded(&descriptor_pool(), SCHEDULER_SESSION);
    let failure = scheduler_event(find(&all, "master event FAILURE"))
        .failure
        .expect("failure field");
    assert_eq!(
        failure.executor_id.map(|e| e.value).as_deref(),
        Some("mmm-1-exec")
    );
    assert!(failure.agent_id.is_some());
    assert_eq!(failure.status, Some(0));
}

#[test]
fn executor_session_decodes_with_container_id_and_acknowledged_uuid() {
    let all = recorded(&descriptor_pool(), EXECUTOR_SESSION);

    let subscribe = executor_call(find(&all, "executor -> SUBSCRIBE"));
    assert_eq!(subscribe.executor_id.value, "mmm-1-exec");
    assert_eq!(
        subscribe.subscribe.map(|s| s.unacknowledged_tasks.len()),
        Some(0)
    );

    let subscribed = executor_event(find(&all, "agent event SUBSCRIBED"))
        .subscribed
        .expect("subscribed field");
    assert_eq!(
        subscribed.container_id.map(|c| c.value).as_deref(),
        Some("c9255bf6-824a-4afc-b5c5-6e8e641eb24e")
    );
    assert_eq!(subscribed.agent_info.port, Some(57381));
    assert_eq!(subscribed.agent_info.resources.len(), 4);
    assert_eq!(
        subscribed.executor_info.r#type,
        Some(v1::executor_info::Type::Custom as i32)
    );

    let launch = executor_event(find(&all, "agent event LAUNCH"))
        .launch
        .expect("launch field");
    assert_eq!(launch.task.data.as_deref(), Some(&b"{\"version\": 1}"[..]));

    let update = executor_call(find(&all, "executor -> UPDATE"))
        .update
        .expect("update field");
    assert_eq!(update.status.uuid.as_deref(), Some(&RUNNING_UUID[..]));

    let acknowledged = executor_event(find(&all, "agent event ACKNOWLEDGED"))
        .acknowledged
        .expect("acknowledged field");
    assert_eq!(acknowledged.uuid.as_ref(), &RUNNING_UUID[..]);

    let message = executor_call(find(&all, "executor -> MESSAGE"))
        .message
        .expect("message field");
    assert_eq!(message.data.as_ref(), b"{\"records_per_s\": 0}");

    let kill = executor_event(find(&all, "agent event KILL"));
    assert_eq!(kill.r#type, Some(executor::event::Type::Kill as i32));
    assert_eq!(
        kill.kill.expect("kill field").task_id.value,
        "mmm-1-0b20732e-fe10-46b5-9c25-c8aaa2e6bc24"
    );
}
