//! HTTP Basic authentication of frameworks and the roles whitelist, as a
//! Mesos master with `--authenticate_http_frameworks`, `--credentials` and
//! `--roles` answers them.

mod common;

use common::{framework_info, post_raw};
use mesos_proto::v1::framework_info::capability::Type as Cap;
use mesos_proto::v1::scheduler::event::Type as Ev;
use mesos_proto::v1::{scheduler as sched, FrameworkInfo};
use mesos_proto::{calls, recordio, Message, CONTENT_TYPE_PROTOBUF};
use mesos_sim::{MesosSim, SimConfig};

async fn sim(config: SimConfig) -> MesosSim {
    MesosSim::start(config).await.expect("mesos-sim starts")
}

async fn subscribe(sim: &MesosSim, info: FrameworkInfo, auth: Option<&str>) -> common::Answer {
    let mut headers = vec![("Accept", CONTENT_TYPE_PROTOBUF)];
    let value;
    if let Some(a) = auth {
        value = a.to_owned();
        headers.push(("Authorization", value.as_str()));
    }
    post_raw(
        &format!("{}/api/v1/scheduler", sim.master_url()),
        Some(CONTENT_TYPE_PROTOBUF),
        &headers,
        calls::subscribe(info).encode_to_vec(),
    )
    .await
}

// base64("mmm:s3cret") and base64("mmm:wrong")
const GOOD: &str = "Basic bW1tOnMzY3JldA==";
const WRONG: &str = "Basic bW1tOndyb25n";

#[tokio::test]
async fn calls_need_valid_credentials_and_a_matching_principal() {
    let sim = sim(SimConfig {
        framework_credentials: vec![("mmm".into(), "s3cret".into())],
        ..SimConfig::with_agents(1).fast()
    })
    .await;
    let info = framework_info(&[Cap::PartitionAware]);
    for auth in [None, Some(WRONG), Some("Bearer x"), Some("Basic !!")] {
        let answer = subscribe(&sim, info.clone(), auth).await;
        assert_eq!(answer.status, 401, "{auth:?}: {}", answer.body);
        assert_eq!(answer.body, "");
        assert_eq!(
            answer
                .headers
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Basic realm=\"mesos-master-scheduler\"")
        );
    }
    let other = FrameworkInfo {
        principal: Some("someone-else".into()),
        ..info.clone()
    };
    let answer = subscribe(&sim, other, Some(GOOD)).await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.body,
        "Failed to validate scheduler::Call: Authenticated principal 'mmm' does not match principal 'someone-else' set in `FrameworkInfo`"
    );
    // Right credentials: the stream opens (its body is never read to the end).
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/api/v1/scheduler", sim.master_url()))
        .header("Content-Type", CONTENT_TYPE_PROTOBUF)
        .header("Authorization", GOOD)
        .body(calls::subscribe(info).encode_to_vec())
        .send()
        .await
        .expect("SUBSCRIBE");
    assert_eq!(response.status().as_u16(), 200);
    let mut response = response;
    let mut decoder = recordio::Decoder::default();
    let first = loop {
        let chunk = response.chunk().await.expect("stream").expect("an event");
        decoder.feed(&chunk);
        if let Ok(Some(record)) = decoder.next_record() {
            break sched::Event::decode(record).expect("event");
        }
    };
    assert_eq!(first.r#type, Some(Ev::Subscribed as i32));
    let fw = &sim.snapshot().frameworks[0];
    assert!(fw.connected);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_role_outside_the_whitelist_gets_an_error_event() {
    let sim = sim(SimConfig {
        roles_whitelist: Some(vec!["mirror".into()]),
        ..SimConfig::with_agents(1).fast()
    })
    .await;
    #[allow(deprecated)]
    let info = FrameworkInfo {
        role: Some("web".into()),
        ..framework_info(&[Cap::PartitionAware])
    };
    let answer = subscribe(&sim, info, None).await;
    assert_eq!(answer.status, 200);
    let mut decoder = recordio::Decoder::default();
    decoder.feed(answer.body.as_bytes());
    let record = decoder.next_record().expect("frame").expect("one event");
    let event = sched::Event::decode(record).expect("event");
    assert_eq!(event.r#type, Some(Ev::Error as i32));
    assert_eq!(
        event.error.map(|e| e.message).as_deref(),
        Some("Roles { web } are not present in the master's --roles")
    );
    assert!(sim.snapshot().frameworks.is_empty());
    sim.shutdown().await;
}
