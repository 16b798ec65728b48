//! verifySession and removeUser against forged session proxies: made-up identities on an
//! instance's endpoints, real identities behind an attacker's endpoints (served by a lying
//! Session object), mixed endpoints, facets and categories.

mod common;

use std::sync::Arc;

use common::*;
use floe::codegen::Current;
use floe::{Error, Identity};
use usersmanager::slice::users_manager::{
    self as um, SessionDispatcher, SessionPrx, manager, session,
};

/// A Session that claims to be anybody's, alive forever.
struct Liar;

impl um::Session for Liar {
    async fn get_user(&self, _: &Current) -> Result<String, Error> {
        Ok("victim".into())
    }
    async fn is_alive(&self, _: &Current) -> Result<bool, Error> {
        Ok(true)
    }
    async fn refresh(&self, _: &Current) -> Result<(), session::RefreshError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_sessions_are_never_verified_nor_remove_users() {
    let icebox = LiteBroker::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let a = Instance::start(dir.path(), "a", Some(&icebox.topic_manager), "");
    let b = Instance::start(dir.path(), "b", Some(&icebox.topic_manager), "");
    let communicator = client();
    let (ma, mb) = (manager_of(&communicator, &a), manager_of(&communicator, &b));

    // The attacker's server.
    let attacker = communicator
        .create_object_adapter_with_endpoints("attacker", "tcp -h 127.0.0.1 -p 0")
        .await
        .expect("attacker adapter");
    attacker
        .add_default_servant(Arc::new(SessionDispatcher(Arc::new(Liar))), "")
        .expect("servant");
    attacker.activate().expect("activate");

    let real = ma
        .create_user("victim", "pw")
        .await
        .expect("create")
        .expect("session");
    assert!(
        mb.verify_session(Some(real.clone()))
            .await
            .expect("control: the real one")
    );

    let at_attacker = |id: Identity| SessionPrx::unchecked_cast(attacker.create_proxy(id));
    let real_id = real.ice_get_identity().clone();
    let stolen = at_attacker(real_id.clone());
    assert_eq!(stolen.get_user().await.expect("the liar answers"), "victim");

    let mut mixed_endpoints = real.ice_get_endpoints().to_vec();
    mixed_endpoints.extend(attacker.published_endpoints());
    let forged: Vec<(&str, SessionPrx)> = vec![
        (
            "made-up identity on A's endpoints",
            SessionPrx::unchecked_cast(
                real.ice_identity(Identity::new("f".repeat(64), real_id.category.clone())),
            ),
        ),
        (
            "A's session identity behind the attacker's endpoints",
            stolen.clone(),
        ),
        (
            "A's session identity behind A's and the attacker's endpoints",
            SessionPrx::unchecked_cast(real.ice_endpoints(mixed_endpoints)),
        ),
        (
            "A's session with a facet",
            SessionPrx::unchecked_cast(real.ice_facet("admin")),
        ),
        (
            "A's session name in another category",
            SessionPrx::unchecked_cast(real.ice_identity(Identity::new(real_id.name.clone(), ""))),
        ),
        (
            "A's session as an indirect proxy",
            SessionPrx::unchecked_cast(real.ice_adapter_id("usersmanageradapter")),
        ),
    ];
    for (what, prx) in &forged {
        assert!(
            !ma.verify_session(Some(prx.clone()))
                .await
                .expect("verify on A"),
            "A verified {what}"
        );
        assert!(
            !mb.verify_session(Some(prx.clone()))
                .await
                .expect("verify on B"),
            "B verified {what}"
        );
        for m in [&ma, &mb] {
            match m.remove_user(Some(prx.clone())).await {
                Err(manager::RemoveUserError::InvalidUser(_)) => {}
                other => panic!("removeUser with {what}: {other:?}"),
            }
        }
    }
    ma.login("victim", "pw")
        .await
        .expect("the victim still exists");
    assert!(
        mb.verify_session(Some(real))
            .await
            .expect("control: still verified")
    );
    drop(icebox);
}
