//! The state in ZooKeeper with digest authentication: the state znode and
//! its lock are readable and writable by the scheduler's identity only.

use mmm_scheduler::store::Store;
use mmm_test_support::ZooKeeperServer;
use zookeeper_client as zk;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_and_lock_are_creator_only_with_digest_auth() {
    let zk_server = tokio::task::spawn_blocking(ZooKeeperServer::start)
        .await
        .expect("join")
        .expect("ZooKeeper starts");
    let hosts = zk_server.connect_string();
    let spec = mmm_core::config::StorageSpec::ZooKeeper {
        hosts: vec![hosts.clone()],
        path: "/mmm-acl/state".into(),
    };
    let mut store = Store::open_spec(&spec, Some("mmm:s3cret-digest"))
        .await
        .expect("store with auth");
    store
        .save(br#"{"version":1,"servers":[]}"#.to_vec())
        .await
        .expect("save");

    let anonymous = zk::Client::connect(&hosts).await.expect("anonymous client");
    let stranger = zk::Client::connector()
        .with_auth("digest", b"someone:else")
        .connect(&hosts)
        .await
        .expect("stranger client");
    for client in [&anonymous, &stranger] {
        for path in ["/mmm-acl/state", "/mmm-acl/state/lock"] {
            assert!(
                matches!(client.get_data(path).await, Err(zk::Error::NoAuth)),
                "{path} is readable without the scheduler's credentials"
            );
        }
        assert!(
            matches!(
                client.set_data("/mmm-acl/state", b"tampered", None).await,
                Err(zk::Error::NoAuth)
            ),
            "the state is writable without the scheduler's credentials"
        );
        assert!(matches!(
            client.delete("/mmm-acl/state/lock", None).await,
            Err(zk::Error::NoAuth)
        ));
    }
    let owner = zk::Client::connector()
        .with_auth("digest", b"mmm:s3cret-digest")
        .connect(&hosts)
        .await
        .expect("owner client");
    let (data, _) = owner.get_data("/mmm-acl/state").await.expect("owner reads");
    assert_eq!(data, br#"{"version":1,"servers":[]}"#);
    assert_eq!(
        store.load().await.expect("load"),
        Some(br#"{"version":1,"servers":[]}"#.to_vec())
    );
}
