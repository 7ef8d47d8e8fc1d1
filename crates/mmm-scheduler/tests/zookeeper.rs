//! `zk://` master detection (with a leader change) and `zk://` state
//! storage against a real ZooKeeper.

mod common;

use common::{wait_until, Scheduler, WAIT};
use mesos_sim::{MesosSim, SimConfig};
use mmm_test_support::ZooKeeperServer;
use zookeeper_client as zk;

fn master_info_json(sim: &MesosSim) -> String {
    let addr = sim.master_addr();
    serde_json::json!({
        "id": format!("master-{}", addr.port()),
        "hostname": "localhost",
        "ip": 16_777_343u32,
        "port": addr.port(),
        "pid": format!("master@{addr}"),
        "address": {"hostname": "localhost", "ip": addr.ip().to_string(), "port": addr.port()},
        "version": "1.11.0"
    })
    .to_string()
}

async fn announce(client: &zk::Client, sim: &MesosSim) -> String {
    let ephemeral = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
    let (_, seq) = client
        .create(
            "/mesos/json.info_",
            master_info_json(sim).as_bytes(),
            &ephemeral,
        )
        .await
        .expect("announce a master");
    format!("/mesos/json.info_{seq}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_the_leader_in_zookeeper_and_stores_state_there() {
    let zk_server = tokio::task::spawn_blocking(ZooKeeperServer::start)
        .await
        .expect("join")
        .expect("ZooKeeper starts");
    let hosts = zk_server.connect_string();
    let client = zk::Client::connect(&hosts).await.expect("zk client");
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    client
        .mkdir("/mesos", &persistent)
        .await
        .expect("mkdir /mesos");

    let first = MesosSim::start(SimConfig::with_agents(1).fast())
        .await
        .expect("sim 1");
    let second = MesosSim::start(SimConfig::with_agents(1).fast())
        .await
        .expect("sim 2");
    let first_node = announce(&client, &first).await;

    let mut s = Scheduler::new(&format!("zk://{hosts}/mesos"), "");
    // State in ZooKeeper too.
    let toml = std::fs::read_to_string(s.path("mmm.toml")).expect("read config");
    let toml = toml.replace(
        &format!("path = \"{}\"", s.path("state/mmm-state.json").display()),
        &format!("path = \"zk://{hosts}/mmm/state\""),
    );
    std::fs::write(s.path("mmm.toml"), toml).expect("write config");

    s.start().await;
    let framework_id = s.wait_subscribed().await;
    assert!(
        first
            .snapshot()
            .frameworks
            .iter()
            .any(|f| f.id == framework_id && f.connected),
        "subscribed to the leader named in ZooKeeper"
    );
    let (_, health) = s.get_json("/health").await;
    assert_eq!(
        health["value"]["subscription"]["master"],
        format!("{}/", first.master_url()),
        "{health}"
    );
    // The state lives in the znode, with the framework id.
    wait_until("the state znode to hold the framework id", WAIT, || async {
        let (data, _) = client.get_data("/mmm/state").await.ok()?;
        let state: serde_json::Value = serde_json::from_slice(&data).ok()?;
        (state["framework_id"] == framework_id.as_str()).then_some(())
    })
    .await;
    // Its lock is held while the scheduler runs.
    assert!(client
        .check_stat("/mmm/state/lock")
        .await
        .expect("stat")
        .is_some());

    // Leader change: the first master goes away, a second one is elected.
    client
        .delete(&first_node, None)
        .await
        .expect("withdraw the first master");
    announce(&client, &second).await;
    wait_until("the scheduler to follow the new leader", WAIT, || async {
        second
            .snapshot()
            .frameworks
            .iter()
            .any(|f| f.connected)
            .then_some(())
    })
    .await;
    let (_, health) = s.get_json("/health").await;
    assert_eq!(
        health["value"]["subscription"]["master"],
        format!("{}/", second.master_url()),
        "{health}"
    );
    assert!(
        first.snapshot().frameworks.iter().all(|f| !f.connected),
        "the old leader's stream was dropped"
    );
    drop(s);
    first.shutdown().await;
    second.shutdown().await;
    drop(zk_server);
}
