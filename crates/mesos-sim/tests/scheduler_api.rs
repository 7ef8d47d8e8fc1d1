//! The scheduler API's status codes, texts and stream, call by call.

mod common;

use common::{framework_info, post_raw, Scheduler};
use mesos_proto::v1::framework_info::capability::Type as Cap;
use mesos_proto::v1::scheduler::{self as sched, call, event::Type as Ev};
use mesos_proto::{calls, Message, CONTENT_TYPE_PROTOBUF, STREAM_ID_HEADER};
use mesos_sim::{MesosSim, SimConfig};

#[tokio::test]
async fn subscribe_streams_subscribed_then_heartbeats() {
    let sim = common::start(1).await;
    let mut s = Scheduler::subscribe(&sim.master_url(), framework_info(&[])).await;
    assert_eq!(s.stream_id.len(), 36, "stream id is a uuid");
    let master = s.subscribed.master_info.clone().expect("master_info");
    let master_id = master.id.clone();
    assert_eq!(s.framework_id.value, format!("{master_id}-0000"));
    assert_eq!(s.subscribed.heartbeat_interval_seconds, Some(1.0));
    assert_eq!(master.ip, 16_777_343);
    assert_eq!(master.port, u32::from(sim.master_addr().port()));
    assert_eq!(
        master.pid,
        Some(format!("master@127.0.0.1:{}", sim.master_addr().port()))
    );
    assert_eq!(master.hostname.as_deref(), Some("127.0.0.1"));
    assert_eq!(master.capabilities.len(), 3);
    s.expect("HEARTBEAT", |e| e.r#type == Some(Ev::Heartbeat as i32))
        .await;
    // A second framework gets the next id.
    let s2 = Scheduler::subscribe(&sim.master_url(), framework_info(&[])).await;
    assert_eq!(s2.framework_id.value, format!("{master_id}-0001"));
    sim.shutdown().await;
}

#[tokio::test]
async fn the_master_path_of_the_native_client_works_too() {
    let sim = common::start(1).await;
    let url = format!("{}/master/api/v1/scheduler", sim.master_url());
    let s = Scheduler::subscribe_at(&url, framework_info(&[])).await;
    s.call_ok(calls::revive(&s.framework_id)).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn transport_errors_use_mesos_codes_and_texts() {
    let sim = common::start(1).await;
    let url = format!("{}/api/v1/scheduler", sim.master_url());
    let get = common::get(&url).await;
    assert_eq!(get.status, 405);
    assert_eq!(get.body, "Expecting one of { 'POST' }, but received 'GET'");
    assert_eq!(
        get.headers.get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );

    let body = calls::subscribe(framework_info(&[])).encode_to_vec();
    let no_ct = post_raw(&url, None, &[], body.clone()).await;
    assert_eq!(
        (no_ct.status, no_ct.body.as_str()),
        (400, "Expecting 'Content-Type' to be present")
    );

    let text = post_raw(&url, Some("text/plain"), &[], b"hello".to_vec()).await;
    assert_eq!(
        (text.status, text.body.as_str()),
        (
            415,
            "Expecting 'Content-Type' of application/json or application/x-protobuf"
        )
    );

    let garbage = post_raw(
        &url,
        Some(CONTENT_TYPE_PROTOBUF),
        &[],
        vec![0xff, 0xff, 0xff],
    )
    .await;
    assert_eq!(
        (garbage.status, garbage.body.as_str()),
        (400, "Failed to parse body into Call protobuf")
    );

    // SUBSCRIBE whose FrameworkInfo lacks the required `name`: the C++
    // parser Mesos uses refuses it.
    let no_name = vec![0x10, 0x01, 0x1a, 0x05, 0x0a, 0x03, 0x0a, 0x01, b'u'];
    let a = post_raw(&url, Some(CONTENT_TYPE_PROTOBUF), &[], no_name).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (400, "Failed to parse body into Call protobuf")
    );

    let json = post_raw(&url, Some("application/json"), &[], b"{}".to_vec()).await;
    assert_eq!(json.status, 415, "JSON is refused: {}", json.body);
    assert!(json.body.contains("application/json"), "{}", json.body);

    let with_stream = post_raw(
        &url,
        Some(CONTENT_TYPE_PROTOBUF),
        &[(STREAM_ID_HEADER, "x")],
        body.clone(),
    )
    .await;
    assert_eq!(
        (with_stream.status, with_stream.body.as_str()),
        (
            400,
            "Subscribe calls should not include the 'Mesos-Stream-Id' header"
        )
    );
    let json_only = post_raw(
        &url,
        Some(CONTENT_TYPE_PROTOBUF),
        &[("Accept", "text/html")],
        body,
    )
    .await;
    assert_eq!(json_only.status, 406);
    sim.shutdown().await;
}

/// Every call type without its matching field is refused with the field's name.
#[tokio::test]
async fn each_call_type_needs_its_field() {
    let sim = common::start(1).await;
    let s = Scheduler::subscribe(&sim.master_url(), framework_info(&[])).await;
    let cases = [
        (call::Type::Accept, "accept"),
        (call::Type::Decline, "decline"),
        (call::Type::Kill, "kill"),
        (call::Type::Shutdown, "shutdown"),
        (call::Type::Acknowledge, "acknowledge"),
        (call::Type::Reconcile, "reconcile"),
        (call::Type::Message, "message"),
        (call::Type::Request, "request"),
        (call::Type::AcceptInverseOffers, "accept_inverse_offers"),
        (call::Type::DeclineInverseOffers, "decline_inverse_offers"),
    ];
    for (kind, field) in cases {
        let c = sched::Call {
            framework_id: Some(s.framework_id.clone()),
            r#type: Some(kind as i32),
            ..sched::Call::default()
        };
        let a = s.call(c).await;
        assert_eq!(a.status, 400, "{kind:?}");
        assert_eq!(
            a.body,
            format!("Failed to validate scheduler::Call: Expecting '{field}' to be present")
        );
    }
    let no_type = s
        .call(sched::Call {
            framework_id: Some(s.framework_id.clone()),
            ..Default::default()
        })
        .await;
    assert_eq!(
        no_type.body,
        "Failed to validate scheduler::Call: Expecting 'type' to be present"
    );
    let no_fw = s
        .call(sched::Call {
            r#type: Some(call::Type::Revive as i32),
            ..Default::default()
        })
        .await;
    assert_eq!(
        no_fw.body,
        "Failed to validate scheduler::Call: Expecting 'framework_id' to be present"
    );
    let mut sub = calls::subscribe(framework_info(&[]));
    sub.framework_id = Some(mesos_proto::ids::framework_id("elsewhere"));
    let a = post_raw(
        &s.url,
        Some(CONTENT_TYPE_PROTOBUF),
        &[],
        sub.encode_to_vec(),
    )
    .await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (400, "Failed to validate scheduler::Call: 'framework_id' differs from 'subscribe.framework_info.id'")
    );
    let bad_uuid = calls::acknowledge(
        &s.framework_id,
        mesos_proto::ids::agent_id("a"),
        mesos_proto::ids::task_id("t"),
        bytes::Bytes::from_static(b"short"),
    );
    let a = s.call(bad_uuid).await;
    assert_eq!(a.status, 400);
    assert!(
        a.body
            .starts_with("Failed to validate scheduler::Call: Not a valid UUID"),
        "{}",
        a.body
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn stream_id_and_framework_checks() {
    let sim = common::start(1).await;
    let s = Scheduler::subscribe(&sim.master_url(), framework_info(&[])).await;
    let revive = calls::revive(&s.framework_id).encode_to_vec();
    let missing = post_raw(&s.url, Some(CONTENT_TYPE_PROTOBUF), &[], revive.clone()).await;
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (
            400,
            "All non-subscribe calls should include the 'Mesos-Stream-Id' header"
        )
    );
    let wrong = post_raw(
        &s.url,
        Some(CONTENT_TYPE_PROTOBUF),
        &[(STREAM_ID_HEADER, "nope")],
        revive,
    )
    .await;
    assert_eq!(wrong.status, 400);
    assert!(
        wrong
            .body
            .starts_with("The stream ID 'nope' included in this request didn't match"),
        "{}",
        wrong.body
    );
    let other = s
        .call(calls::revive(&mesos_proto::ids::framework_id(
            "other-framework",
        )))
        .await;
    assert_eq!(
        (other.status, other.body.as_str()),
        (400, "Framework cannot be found")
    );
    s.call_ok(calls::revive(&s.framework_id)).await;

    // After a master restart the framework exists but is not subscribed.
    sim.restart_master();
    let a = s.call(calls::revive(&s.framework_id)).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (403, "Framework is not subscribed")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_non_leading_master_redirects_with_a_protocol_relative_location() {
    let sim = MesosSim::start(SimConfig {
        redirect_to_leader: Some("10.0.0.7:5050".into()),
        ..SimConfig::with_agents(1).fast()
    })
    .await
    .expect("starts");
    for path in ["/api/v1/scheduler", "/master/api/v1/scheduler"] {
        let a = post_raw(
            &format!("{}{path}", sim.master_url()),
            Some(CONTENT_TYPE_PROTOBUF),
            &[],
            calls::subscribe(framework_info(&[])).encode_to_vec(),
        )
        .await;
        assert_eq!(a.status, 307);
        assert_eq!(
            a.headers.get("location").and_then(|v| v.to_str().ok()),
            Some(format!("//10.0.0.7:5050{path}").as_str())
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn failover_keeps_the_framework_and_errors_the_old_stream() {
    let sim = common::start(1).await;
    let mut old =
        Scheduler::subscribe(&sim.master_url(), framework_info(&[Cap::PartitionAware])).await;
    let mut info = framework_info(&[Cap::PartitionAware]);
    info.id = Some(old.framework_id.clone());
    let new = Scheduler::subscribe(&sim.master_url(), info).await;
    assert_eq!(new.framework_id, old.framework_id);
    assert_ne!(new.stream_id, old.stream_id);
    let seen = old.until_closed().await;
    let error = seen
        .iter()
        .find(|e| e.r#type == Some(Ev::Error as i32))
        .expect("old stream got ERROR");
    assert_eq!(
        error.error.as_ref().map(|e| e.message.as_str()),
        Some("Framework failed over")
    );
    // The old stream id is no longer valid.
    let a = old.call(calls::revive(&old.framework_id)).await;
    assert_eq!(a.status, 400);
    new.call_ok(calls::revive(&new.framework_id)).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn teardown_removes_the_framework_for_good() {
    let sim = common::start(1).await;
    let mut s = Scheduler::subscribe(&sim.master_url(), framework_info(&[])).await;
    s.call_ok(calls::teardown(&s.framework_id)).await;
    s.until_closed().await;
    let a = s.call(calls::revive(&s.framework_id)).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (400, "Framework cannot be found")
    );
    assert!(sim
        .snapshot()
        .removed_frameworks
        .contains(&s.framework_id.value));
    // Re-subscribing with the removed id gets ERROR and a closed stream.
    let mut info = framework_info(&[]);
    info.id = Some(s.framework_id.clone());
    assert_eq!(refused(&s.url, info).await, "Framework has been removed");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_framework_gone_past_its_failover_timeout_is_removed() {
    let sim = common::start(1).await;
    let mut info = framework_info(&[]);
    info.failover_timeout = Some(0.2);
    let mut s = Scheduler::subscribe(&sim.master_url(), info).await;
    let id = s.framework_id.value.clone();
    let offer = s.offer().await;
    let task_id = common::unique("task");
    let task = common::silent_executor_task(&offer, &task_id, &common::unique("exec"));
    s.call_ok(calls::accept_launch(
        &s.framework_id,
        offer.id.clone(),
        vec![task],
        5.0,
    ))
    .await;
    sim.wait_for("executor process", common::WAIT, |snap| {
        snap.sandboxes.first().and_then(|b| b.pid)
    })
    .await
    .expect("started");
    drop(s);
    sim.wait_for("framework removal", common::WAIT, |snap| {
        snap.removed_frameworks.contains(&id).then_some(())
    })
    .await
    .expect("removed after its failover timeout");
    // Its task is killed and its executor shut down (SIGKILL after the grace period).
    let task = sim.task(&task_id).expect("task");
    assert_eq!((task.state.as_str(), task.live), ("TASK_KILLED", false));
    let status = sim
        .wait_for("executor gone", common::WAIT, |snap| {
            snap.sandboxes.first().and_then(|b| b.exit_status)
        })
        .await
        .expect("executor stopped");
    assert_eq!(status, 9, "SIGKILLed");
    sim.shutdown().await;
}

#[tokio::test]
async fn delayed_heartbeats_stop_then_resume() {
    let sim = common::start(1).await;
    let mut s = Scheduler::subscribe(&sim.master_url(), framework_info(&[])).await;
    s.expect("first HEARTBEAT", |e| {
        e.r#type == Some(Ev::Heartbeat as i32)
    })
    .await;
    sim.delay_heartbeats(std::time::Duration::from_secs(4));
    // A heartbeat sent just before the pause may still be on the wire.
    s.sees_within(std::time::Duration::from_millis(300), |_| false)
        .await;
    s.clear_backlog();
    let early = s
        .sees_within(std::time::Duration::from_millis(3000), |e| {
            e.r#type == Some(Ev::Heartbeat as i32)
        })
        .await;
    assert!(!early, "no heartbeat while delayed");
    s.expect("HEARTBEAT after the delay", |e| {
        e.r#type == Some(Ev::Heartbeat as i32)
    })
    .await;
    sim.shutdown().await;
}

/// SUBSCRIBE that the master refuses: 200, one ERROR event, end of stream.
async fn refused(url: &str, info: mesos_proto::v1::FrameworkInfo) -> String {
    let r = reqwest::Client::new()
        .post(url)
        .header("Content-Type", CONTENT_TYPE_PROTOBUF)
        .body(calls::subscribe(info).encode_to_vec())
        .send()
        .await
        .expect("reaches master");
    assert_eq!(r.status().as_u16(), 200);
    let body = r.bytes().await.expect("stream ends");
    let mut d = mesos_proto::recordio::Decoder::default();
    d.feed(&body);
    let event = sched::Event::decode(d.next_record().expect("record").expect("one event"))
        .expect("decodes");
    assert_eq!(d.next_record(), Ok(None), "nothing after the ERROR");
    assert_eq!(event.r#type, Some(Ev::Error as i32));
    event.error.expect("error").message
}

#[tokio::test]
async fn invalid_framework_infos_are_refused_with_error() {
    let sim = common::start(1).await;
    let url = format!("{}/api/v1/scheduler", sim.master_url());
    let mut roles_without_multi_role = framework_info(&[]);
    roles_without_multi_role.roles = vec!["a".into()];
    assert_eq!(
        refused(&url, roles_without_multi_role).await,
        "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"
    );
    let mut role_with_multi_role = framework_info(&[Cap::MultiRole]);
    #[allow(deprecated)]
    {
        role_with_multi_role.role = Some("a".into());
    }
    assert_eq!(
        refused(&url, role_with_multi_role).await,
        "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable"
    );
    let mut duplicate = framework_info(&[Cap::MultiRole]);
    duplicate.roles = vec!["a".into(), "a".into()];
    assert!(refused(&url, duplicate)
        .await
        .starts_with("'FrameworkInfo.roles' contains duplicate items"));
    let mut empty_role = framework_info(&[]);
    #[allow(deprecated)]
    {
        empty_role.role = Some(String::new());
    }
    assert!(refused(&url, empty_role)
        .await
        .starts_with("'FrameworkInfo.role' is not a valid role"));
    let mut timeout = framework_info(&[]);
    timeout.failover_timeout = Some(f64::INFINITY);
    assert_eq!(
        refused(&url, timeout).await,
        "The framework failover_timeout (inf) is invalid"
    );
    assert!(sim.snapshot().frameworks.is_empty(), "nothing registered");
    sim.shutdown().await;
}
