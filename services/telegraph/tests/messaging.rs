//! Clients talking through a deployment of five managers: messages both ways with delivered
//! and read receipts; ten messages to an offline recipient that comes back on another port
//! (the sender restarting meanwhile); what crosses the wire and what the managers store is
//! unreadable; tampered, forged, replayed and otherwise bad input is refused.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Deployment, dir_contains, eventually, wait_event};
use floe::Proxy;
use telegraph::client::{ClientError, Event};
use telegraph::crypto::{self, Identity};
use telegraph::slice::telegraph::{InboxPrx, inbox, manager};
use telegraph::store::State;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_managers_three_clients_exchange_messages_and_receipts() {
    let d = Deployment::start(5, false);
    d.wait_leader(&d.all(), WAIT).await;
    let alice = d.client("alice", true).await;
    let bob = d.client("bob", true).await;
    let carol = d.client("carol", true).await;

    // Every client sees the others (and their keys) through any manager.
    let users = alice.users().await.expect("users");
    assert_eq!(
        users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
        ["alice", "bob", "carol"]
    );
    for (c, other) in [(&alice, "bob"), (&bob, "carol"), (&carol, "alice")] {
        let info = c.lookup(other).await.expect("lookup");
        assert!(info.online, "{other} is online");
        assert_eq!(info.identity_key.len(), 32);
    }
    match alice.lookup("nobody").await {
        Err(ClientError::Managers(e)) => assert!(e.contains("UnknownUser"), "{e}"),
        other => panic!("an unknown user was found: {other:?}"),
    }

    let (mut alice_events, mut bob_events) = (alice.events(), bob.events());
    let m1 = alice.send("bob", "hello bob").await.expect("send");
    let got = wait_event(
        &mut bob_events,
        WAIT,
        |e| matches!(e, Event::Received(m) if m.id == m1.id),
    )
    .await;
    let Event::Received(got) = got else {
        unreachable!()
    };
    assert_eq!(
        (got.text.as_str(), got.peer.as_str(), got.counter, got.state),
        ("hello bob", "alice", 1, State::Unread)
    );
    wait_event(
        &mut alice_events,
        WAIT,
        |e| matches!(e, Event::Updated(m) if m.id == m1.id && m.state == State::Delivered),
    )
    .await;

    // Bob reads it: alice gets the read receipt.
    assert_eq!(bob.mark_read("alice").await.expect("mark read"), 1);
    wait_event(
        &mut alice_events,
        WAIT,
        |e| matches!(e, Event::Updated(m) if m.id == m1.id && m.state == State::Read),
    )
    .await;

    // The other way, and a third client.
    let m2 = bob.send("alice", "hello alice").await.expect("send");
    wait_event(
        &mut alice_events,
        WAIT,
        |e| matches!(e, Event::Received(m) if m.id == m2.id && m.text == "hello alice"),
    )
    .await;
    let m3 = carol.send("alice", "from carol").await.expect("send");
    wait_event(
        &mut alice_events,
        WAIT,
        |e| matches!(e, Event::Received(m) if m.id == m3.id),
    )
    .await;
    let conversation = alice.store().conversation("bob").expect("conversation");
    assert_eq!(
        conversation
            .iter()
            .map(|m| m.text.as_str())
            .collect::<Vec<_>>(),
        ["hello bob", "hello alice"]
    );

    for c in [alice, bob, carol] {
        c.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_recipient_gets_ten_messages_once_in_order_on_its_new_address() {
    let d = Deployment::start(3, false);
    d.wait_leader(&d.all(), WAIT).await;
    let alice = d.client("alice", true).await;
    let bob = d.client("bob", true).await;
    alice.lookup("bob").await.expect("lookup");
    let old_address = bob.inbox().as_object().to_string();
    bob.stop().await;
    drop(bob);

    let mut sent = Vec::new();
    for i in 1..=10 {
        sent.push(
            alice
                .send("bob", &format!("message {i}"))
                .await
                .expect("send while bob is away")
                .id,
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        alice.outbox_len(),
        10,
        "the messages wait in alice's outbox"
    );
    // The sender restarts too: its outbox is on disk.
    alice.stop().await;
    drop(alice);
    let alice = d.client("alice", false).await;
    let mut alice_events = alice.events();

    // Bob comes back on another port.
    let port = floe_test_support::free_port();
    let bob = telegraph::client::Client::start(
        d.client_config(
            "bob",
            &[(
                "Telegraph.Client.Endpoints",
                format!("tcp -h 127.0.0.1 -p {port}"),
            )],
        ),
        false,
    )
    .await
    .expect("bob again");
    assert_ne!(bob.inbox().as_object().to_string(), old_address);
    eventually(WAIT, "all ten messages delivered", || {
        bob.store()
            .conversation("alice")
            .map(|c| c.len())
            .unwrap_or(0)
            == 10
    })
    .await;
    let got = bob.store().conversation("alice").expect("conversation");
    assert_eq!(
        got.iter().map(|m| m.counter).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<i64>>(),
        "in order, once each"
    );
    assert_eq!(got.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), sent);
    eventually(WAIT, "alice sees them delivered", || {
        alice.store().conversation("bob").is_ok_and(|c| {
            c.iter()
                .all(|m| m.state == State::Delivered || m.state == State::Read)
        })
    })
    .await;
    bob.mark_read("alice").await.expect("read");
    eventually(WAIT, "alice sees all ten read", || {
        alice
            .store()
            .conversation("bob")
            .is_ok_and(|c| c.len() == 10 && c.iter().all(|m| m.state == State::Read))
    })
    .await;
    assert!(
        matches!(
            alice_events.try_recv(),
            Ok(Event::Updated(_)) | Ok(Event::Presence(_))
        ),
        "alice was told of the changes"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        bob.store().conversation("alice").unwrap().len(),
        10,
        "no duplicates arrived later"
    );
    alice.shutdown().await;
    bob.shutdown().await;
}

/// A TCP forwarder that keeps a copy of every byte sent to the target.
fn recording_proxy(target: u16) -> (u16, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                continue;
            };
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let record = record.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = c_in.read(&mut buf) {
                    if n == 0 || s_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    record.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
            let (mut s_in, mut c_out) = (server, client);
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = s_in.read(&mut buf) {
                    if n == 0 || c_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_unreadable_on_the_wire_and_at_the_managers_and_bad_ones_are_refused() {
    let d = Deployment::start(3, false);
    d.wait_leader(&d.all(), WAIT).await;
    // Bob's inbox is published behind a recording proxy: every byte sent to it is kept.
    let bob_port = floe_test_support::free_port();
    let (tap_port, tapped) = recording_proxy(bob_port);
    let bob = telegraph::client::Client::start(
        d.client_config(
            "bob",
            &[
                (
                    "Telegraph.Client.Endpoints",
                    format!("tcp -h 127.0.0.1 -p {bob_port}"),
                ),
                (
                    "Telegraph.Client.PublishedEndpoints",
                    format!("tcp -h 127.0.0.1 -p {tap_port}"),
                ),
            ],
        ),
        true,
    )
    .await
    .expect("bob");
    let alice = d.client("alice", true).await;
    let secret = "the eagle lands at midnight";
    let mut bob_events = bob.events();
    let m = alice.send("bob", secret).await.expect("send");
    wait_event(
        &mut bob_events,
        WAIT,
        |e| matches!(e, Event::Received(r) if r.id == m.id && r.text == secret),
    )
    .await;
    let wire = tapped.lock().unwrap().clone();
    assert!(
        wire.windows(m.id.len()).any(|w| w == m.id.as_bytes()),
        "the tap saw the delivery"
    );
    assert!(
        !wire.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the text crossed the wire in clear"
    );
    for id in d.all() {
        let dir = d.tmp.path().join(format!("manager-{id}"));
        assert!(dir.exists());
        assert!(
            !dir_contains(&dir, secret.as_bytes()),
            "manager {id} stores the text"
        );
        assert!(
            !dir_contains(&dir, b"alice-password"),
            "manager {id} stores a password in clear"
        );
    }

    // Mallory, a registered user of its own, talks to bob's inbox directly.
    let managers = d.manager(&d.all());
    let mallory = Identity::generate();
    managers
        .register(
            "mallory",
            "mallory-password",
            mallory.identity_public().as_ref(),
            mallory.exchange_public().as_ref(),
        )
        .await
        .expect("register mallory");
    let bob_info = alice.lookup("bob").await.expect("lookup");
    let bob_inbox = InboxPrx::unchecked_cast(
        d.communicator
            .string_to_proxy(&bob_info.inbox)
            .unwrap()
            .unwrap(),
    );
    let rejected = |r: Result<(), inbox::DeliverError>| match r {
        Err(inbox::DeliverError::Rejected(e)) => e.reason,
        other => panic!("expected Rejected, got {other:?}"),
    };
    let good = crypto::seal(
        &mallory,
        "mallory",
        "bob",
        &bob_info.exchange_key,
        &crypto::new_message_id(),
        1,
        1,
        "hi",
    )
    .unwrap();

    let mut tampered = good.clone();
    tampered.ciphertext[0] ^= 1;
    assert!(rejected(bob_inbox.deliver(&tampered).await).contains("signature"));

    // Signed by mallory but claiming to come from alice.
    let forged = crypto::seal(
        &mallory,
        "alice",
        "bob",
        &bob_info.exchange_key,
        &crypto::new_message_id(),
        9,
        1,
        "I am alice",
    )
    .unwrap();
    assert!(rejected(bob_inbox.deliver(&forged).await).contains("signature"));

    // For someone else.
    let elsewhere = crypto::seal(
        &mallory,
        "mallory",
        "carol",
        &bob_info.exchange_key,
        &crypto::new_message_id(),
        2,
        1,
        "x",
    )
    .unwrap();
    assert!(rejected(bob_inbox.deliver(&elsewhere).await).contains("carol"));

    // A valid message, then the same bytes again: stored once.
    bob_inbox.deliver(&good).await.expect("a valid message");
    bob_inbox
        .deliver(&good)
        .await
        .expect("a replay is acknowledged");
    assert_eq!(
        bob.store().conversation("mallory").unwrap().len(),
        1,
        "the replay was stored again"
    );
    // Another message reusing a counter would overwrite the first: refused.
    let reused = crypto::seal(
        &mallory,
        "mallory",
        "bob",
        &bob_info.exchange_key,
        &crypto::new_message_id(),
        1,
        2,
        "again",
    )
    .unwrap();
    assert!(rejected(bob_inbox.deliver(&reused).await).contains("counter 1"));
    assert_eq!(bob.store().conversation("mallory").unwrap()[0].text, "hi");

    // A client refuses to message itself, oversized texts and unknown users; the managers
    // refuse a wrong password and bad names.
    assert!(matches!(
        alice.send("alice", "me").await,
        Err(ClientError::Invalid(_))
    ));
    assert!(matches!(
        alice.send("bob", &"x".repeat(crypto::MAX_TEXT + 1)).await,
        Err(ClientError::Invalid(_))
    ));
    assert!(alice.send("nobody", "hi").await.is_err());
    match managers.login("alice", "wrong", None).await {
        Err(manager::LoginError::Unauthorized(e)) => {
            assert!(e.reason.contains("wrong name or password"), "{}", e.reason)
        }
        other => panic!("a wrong password got {other:?}"),
    }
    match managers
        .register("Bad\nName", "pw", &[0; 32], &[0; 32])
        .await
    {
        Err(manager::RegisterError::InvalidArgument(_)) => {}
        other => panic!("a bad name got {other:?}"),
    }
    match managers.register("bob", "pw", &[0; 32], &[0; 32]).await {
        Err(manager::RegisterError::UserExists(_)) => {}
        other => panic!("a taken name got {other:?}"),
    }
    alice.shutdown().await;
    bob.shutdown().await;
}
