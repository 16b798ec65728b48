//! A cluster of one Python instance (tests/usersmanager/usersmanager_py.py, on ZeroC Ice) and two
//! Floe instances, on ZeroC's IceStorm and on icestorm-lite: every query flows both ways.

mod common;

use std::time::Instant;

use common::*;
use usersmanager::slice::users_manager::manager;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_floe_instances_form_one_cluster_on_zeroc_icestorm() {
    require_python_ice();
    mixed_cluster(Broker::ZeroC(start_icebox())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_floe_instances_form_one_cluster_on_icestorm_lite() {
    require_python_ice();
    mixed_cluster(Broker::Lite(LiteBroker::start())).await;
}

/// Publishes on the query topic a `checkUsername` whose parameters end with a tagged class
/// parameter holding a chain of 60,000 sliced instances: ZeroC's Python decodes it while skipping
/// the tag and dies. icestorm-lite with IceStorm.CheckClassGraphs refuses it.
async fn publish_poisoned_query(communicator: &floe::Communicator, topic_manager: &str) {
    use icestorm_lite::slice::ice_storm::TopicManagerPrx;
    let tm = TopicManagerPrx::unchecked_cast(
        communicator
            .string_to_proxy(topic_manager)
            .expect("proxy")
            .expect("not null"),
    );
    let publisher = tm
        .retrieve("ManagerQuery")
        .await
        .expect("retrieve")
        .expect("topic")
        .get_publisher()
        .await
        .expect("publisher")
        .expect("not null");
    // "x", a null proxy (empty identity), then tag 1 with format Class (7).
    let prefix = [1, b'x', 0, 0, (1 << 3) | 7];
    let event = icestorm_lite::class_graph::sliced_chain(&prefix, 60_000);
    match publisher
        .ice_invoke(
            "checkUsername",
            floe::OperationMode::Normal,
            event.into(),
            None,
        )
        .await
    {
        Err(e) => assert!(e.to_string().contains("Ice.ClassGraphDepthMax"), "{e}"),
        Ok(_) => panic!("the broker forwarded a poisoned query"),
    }
}

async fn mixed_cluster(broker: Broker) {
    let dir = tempfile::tempdir().expect("temp dir");
    let stubs = dir.path().join("stubs");
    python_stubs(&stubs);
    let p = Instance::start_python(dir.path(), "py", broker.topic_manager(), "", &stubs);
    let a = Instance::start(dir.path(), "a", Some(broker.topic_manager()), "");
    let b = Instance::start(dir.path(), "b", Some(broker.topic_manager()), "");
    let communicator = client();
    let (mp, ma, mb) = (
        manager_of(&communicator, &p),
        manager_of(&communicator, &a),
        manager_of(&communicator, &b),
    );
    let endpoints = |i: &Instance| i.manager[i.manager.find(':').expect(":")..].to_string();
    let logs = || {
        format!(
            "python:\n{}\nA:\n{}\nB:\n{}",
            p.log_text(),
            a.log_text(),
            b.log_text()
        )
    };
    if let Broker::Lite(lite) = &broker {
        publish_poisoned_query(&communicator, &lite.topic_manager).await;
    }
    let quick = |start: Instant, what: &str| {
        assert!(
            start.elapsed().as_millis() < u128::from(QUERY_TIMEOUT_MS),
            "{what} waited for the timeout: nobody answered\n{}",
            logs()
        )
    };

    // Python answers Floe's queries.
    let py_session = mp
        .create_user("pyuser", "pw")
        .await
        .expect("create on Python")
        .expect("s");
    let t = Instant::now();
    let via_a = ma
        .login("pyuser", "pw")
        .await
        .expect("login through A")
        .expect("s");
    quick(t, "A's login query");
    assert!(
        via_a.to_string().ends_with(&endpoints(&p)),
        "session from the Python owner"
    );
    let t = Instant::now();
    assert!(
        mb.verify_session(Some(py_session.clone()))
            .await
            .expect("verify"),
        "{}",
        logs()
    );
    quick(t, "B's checkSession query");
    let t = Instant::now();
    match ma.create_user("pyuser", "x").await {
        Err(manager::CreateUserError::Unauthorized(_)) => {}
        other => panic!("duplicate of a Python user: {other:?}\n{}", logs()),
    }
    quick(t, "A's checkUsername query");

    // Floe answers Python's queries.
    let rs_session = ma
        .create_user("rsuser", "pw")
        .await
        .expect("create on A")
        .expect("s");
    let t = Instant::now();
    let via_p = mp
        .login("rsuser", "pw")
        .await
        .expect("login through Python")
        .expect("s");
    quick(t, "Python's login query");
    assert!(
        via_p.to_string().ends_with(&endpoints(&a)),
        "session from the Floe owner"
    );
    let t = Instant::now();
    assert!(
        mp.verify_session(Some(rs_session.clone()))
            .await
            .expect("verify"),
        "{}",
        logs()
    );
    quick(t, "Python's checkSession query");
    match mp.create_user("rsuser", "x").await {
        Err(manager::CreateUserError::Unauthorized(_)) => {}
        other => panic!(
            "duplicate of a Floe user through Python: {other:?}\n{}",
            logs()
        ),
    }

    // Removal both ways.
    let t = Instant::now();
    mp.remove_user(Some(via_p))
        .await
        .expect("Python asks A to remove rsuser");
    quick(t, "Python's removeUserBySession query");
    let t = Instant::now();
    mb.remove_user(Some(via_a))
        .await
        .expect("B asks Python to remove pyuser");
    quick(t, "B's removeUserBySession query");
    for m in [&mp, &ma, &mb] {
        for user in ["pyuser", "rsuser"] {
            match m.login(user, "pw").await {
                Err(manager::LoginError::Unauthorized(_)) => {}
                other => panic!("{user} still logs in: {other:?}"),
            }
        }
    }
    drop(broker);
}
