//! Ice's `facets` suite, cut down: facets and default servants of a Floe adapter seen from ZeroC,
//! and servant registration rules.

mod common;

use std::sync::Arc;

use common::*;
use floe::{Error, Identity};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facets_and_default_servants() {
    let server = start_floe_server(&[]).await;
    let comm = client_communicator(&[]);
    let prx = comm
        .string_to_proxy(&server.proxy.to_string())
        .unwrap()
        .unwrap();
    assert_eq!(
        prx.ice_facet("admin").ice_id().await.unwrap(),
        ADMIN_TYPE_ID
    );
    assert_eq!(prx.ice_id().await.unwrap(), HELLO_TYPE_ID);
    // Default servant: any identity in category "any".
    assert_eq!(
        prx.ice_identity(Identity::new("x", "any"))
            .ice_id()
            .await
            .unwrap(),
        HELLO_TYPE_ID
    );
    // A default servant answers for every facet, as in Ice.
    assert_eq!(
        prx.ice_identity(Identity::new("x", "any"))
            .ice_facet("f")
            .ice_id()
            .await
            .unwrap(),
        HELLO_TYPE_ID
    );
    assert!(server.adapter.find_default_servant("any").is_some());
    assert!(server.adapter.find_default_servant("none").is_none());
    // Registering twice fails; removing works and the object then no longer exists.
    let again = server
        .adapter
        .add(Arc::new(AdminDispatcher), Identity::new("hello", ""));
    assert!(
        matches!(again, Err(Error::AlreadyRegistered { .. })),
        "{again:?}"
    );
    server
        .adapter
        .remove_facet(&Identity::new("hello", ""), "admin")
        .unwrap();
    assert!(matches!(
        prx.ice_facet("admin").ice_ping().await,
        Err(Error::FacetNotExist(_))
    ));
    let uuid_prx = server
        .adapter
        .add_with_uuid(Arc::new(AdminDispatcher))
        .unwrap();
    assert_eq!(uuid_prx.ice_get_identity().name.len(), 36);
    let uuid_prx = comm
        .string_to_proxy(&uuid_prx.to_string())
        .unwrap()
        .unwrap();
    assert_eq!(uuid_prx.ice_id().await.unwrap(), ADMIN_TYPE_ID);
    comm.destroy().await;
    server.communicator.destroy().await;
}
