//! Server of ZeroC's `Ice/admin` test: `factory` (a `::Test::RemoteCommunicatorFactory`) on
//! `TestAdapter` at `Test.BasePort`. `createCommunicator` makes a new communicator in this
//! process from the properties the client gives (its admin object on `Ice.Admin.Endpoints`),
//! adds the custom admin facet `TestFacet` to it, and returns a `::Test::RemoteCommunicator` for
//! it, added under a UUID to `TestAdapter`, through which the client gets the admin proxy, sees
//! the changes its `setProperties` calls made, and shuts down and destroys it. As in ZeroC's
//! `TestI.py`.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::Arc;

use floe::codegen::{Current, Error, ObjectPrx};
use floe::{Communicator, Properties};
use tokio::sync::watch;

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/admin/Server.rs"));
}

use generated::test::{self, RemoteCommunicatorPrx};

type Res<T> = Result<T, Error>;

#[derive(Debug)]
struct TestFacetI;

impl test::TestFacet for TestFacetI {
    async fn op(&self, _: &Current) -> Res<()> {
        Ok(())
    }
}

/// A communicator the client created, and the changes its `Properties` facet reported last.
#[derive(Debug)]
struct RemoteCommunicatorI {
    communicator: Communicator,
    /// The changes of the last update not yet taken by `getChanges`.
    changes: watch::Sender<Option<BTreeMap<String, String>>>,
}

impl test::RemoteCommunicator for RemoteCommunicatorI {
    async fn get_admin(&self, _: &Current) -> Res<Option<ObjectPrx>> {
        self.communicator.get_admin().await
    }

    /// As `TestI.py`: the client calls `setProperties` on the `Properties` facet, then this;
    /// it waits for the update callback of that call, whose reply may have overtaken it.
    async fn get_changes(&self, _: &Current) -> Res<HashMap<String, String>> {
        let mut updates = self.changes.subscribe();
        let changes = updates
            .wait_for(Option::is_some)
            .await
            .map_err(|_| Error::CommunicatorDestroyed)?
            .clone();
        self.changes.send_replace(None);
        Ok(changes.unwrap_or_default().into_iter().collect())
    }

    async fn shutdown(&self, _: &Current) -> Res<()> {
        self.communicator.shutdown();
        Ok(())
    }

    async fn wait_for_shutdown(&self, _: &Current) -> Res<()> {
        self.communicator.wait_for_shutdown().await;
        Ok(())
    }

    async fn destroy(&self, _: &Current) -> Res<()> {
        self.communicator.destroy().await;
        Ok(())
    }
}

#[derive(Debug)]
struct RemoteCommunicatorFactoryI;

impl test::RemoteCommunicatorFactory for RemoteCommunicatorFactoryI {
    async fn create_communicator(
        &self,
        props: HashMap<String, String>,
        current: &Current,
    ) -> Res<Option<RemoteCommunicatorPrx>> {
        let properties = Properties::new();
        for (k, v) in &props {
            properties.set_property(k, v);
        }
        // Ice for Python sets Ice.AcceptClassCycles=1 in every communicator it creates
        // (IcePy's Communicator.cpp), and the client, written against the Python server,
        // counts it among the properties of the Properties facet.
        properties.set_property("Ice.AcceptClassCycles", "1");
        let communicator = Communicator::with_properties(properties)?;

        communicator.add_admin_facet(
            Arc::new(test::TestFacetDispatcher(Arc::new(TestFacetI))),
            "TestFacet",
        )?;

        let servant = Arc::new(RemoteCommunicatorI {
            communicator: communicator.clone(),
            changes: watch::Sender::new(None),
        });
        // As TestI.py: the servant hears the Properties facet's updates, when the facet exists.
        if communicator.find_admin_facet("Properties").is_some() {
            let updates = servant.changes.clone();
            communicator.add_properties_update_callback(Arc::new(move |changes| {
                updates.send_replace(Some(changes.clone()));
            }));
        }
        let proxy = current
            .adapter
            .add_with_uuid(Arc::new(test::RemoteCommunicatorDispatcher(servant)))?;
        Ok(Some(RemoteCommunicatorPrx::unchecked_cast(proxy)))
    }

    async fn shutdown(&self, current: &Current) -> Res<()> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
}

fn main() -> ExitCode {
    floe_conformance::serve("admin", &[], |_, adapter| {
        adapter.add(
            Arc::new(test::RemoteCommunicatorFactoryDispatcher(Arc::new(
                RemoteCommunicatorFactoryI,
            ))),
            "factory".parse()?,
        )?;
        Ok(())
    })
}
