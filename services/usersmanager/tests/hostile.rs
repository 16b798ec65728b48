//! Attacks from outside over loopback against real instances: a spy on the query topic, direct
//! calls to the query objects, unsubscribed instances, oversized and forged user names,
//! password guessing. Each runs in the lab-compatible mode (where what still works is what that
//! mode trusts) and, where it applies, with a cluster key (where it fails).

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use floe::codegen::Current;
use floe::{Error, Identity, ObjectPrx};
use icestorm_lite::slice::ice_storm::{TopicManagerPrx, TopicPrx};
use parking_lot::Mutex;
use usersmanager::slice::users_manager::{
    self as um, ManagerQueryDispatcher, ManagerQueryPrx, ManagerQueryResponseDispatcher,
    ManagerQueryResponsePrx, SessionPrx, manager,
};

const KEY: &str = "UsersManager.ClusterKey=an-example-cluster-secret-0123\n";

/// The query topic of `broker`, seen from `communicator`.
async fn query_topic(communicator: &floe::Communicator, broker: &LiteBroker) -> TopicPrx {
    let tm = TopicManagerPrx::unchecked_cast(
        communicator
            .string_to_proxy(&broker.topic_manager)
            .expect("proxy")
            .expect("not null"),
    );
    tm.retrieve("ManagerQuery")
        .await
        .expect("the instances created the topic")
        .expect("not null")
}

/// A subscriber of the query topic that records the queries and answers every one of them:
/// a session of its own for `login`, "exists", "removed", "verified".
struct Spy {
    logins: Mutex<Vec<(String, String)>>,
    fake_session: SessionPrx,
}

impl Spy {
    async fn answer(cb: Option<ManagerQueryResponsePrx>, op: &str, session: Option<SessionPrx>) {
        let Some(cb) = cb else { return };
        let _ = match op {
            "sendSession" => cb.send_session(session).await,
            "userExists" => cb.user_exists().await,
            "userRemoved" => cb.user_removed().await,
            _ => cb.session_verified().await,
        };
    }
}

impl um::ManagerQuery for Spy {
    async fn login(
        &self,
        username: String,
        password: String,
        cb: Option<ManagerQueryResponsePrx>,
        _: &Current,
    ) -> Result<(), Error> {
        self.logins.lock().push((username, password));
        Spy::answer(cb, "sendSession", Some(self.fake_session.clone())).await;
        Ok(())
    }
    async fn check_username(
        &self,
        _: String,
        cb: Option<ManagerQueryResponsePrx>,
        _: &Current,
    ) -> Result<(), Error> {
        Spy::answer(cb, "userExists", None).await;
        Ok(())
    }
    async fn remove_user_by_session(
        &self,
        _: Option<SessionPrx>,
        cb: Option<ManagerQueryResponsePrx>,
        _: &Current,
    ) -> Result<(), Error> {
        Spy::answer(cb, "userRemoved", None).await;
        Ok(())
    }
    async fn check_session(
        &self,
        _: Option<SessionPrx>,
        cb: Option<ManagerQueryResponsePrx>,
        _: &Current,
    ) -> Result<(), Error> {
        Spy::answer(cb, "sessionVerified", None).await;
        Ok(())
    }
}

/// A callback object of the attacker's: counts what it is told.
#[derive(Default)]
struct Ear(Mutex<Vec<String>>);

impl um::ManagerQueryResponse for Ear {
    async fn send_session(&self, _: Option<SessionPrx>, _: &Current) -> Result<(), Error> {
        self.0.lock().push("sendSession".into());
        Ok(())
    }
    async fn user_exists(&self, _: &Current) -> Result<(), Error> {
        self.0.lock().push("userExists".into());
        Ok(())
    }
    async fn user_removed(&self, _: &Current) -> Result<(), Error> {
        self.0.lock().push("userRemoved".into());
        Ok(())
    }
    async fn session_verified(&self, _: &Current) -> Result<(), Error> {
        self.0.lock().push("sessionVerified".into());
        Ok(())
    }
}

/// The attacker's server on loopback.
async fn attacker(communicator: &floe::Communicator) -> floe::ObjectAdapter {
    let adapter = communicator
        .create_object_adapter_with_endpoints("attacker", "tcp -h 127.0.0.1 -p 0")
        .await
        .expect("attacker adapter");
    adapter.activate().expect("activate");
    adapter
}

/// What the spy achieved against a cluster of two instances.
#[derive(Debug, PartialEq, Eq)]
struct SpyResults {
    read_password: bool,
    verified_forged_session: bool,
    logged_in_unknown_user: bool,
    blocked_create_user: bool,
    removed_with_forged_session: bool,
}

async fn spy_on(extra: &str) -> SpyResults {
    let broker = LiteBroker::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let a = Instance::start(dir.path(), "a", Some(&broker.topic_manager), extra);
    let b = Instance::start(dir.path(), "b", Some(&broker.topic_manager), extra);
    let communicator = client();
    let (ma, mb) = (manager_of(&communicator, &a), manager_of(&communicator, &b));
    let real = ma
        .create_user("alice", "alice-password")
        .await
        .expect("create")
        .expect("session");

    let adapter = attacker(&communicator).await;
    let fake_session = SessionPrx::unchecked_cast(
        communicator
            .string_to_proxy(&format!("session/{}:tcp -h 127.9.9.9 -p 1", "f".repeat(64)))
            .expect("proxy")
            .expect("not null"),
    );
    let spy = Arc::new(Spy {
        logins: Mutex::new(Vec::new()),
        fake_session: fake_session.clone(),
    });
    let spy_prx = adapter
        .add(
            Arc::new(ManagerQueryDispatcher(spy.clone())),
            Identity::new("spy", ""),
        )
        .expect("spy");
    let topic = query_topic(&communicator, &broker).await;
    topic
        .subscribe_and_get_publisher(&HashMap::new(), Some(spy_prx.ice_oneway()))
        .await
        .expect("anyone may subscribe");

    let via_b = mb.login("alice", "alice-password").await;
    // The spy hears the query too, maybe after the owner answered.
    let deadline = Instant::now() + Duration::from_secs(5);
    while spy.logins.lock().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let read_password = spy
        .logins
        .lock()
        .iter()
        .any(|(u, p)| u == "alice" && p.contains("alice-password"));
    let verified_forged_session = mb
        .verify_session(Some(fake_session.clone()))
        .await
        .expect("verify");
    let logged_in_unknown_user = mb.login("nobody", "anything").await.is_ok();
    let blocked_create_user = matches!(
        mb.create_user("newcomer", "pw").await,
        Err(manager::CreateUserError::Unauthorized(_))
    );
    let removed_with_forged_session = mb.remove_user(Some(fake_session)).await.is_ok();
    if !extra.is_empty() {
        // With the spy still there, an authenticated cluster answers what is true.
        let owner = &a.manager[a.manager.find(':').expect(":")..];
        let session = via_b.expect("login through B").expect("session");
        assert!(session.to_string().ends_with(owner), "{}", *session);
        assert_eq!(session.get_user().await.expect("getUser"), "alice");
        assert!(mb.verify_session(Some(real)).await.expect("verify"));
        mb.create_user("alice", "other")
            .await
            .expect_err("A's user is still found");
    }
    SpyResults {
        read_password,
        verified_forged_session,
        logged_in_unknown_user,
        blocked_create_user,
        removed_with_forged_session,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spy_on_the_topic_controls_a_lab_mode_cluster_but_not_an_authenticated_one() {
    // The lab-compatible mode trusts whoever can reach the broker: this is what it gives them.
    assert_eq!(
        spy_on("").await,
        SpyResults {
            read_password: true,
            verified_forged_session: true,
            logged_in_unknown_user: true,
            blocked_create_user: true,
            removed_with_forged_session: true,
        }
    );
    assert_eq!(
        spy_on(KEY).await,
        SpyResults {
            read_password: false,
            verified_forged_session: false,
            logged_in_unknown_user: false,
            blocked_create_user: false,
            removed_with_forged_session: false,
        }
    );
}

/// The query objects the topic lists, on `instance`'s endpoints.
async fn query_objects(
    communicator: &floe::Communicator,
    broker: &LiteBroker,
    instance: &Instance,
) -> Vec<ManagerQueryPrx> {
    let endpoints = &instance.manager[instance.manager.find(':').expect(":")..];
    query_topic(communicator, broker)
        .await
        .get_subscribers()
        .await
        .expect("getSubscribers")
        .into_iter()
        .map(|id| {
            let prx: ObjectPrx = communicator
                .string_to_proxy(&format!("{}/{}{endpoints}", id.category, id.name))
                .expect("proxy")
                .expect("not null");
            ManagerQueryPrx::unchecked_cast(prx)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_calls_to_query_objects_are_refused_with_a_key_and_throttled_without() {
    for keyed in [false, true] {
        let broker = LiteBroker::start();
        let dir = tempfile::tempdir().expect("temp dir");
        let extra = if keyed { KEY } else { "" };
        let a = Instance::start(dir.path(), "a", Some(&broker.topic_manager), extra);
        let communicator = client();
        manager_of(&communicator, &a)
            .create_user("alice", "right")
            .await
            .expect("create");
        let adapter = attacker(&communicator).await;
        let ear = Arc::new(Ear::default());
        let cb = ManagerQueryResponsePrx::unchecked_cast(
            adapter
                .add(
                    Arc::new(ManagerQueryResponseDispatcher(ear.clone())),
                    Identity::new("ear", ""),
                )
                .expect("ear"),
        );
        let objects = query_objects(&communicator, &broker, &a).await;
        assert_eq!(objects.len(), 1);
        let query = &objects[0];

        let enumerated = query.check_username("alice", Some(cb.clone())).await;
        let started = Instant::now();
        let mut guesses = Vec::new();
        for i in 0..8 {
            guesses.push(
                query
                    .login("alice", &format!("guess{i}"), Some(cb.clone()))
                    .await,
            );
        }
        let right = query.login("alice", "right", Some(cb.clone())).await;
        eprintln!("9 guesses in {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(300)).await;
        let heard = ear.0.lock().clone();
        if keyed {
            for r in std::iter::once(&enumerated).chain(&guesses).chain([&right]) {
                match r {
                    Err(Error::UnknownException(m)) => {
                        assert!(m.contains("query refused"), "{m}")
                    }
                    other => panic!("an unsigned direct query was accepted: {other:?}"),
                }
            }
            assert!(
                heard.is_empty(),
                "the instance called the attacker back: {heard:?}"
            );
            assert!(
                !a.log_text().contains("guess"),
                "refused queries are not logged in full"
            );
        } else {
            // The lab's protocol lets anyone ask whether a name exists...
            assert_eq!(heard.first().map(String::as_str), Some("userExists"));
            // ... but after five wrong passwords even the right one gets no session.
            assert!(
                !heard.iter().any(|h| h == "sendSession"),
                "the password was guessed: {heard:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribed_instances_subscribe_again_and_names_stay_unique() {
    let broker = LiteBroker::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let extra = "UsersManager.SubscriptionCheck=200\n";
    let a = Instance::start(dir.path(), "a", Some(&broker.topic_manager), extra);
    let b = Instance::start(dir.path(), "b", Some(&broker.topic_manager), extra);
    let communicator = client();
    let (ma, mb) = (manager_of(&communicator, &a), manager_of(&communicator, &b));
    mb.create_user("dup", "b-password")
        .await
        .expect("create on B");
    // A has seen B on the topic.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let topic = query_topic(&communicator, &broker).await;
    let ids = topic.get_subscribers().await.expect("getSubscribers");
    assert_eq!(ids.len(), 2);
    for id in &ids {
        let prx = communicator
            .string_to_proxy(&format!(
                "{}/{}:tcp -h 127.0.0.1 -p 1",
                id.category, id.name
            ))
            .expect("proxy");
        topic
            .unsubscribe(prx)
            .await
            .expect("anyone may unsubscribe");
    }
    // Refused as incomplete (B is missing) or, if B subscribed again first, as taken.
    match ma.create_user("dup", "a-password").await {
        Err(manager::CreateUserError::Unauthorized(e)) => assert!(
            e.reason.contains("cluster is incomplete") || e.reason.contains("taken"),
            "{}",
            e.reason
        ),
        other => panic!("A created a name B holds while B was unsubscribed: {other:?}"),
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while topic.get_subscribers().await.expect("list").len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the instances did not subscribe again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        b.log_text().contains("subscribed again"),
        "{}",
        b.log_text()
    );
    match ma.create_user("dup", "a-password").await {
        Err(manager::CreateUserError::Unauthorized(e)) => {
            assert!(e.reason.contains("taken"), "{}", e.reason)
        }
        other => panic!("duplicate after B came back: {other:?}"),
    }
    assert!(ma.login("dup", "a-password").await.is_err());
    ma.login("dup", "b-password")
        .await
        .expect("the one user `dup` is B's");
    ma.create_user("fresh", "pw")
        .await
        .expect("the cluster is whole again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_names_and_passwords_are_bounded_and_cannot_forge_log_lines() {
    let broker = LiteBroker::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let a = Instance::start(dir.path(), "a", Some(&broker.topic_manager), "");
    let communicator = client();
    let ma = manager_of(&communicator, &a);
    // Just under a default Ice.MessageSizeMax with the request around it.
    let huge = "n".repeat((1 << 20) - 1024);
    let log_before = a.log_text().len();
    for _ in 0..10 {
        match ma.create_user(&huge, "pw").await {
            Err(manager::CreateUserError::Unauthorized(e)) => {
                assert!(e.reason.contains("the limit is 256"), "{}", e.reason)
            }
            other => panic!("a 1 MiB name: {other:?}"),
        }
        match ma.login(&huge, "pw").await {
            Err(manager::LoginError::Unauthorized(e)) => {
                assert!(e.reason.contains("the limit is 256"), "{}", e.reason)
            }
            other => panic!("a 1 MiB name: {other:?}"),
        }
        match ma.create_user("bob", &huge).await {
            Err(manager::CreateUserError::Unauthorized(e)) => {
                assert!(e.reason.contains("the limit is 1024"), "{}", e.reason)
            }
            other => panic!("a 1 MiB password: {other:?}"),
        }
    }
    let grown = a.log_text().len() - log_before;
    assert!(grown < 16 * 1024, "30 refusals wrote {grown} bytes of log");

    let forged = "2030-01-01T00:00:00.000000Z  INFO usersmanager::manager: forged";
    for (name, why) in [
        (" ".to_string(), "only blanks"),
        ("\0".to_string(), "U+0000"),
        ("\u{202e}gnp.exe".to_string(), "U+202E"),
        (format!("mallory\n{forged}"), "U+000A"),
        ("\u{1b}[2Jclear".to_string(), "U+001B"),
    ] {
        match ma.create_user(&name, "pw").await {
            Err(manager::CreateUserError::Unauthorized(e)) => {
                assert!(e.reason.contains(why), "{name:?}: {}", e.reason)
            }
            other => panic!("{name:?} was accepted: {other:?}"),
        }
    }
    let log = a.log_text();
    assert!(
        !log.lines().any(|l| l.starts_with("2030-01-01")),
        "a user name started a log line:\n{log}"
    );
    assert!(
        log.contains("mallory\\n2030"),
        "the refusal is logged, escaped"
    );
    ma.create_user(&"x".repeat(256), "pw")
        .await
        .expect("256 bytes is fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing_is_throttled_per_name_and_per_address() {
    let broker = LiteBroker::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let a = Instance::start(
        dir.path(),
        "a",
        Some(&broker.topic_manager),
        "UsersManager.LoginAttempts=3\nUsersManager.LoginAttemptsPerAddress=6\n\
         UsersManager.LoginWindow=2000\n",
    );
    let communicator = client();
    let ma = manager_of(&communicator, &a);
    ma.create_user("alice", "right").await.expect("create");
    ma.create_user("bob", "right").await.expect("create");
    for _ in 0..3 {
        assert!(ma.login("alice", "wrong").await.is_err());
    }
    let started = Instant::now();
    match ma.login("alice", "right").await {
        Err(manager::LoginError::Unauthorized(e)) => assert!(
            e.reason
                .contains("too many failed logins for this user name"),
            "{}",
            e.reason
        ),
        other => panic!("the fourth try went through: {other:?}"),
    }
    ma.login("bob", "right")
        .await
        .expect("another name is not locked");
    for _ in 0..3 {
        assert!(ma.login("bob", "wrong").await.is_err());
    }
    match ma.login("carol", "x").await {
        Err(manager::LoginError::Unauthorized(e)) => {
            assert!(e.reason.contains("client address"), "{}", e.reason)
        }
        other => panic!("a seventh failure from one address: {other:?}"),
    }
    let left = Duration::from_millis(2100).saturating_sub(started.elapsed());
    tokio::time::sleep(left).await;
    ma.login("alice", "right")
        .await
        .expect("the lock ends with the window");
}
