//! Three instances on one broker (icestorm-lite, and ZeroC's IceStorm for the main scenario):
//! users, sessions and queries across instances, duplicate names, every timeout path, and
//! requests that wait never blocking others.

mod common;

use std::time::{Duration, Instant};

use common::*;
use usersmanager::slice::users_manager::{ManagerPrx, manager, session};

struct Cluster {
    _broker: Broker,
    _dir: tempfile::TempDir,
    instances: Vec<Instance>,
    communicator: floe::Communicator,
}

impl Cluster {
    fn start(n: usize, extra: &str) -> Cluster {
        Self::start_on(Broker::Lite(LiteBroker::start()), n, extra)
    }

    fn start_on(broker: Broker, n: usize, extra: &str) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let instances = (0..n)
            .map(|i| {
                Instance::start(
                    dir.path(),
                    &format!("i{i}"),
                    Some(broker.topic_manager()),
                    extra,
                )
            })
            .collect();
        Cluster {
            _broker: broker,
            _dir: dir,
            instances,
            communicator: client(),
        }
    }

    fn manager(&self, i: usize) -> ManagerPrx {
        manager_of(&self.communicator, &self.instances[i])
    }

    fn endpoints(&self, i: usize) -> String {
        let m = &self.instances[i].manager;
        m[m.find(':').expect("endpoints")..].to_string()
    }

    fn logs(&self) -> String {
        self.instances
            .iter()
            .enumerate()
            .map(|(i, inst)| format!("--- instance {i}\n{}", inst.log_text()))
            .collect()
    }
}

fn wait() -> Duration {
    Duration::from_millis(QUERY_TIMEOUT_MS)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_created_on_a_logs_in_through_b_and_c_is_verified_through_c_and_removed_through_b() {
    across_instances(Cluster::start(3, "")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_scenario_with_a_cluster_key() {
    across_instances(Cluster::start(
        3,
        "UsersManager.ClusterKey=an-example-cluster-secret-0123\n",
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_scenario_with_a_cluster_key_on_zeroc_icestorm() {
    across_instances(Cluster::start_on(
        Broker::ZeroC(start_icebox()),
        3,
        "UsersManager.ClusterKey=an-example-cluster-secret-0123\n",
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_scenario_on_zeroc_icestorm() {
    across_instances(Cluster::start_on(Broker::ZeroC(start_icebox()), 3, "")).await;
}

async fn across_instances(cluster: Cluster) {
    let (a, b, c) = (cluster.manager(0), cluster.manager(1), cluster.manager(2));

    let sa = a
        .create_user("bob", "pw")
        .await
        .expect("create on A")
        .expect("session");
    let start = Instant::now();
    let sb = b
        .login("bob", "pw")
        .await
        .expect("login through B")
        .expect("session");
    assert!(
        start.elapsed() < wait(),
        "B waited for the timeout instead of A's answer"
    );
    assert!(
        sb.to_string().ends_with(&cluster.endpoints(0)),
        "the session comes from A, the owner: {}",
        *sb
    );
    let sc = c
        .login("bob", "pw")
        .await
        .expect("login through C")
        .expect("session");
    assert_eq!(sc.get_user().await.expect("getUser"), "bob");
    assert_ne!(sb.ice_get_identity(), sc.ice_get_identity());

    for s in [&sa, &sb, &sc] {
        let start = Instant::now();
        assert!(
            c.verify_session(Some(s.clone()))
                .await
                .expect("verify through C")
        );
        assert!(
            start.elapsed() < wait(),
            "C waited for the timeout instead of A's answer"
        );
    }
    match b.login("bob", "wrong").await {
        Err(manager::LoginError::Unauthorized(_)) => {}
        other => panic!("wrong password through B: {other:?}"),
    }

    b.remove_user(Some(sb.clone()))
        .await
        .expect("remove through B");
    match sa.refresh().await {
        Err(session::RefreshError::InvalidUser(e)) => assert_eq!(e.user, "bob"),
        other => panic!("refresh after removal: {other:?}\n{}", cluster.logs()),
    }
    for m in [&a, &b, &c] {
        match m.login("bob", "pw").await {
            Err(manager::LoginError::Unauthorized(_)) => {}
            other => panic!("login after removal: {other:?}"),
        }
    }
    // The name is free again everywhere.
    c.create_user("bob", "new").await.expect("recreate on C");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_creation_through_another_instance_is_refused_and_races_have_one_winner() {
    let cluster = Cluster::start(3, "");
    let (a, b, c) = (cluster.manager(0), cluster.manager(1), cluster.manager(2));
    a.create_user("carol", "pw").await.expect("create on A");
    for m in [&a, &b, &c] {
        match m.create_user("carol", "other").await {
            Err(manager::CreateUserError::Unauthorized(_)) => {}
            other => panic!("duplicate creation: {other:?}"),
        }
    }
    // Two (and three) instances racing for the same names: never two winners.
    for round in 0..4 {
        let name = format!("race{round}");
        let (ra, rb, rc) = tokio::join!(
            a.create_user(&name, "1"),
            b.create_user(&name, "2"),
            c.create_user(&name, "3")
        );
        let winners = [ra.is_ok(), rb.is_ok(), rc.is_ok()]
            .iter()
            .filter(|w| **w)
            .count();
        assert!(
            winners <= 1,
            "{winners} instances created {name}:\n{}",
            cluster.logs()
        );
        for r in [ra, rb, rc] {
            if let Err(e) = r {
                assert!(
                    matches!(e, manager::CreateUserError::Unauthorized(_)),
                    "a loser gets Unauthorized: {e:?}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_answer_as_the_spec_says() {
    let cluster = Cluster::start(3, "UsersManager.SessionLifetime=1500\n");
    let (a, b, c) = (cluster.manager(0), cluster.manager(1), cluster.manager(2));

    let start = Instant::now();
    match c.login("ghost", "x").await {
        Err(manager::LoginError::Unauthorized(_)) => {}
        other => panic!("unknown user: {other:?}"),
    }
    assert!(start.elapsed() >= wait(), "refused before the wait");

    let start = Instant::now();
    a.create_user("fresh", "pw")
        .await
        .expect("a name nobody knows is created after the wait");
    assert!(start.elapsed() >= wait(), "created before the wait");

    let unknown = usersmanager::slice::users_manager::SessionPrx::unchecked_cast(
        cluster
            .communicator
            .string_to_proxy("session/0123:tcp -h 127.0.0.1 -p 9")
            .expect("proxy")
            .expect("not null"),
    );
    let start = Instant::now();
    assert!(
        !b.verify_session(Some(unknown.clone()))
            .await
            .expect("verify")
    );
    assert!(
        start.elapsed() >= wait(),
        "unknown session refused before the wait"
    );
    let start = Instant::now();
    match b.remove_user(Some(unknown)).await {
        Err(manager::RemoveUserError::InvalidUser(_)) => {}
        other => panic!("unknown session: {other:?}"),
    }
    assert!(
        start.elapsed() >= wait(),
        "unknown session refused before the wait"
    );

    // A session of A that expired: B cannot remove its user (A ignores the query), and the user
    // is still there.
    let s = a
        .login("fresh", "pw")
        .await
        .expect("login")
        .expect("session");
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert!(!s.is_alive().await.expect("isAlive"));
    match b.remove_user(Some(s.clone())).await {
        Err(manager::RemoveUserError::InvalidUser(_)) => {}
        other => panic!("expired remote session: {other:?}"),
    }
    match a.remove_user(Some(s)).await {
        Err(manager::RemoveUserError::SessionExpired(_)) => {}
        other => panic!("expired local session: {other:?}"),
    }
    b.login("fresh", "pw").await.expect("the user survived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_requests_block_neither_other_requests_nor_answers() {
    let cluster = Cluster::start(2, "UsersManager.QueryTimeout=3000\n");
    let (a, b) = (cluster.manager(0), cluster.manager(1));
    a.create_user("dora", "pw").await.expect("create on A");
    b.create_user("eve", "pw").await.expect("create on B");

    // Ten requests on A that must wait the full 3 s ...
    let slow: Vec<_> = (0..10)
        .map(|i| {
            let a = a.clone();
            tokio::spawn(async move { a.login(&format!("ghost{i}"), "x").await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ... while A serves local requests and gets B's answers to its own queries.
    let start = Instant::now();
    for _ in 0..5 {
        let s = a
            .login("dora", "pw")
            .await
            .expect("local login")
            .expect("session");
        assert!(a.verify_session(Some(s.clone())).await.expect("verify"));
        s.refresh().await.expect("refresh");
        let remote = a
            .login("eve", "pw")
            .await
            .expect("remote login")
            .expect("session");
        assert!(a.verify_session(Some(remote)).await.expect("remote verify"));
    }
    assert!(
        start.elapsed() < Duration::from_millis(2500),
        "requests waited behind the pending queries: {:?}",
        start.elapsed()
    );
    for s in slow {
        assert!(s.await.expect("join").is_err(), "an unknown user logged in");
    }
}
