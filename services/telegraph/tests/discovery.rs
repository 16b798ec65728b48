//! A client without a configured manager proxy finds the managers by UDP lookup, and a client
//! whose lookup reaches no manager fails with a clear error.

mod common;

use std::time::Duration;

use common::{Deployment, wait_event};
use telegraph::client::{Client, ClientError, Event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_find_the_managers_by_udp_lookup() {
    let d = Deployment::start(3, false);
    d.wait_leader(&d.all(), Duration::from_secs(10)).await;
    let ports: Vec<String> = d.discovery.values().map(|p| p.to_string()).collect();
    let by_lookup = |name: &str| {
        d.client_config(
            name,
            &[
                ("Telegraph.Managers", String::new()),
                ("Telegraph.Discovery.Hosts", "127.0.0.1".into()),
                ("Telegraph.Discovery.Ports", ports.join(",")),
                ("Telegraph.Discovery.Timeout", "500".into()),
            ],
        )
    };
    let alice = Client::start(by_lookup("alice"), true)
        .await
        .expect("alice finds the managers");
    let bob = Client::start(by_lookup("bob"), true)
        .await
        .expect("bob finds the managers");
    let mut events = bob.events();
    let m = alice.send("bob", "found you").await.expect("send");
    wait_event(
        &mut events,
        Duration::from_secs(10),
        |e| matches!(e, Event::Received(r) if r.id == m.id),
    )
    .await;

    // Nobody listens on these ports: a clear error, not a hang.
    let unused = common::free_udp_port();
    let lost = d.client_config(
        "carol",
        &[
            ("Telegraph.Managers", String::new()),
            ("Telegraph.Discovery.Ports", unused.to_string()),
            ("Telegraph.Discovery.Timeout", "300".into()),
        ],
    );
    match Client::start(lost, true).await {
        Err(ClientError::Managers(e)) => assert!(e.contains("no manager answered"), "{e}"),
        other => panic!("a lookup nobody answered gave {other:?}"),
    }
    alice.shutdown().await;
    bob.shutdown().await;
}
