//! The identity managers under faults: the leading manager SIGKILLed during registrations and
//! messaging (no acknowledged registration lost, clients go on), and a partitioned minority of
//! managers refusing registrations.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Deployment, wait_event};
use telegraph::client::Event;
use telegraph::crypto::Identity;
use telegraph::slice::telegraph::manager;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leading_manager_sigkilled_loses_no_acknowledged_registration() {
    let mut d = Deployment::start(5, false);
    let leader = d.wait_leader(&d.all(), WAIT).await;
    let alice = d.client("alice", true).await;
    let bob = d.client("bob", true).await;

    // Registrations through the proxy of every manager, acknowledged ones remembered.
    let managers = d.manager(&d.all());
    let stop = Arc::new(AtomicBool::new(false));
    let registrar = {
        let (managers, stop) = (managers.clone(), stop.clone());
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut refused = 0;
            let key = Identity::generate();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("user{i}");
                i += 1;
                match managers
                    .register(
                        &name,
                        "pw",
                        key.identity_public().as_ref(),
                        key.exchange_public().as_ref(),
                    )
                    .await
                {
                    Ok(()) => acknowledged.push(name),
                    Err(_) => refused += 1,
                }
            }
            (acknowledged, refused)
        })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    d.kill(leader);
    let survivors: Vec<u64> = d.all().into_iter().filter(|id| *id != leader).collect();
    let new_leader = d.wait_leader(&survivors, WAIT).await;
    assert_ne!(new_leader, leader);

    // Clients go on: a message both ways after the kill.
    let (mut alice_events, mut bob_events) = (alice.events(), bob.events());
    let m = alice
        .send("bob", "after the kill")
        .await
        .expect("send after the kill");
    wait_event(
        &mut bob_events,
        WAIT,
        |e| matches!(e, Event::Received(r) if r.id == m.id),
    )
    .await;
    let m = bob.send("alice", "still here").await.expect("send");
    wait_event(
        &mut alice_events,
        WAIT,
        |e| matches!(e, Event::Received(r) if r.id == m.id),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, Ordering::Relaxed);
    let (acknowledged, refused) = registrar.await.expect("registrar");
    assert!(
        acknowledged.len() >= 10,
        "only {} registrations went through ({refused} refused)\n{}",
        acknowledged.len(),
        d.logs()
    );

    let users: Vec<String> = alice
        .users()
        .await
        .expect("users")
        .into_iter()
        .map(|u| u.name)
        .collect();
    for name in &acknowledged {
        assert!(
            users.contains(name),
            "{name} was acknowledged and is lost\n{}",
            d.logs()
        );
    }
    println!(
        "{} registrations acknowledged, {refused} refused around the kill",
        acknowledged.len()
    );
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_minority_of_managers_refuses_registrations() {
    let d = Deployment::start(5, true);
    d.wait_leader(&d.all(), WAIT).await;
    let key = Identity::generate();
    let (ik, xk) = (
        key.identity_public().to_vec(),
        key.exchange_public().to_vec(),
    );
    let minority = [1, 2];
    let majority = [3, 4, 5];
    d.mesh.as_ref().unwrap().partition(&minority, &majority);
    d.wait_leader(&majority, WAIT).await;

    for id in minority {
        match d
            .manager(&[id])
            .register(&format!("lost{id}"), "pw", &ik, &xk)
            .await
        {
            Err(manager::RegisterError::Unavailable(e)) => {
                assert!(e.reason.contains("no leader"), "{}", e.reason)
            }
            other => panic!("manager {id} of the minority answered {other:?}"),
        }
    }
    d.manager(&majority)
        .register("kept", "pw", &ik, &xk)
        .await
        .expect("the majority registers");

    d.mesh.as_ref().unwrap().heal_all();
    d.wait_leader(&d.all(), WAIT).await;
    let session = d
        .manager(&[1])
        .login("kept", "pw", None)
        .await
        .expect("login through a healed minority manager");
    let names: Vec<String> = d
        .manager(&[2])
        .users(&session)
        .await
        .expect("users")
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["kept"], "a refused registration was applied");
}
