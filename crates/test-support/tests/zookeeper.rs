//! A real ZooKeeper server from Debian's package.

use mmm_test_support::ZooKeeperServer;
use zookeeper_client as zk;

fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn zookeeper_answers_four_letter_commands_and_clients() {
    let server = ZooKeeperServer::start().expect("zookeeper starts");
    assert_eq!(server.four_letter("ruok").expect("ruok"), "imok");
    let srvr = server.four_letter("srvr").expect("srvr");
    assert!(srvr.contains("Mode: standalone"), "{srvr}");

    let client = zk::Client::connect(&server.connect_string())
        .await
        .expect("client connects");
    let path = format!("/{}", mmm_test_support::random_name("znode"));
    client
        .create(
            &path,
            b"state",
            &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
        )
        .await
        .expect("znode created");
    let (data, _) = client.get_data(&path).await.expect("znode read");
    assert_eq!(data, b"state");

    let err = server
        .four_letter("bogus!")
        .expect_err("not a four-letter command");
    assert!(err.to_string().contains("bogus!"), "{err}");
}

#[test]
fn dropping_zookeeper_leaves_no_process() {
    let server = ZooKeeperServer::start().expect("zookeeper starts");
    let pid = server.pid();
    assert!(process_exists(pid));
    drop(server);
    assert!(
        !process_exists(pid),
        "zookeeper process {pid} survived drop"
    );
}
