//! Users survive SIGKILL and a restart; sessions do not.

mod common;

use common::*;
use usersmanager::slice::users_manager::manager;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_survive_sigkill_and_restart_sessions_do_not() {
    let icebox = LiteBroker::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let fixed = format!("usersmanageradapter.Endpoints=tcp -h 127.0.0.1 -p {port}\n");
    let a = Instance::start(dir.path(), "a", Some(&icebox.topic_manager), &fixed);
    let b = Instance::start(dir.path(), "b", Some(&icebox.topic_manager), "");
    let communicator = client();
    let (ma, mb) = (manager_of(&communicator, &a), manager_of(&communicator, &b));

    let session = ma
        .create_user("frank", "pw")
        .await
        .expect("create")
        .expect("session");
    let users: Vec<String> = (0..10).map(|i| format!("user{i}")).collect();
    let mut created = Vec::new();
    for u in &users {
        created.push(ma.create_user(u, u).await);
    }
    assert!(
        created.iter().all(|r| r.is_ok()),
        "creations failed: {created:?}"
    );
    assert!(
        mb.verify_session(Some(session.clone()))
            .await
            .expect("verify")
    );

    // SIGKILL right after the last acknowledgement: no clean shutdown, no final flush.
    let (config, data_dir, log) = (a.config.clone(), a.data_dir.clone(), a.log.clone());
    a.kill();
    let a = Instance::start_with_config(&config, &data_dir, &log);
    let ma = manager_of(&communicator, &a);

    ma.login("frank", "pw")
        .await
        .expect("frank survived")
        .expect("session");
    for u in &users {
        ma.login(u, u).await.expect("an acknowledged user survived");
        mb.login(u, u).await.expect("and is found through B");
    }
    match ma.login("frank", "wrong").await {
        Err(manager::LoginError::Unauthorized(_)) => {}
        other => panic!("the password survived too: {other:?}"),
    }
    match session.is_alive().await {
        Err(floe::Error::ObjectNotExist(_)) => {}
        other => panic!("a session survived the restart: {other:?}"),
    }
    assert!(
        !ma.verify_session(Some(session.clone()))
            .await
            .expect("verify on A")
    );
    assert!(!mb.verify_session(Some(session)).await.expect("verify on B"));
    drop(icebox);
}
