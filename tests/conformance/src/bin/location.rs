//! Server of ZeroC's `Ice/location` test. The adapter `ServerManager` at `Test.BasePort` holds
//! the test's own locator (`locator`, a `::Test::TestLocator` that counts the lookups it
//! answers), its registry (`registry`, a `::Test::TestLocatorRegistry` to which the client can
//! also add objects) and `ServerManager`, which starts and stops "servers". A server is a new
//! communicator in this process with two adapters that register their endpoints with the
//! locator: `TestAdapter` (adapter id `TestAdapter`, in the replica group `ReplicatedAdapter`)
//! and `TestAdapter2`, on the next two ports above the base port (a run uses 18 of them). It
//! serves `test`, `test2` and `test3` (one `::Test::TestIntf`) and `hello` (a `::Test::Hello`
//! the client has moved between the two adapters), and registers `test`, `test2` and `hello` as
//! well-known objects. The client resolves its indirect and well-known proxies through the
//! locator while servers come and go. As ZeroC's C++ server (for its C++ client), the locator
//! also answers the adapter ids `TestAdapter10` and `TestAdapter10-2` with `TestAdapter`'s
//! endpoints, when asked with encoding 1.0.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use floe::codegen::{Current, Error, ObjectPrx};
use floe::{Communicator, Identity, ObjectAdapter, Properties};
use floe_conformance::TestHelper;
use tokio::sync::{Mutex, watch};

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/location/Server.rs"));
}

use generated::ice::{self, locator, locator_registry};
use generated::test::{self, HelloPrx};

type Res<T> = Result<T, Error>;

/// What the registry knows: adapter (and replica group) ids and well-known objects.
#[derive(Debug, Default)]
struct Entries {
    adapters: HashMap<String, ObjectPrx>,
    objects: HashMap<Identity, ObjectPrx>,
}

/// The locator registry: adapters register (and unregister) their endpoints here, the server
/// manager and the client add well-known objects. Watchable, so that a new server can wait for
/// the previous one's adapters to be gone.
#[derive(Debug)]
struct ServerLocatorRegistry {
    entries: watch::Sender<Entries>,
}

impl ServerLocatorRegistry {
    fn new() -> ServerLocatorRegistry {
        ServerLocatorRegistry {
            entries: watch::Sender::new(Entries::default()),
        }
    }

    fn add_object(&self, proxy: ObjectPrx) {
        self.entries.send_modify(|e| {
            e.objects.insert(proxy.ice_get_identity().clone(), proxy);
        });
    }

    fn adapter(&self, id: &str) -> Option<ObjectPrx> {
        self.entries.borrow().adapters.get(id).cloned()
    }

    fn object(&self, id: &Identity) -> Option<ObjectPrx> {
        self.entries.borrow().objects.get(id).cloned()
    }

    /// Sets (or, for `None`, removes) the proxy of each of `ids`.
    fn set_adapters(&self, ids: &[String], proxy: Option<ObjectPrx>) {
        self.entries.send_modify(|e| {
            for id in ids {
                match &proxy {
                    Some(p) => e.adapters.insert(id.clone(), p.clone()),
                    None => e.adapters.remove(id),
                };
            }
        });
    }

    /// Waits (at most `limit`) until none of `ids` is registered.
    async fn wait_unregistered(&self, ids: &[&str], limit: Duration) -> bool {
        let mut rx = self.entries.subscribe();
        let gone = rx.wait_for(|e| ids.iter().all(|id| !e.adapters.contains_key(*id)));
        tokio::time::timeout(limit, gone).await.is_ok()
    }
}

/// The registry servant.
#[derive(Debug)]
struct RegistryI(Arc<ServerLocatorRegistry>);

impl ice::LocatorRegistry for RegistryI {
    async fn set_adapter_direct_proxy(
        &self,
        id: String,
        proxy: Option<ObjectPrx>,
        _: &Current,
    ) -> Result<(), locator_registry::SetAdapterDirectProxyError> {
        self.0.set_adapters(&[id], proxy);
        Ok(())
    }
    async fn set_replicated_adapter_direct_proxy(
        &self,
        adapter_id: String,
        replica_group_id: String,
        proxy: Option<ObjectPrx>,
        _: &Current,
    ) -> Result<(), locator_registry::SetReplicatedAdapterDirectProxyError> {
        self.0.set_adapters(&[adapter_id, replica_group_id], proxy);
        Ok(())
    }
    async fn set_server_process_proxy(
        &self,
        _id: String,
        _proxy: Option<ice::ProcessPrx>,
        _: &Current,
    ) -> Result<(), locator_registry::SetServerProcessProxyError> {
        Ok(())
    }
}

impl test::TestLocatorRegistry for RegistryI {
    async fn add_object(&self, obj: Option<ObjectPrx>, _: &Current) -> Res<()> {
        if let Some(obj) = obj {
            self.0.add_object(obj);
        }
        Ok(())
    }
}

/// The locator servant: answers from the registry and counts the lookups.
#[derive(Debug)]
struct LocatorI {
    registry: Arc<ServerLocatorRegistry>,
    registry_prx: ice::LocatorRegistryPrx,
    requests: AtomicI32,
}

impl ice::Locator for LocatorI {
    async fn find_object_by_id(
        &self,
        id: ice::Identity,
        _: &Current,
    ) -> Result<Option<ObjectPrx>, locator::FindObjectByIdError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        match self.registry.object(&Identity::new(id.name, id.category)) {
            Some(p) => Ok(Some(p)),
            None => Err(ice::ObjectNotFoundException {}.into()),
        }
    }
    async fn find_adapter_by_id(
        &self,
        id: String,
        current: &Current,
    ) -> Result<Option<ObjectPrx>, locator::FindAdapterByIdError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        // As ZeroC's C++ ServerLocator.cpp (its C++ client's "locator encoding resolution"):
        // these two ids name `TestAdapter`, and are asked for only with encoding 1.0.
        if id == "TestAdapter10" || id == "TestAdapter10-2" {
            if current.encoding != floe::EncodingVersion::V1_0 {
                return Err(Error::UnknownException(format!(
                    "`{id}` looked up with encoding {}.{}, not 1.0",
                    current.encoding.major, current.encoding.minor
                ))
                .into());
            }
            return match self.registry.adapter("TestAdapter") {
                Some(p) => Ok(Some(p)),
                None => Err(ice::AdapterNotFoundException {}.into()),
            };
        }
        match self.registry.adapter(&id) {
            Some(p) => Ok(Some(p)),
            None => Err(ice::AdapterNotFoundException {}.into()),
        }
    }
    async fn get_registry(&self, _: &Current) -> Res<Option<ice::LocatorRegistryPrx>> {
        Ok(Some(self.registry_prx.clone()))
    }
}

impl test::TestLocator for LocatorI {
    async fn get_request_count(&self, _: &Current) -> Res<i32> {
        Ok(self.requests.load(Ordering::SeqCst))
    }
}

/// `hello`, which does nothing but answer.
#[derive(Debug)]
struct HelloI;

impl test::Hello for HelloI {
    async fn say_hello(&self, _: &Current) -> Res<()> {
        Ok(())
    }
}

/// `test`, `test2` and `test3` of a server.
#[derive(Debug)]
struct TestI {
    adapter1: ObjectAdapter,
    adapter2: ObjectAdapter,
    registry: Arc<ServerLocatorRegistry>,
}

impl test::TestIntf for TestI {
    async fn shutdown(&self, _: &Current) -> Res<()> {
        self.adapter1.communicator().shutdown();
        Ok(())
    }
    async fn get_hello(&self, _: &Current) -> Res<Option<HelloPrx>> {
        let hello = self.adapter1.create_indirect_proxy(hello_id());
        Ok(Some(HelloPrx::unchecked_cast(hello)))
    }
    async fn get_replicated_hello(&self, _: &Current) -> Res<Option<HelloPrx>> {
        let hello = self.adapter1.create_proxy(hello_id());
        Ok(Some(HelloPrx::unchecked_cast(hello)))
    }
    async fn migrate_hello(&self, _: &Current) -> Res<()> {
        let id = hello_id();
        let (from, to) = if self.adapter1.find(&id).is_some() {
            (&self.adapter1, &self.adapter2)
        } else {
            (&self.adapter2, &self.adapter1)
        };
        let servant = from.remove(&id)?;
        self.registry.add_object(to.add(servant, id)?);
        Ok(())
    }
}

fn hello_id() -> Identity {
    Identity::new("hello", "")
}

/// The ids a server's adapters register under.
const SERVER_ADAPTER_IDS: &[&str] = &["TestAdapter", "TestAdapter2", "ReplicatedAdapter"];

/// The servers started so far, and the port the next one starts at.
#[derive(Debug)]
struct Servers {
    communicators: Vec<Communicator>,
    next_port: i32,
}

/// `ServerManager`: starts a server, and at the end destroys them all and shuts down.
#[derive(Debug)]
struct ServerManagerI {
    helper: TestHelper,
    registry: Arc<ServerLocatorRegistry>,
    /// The properties each server's communicator starts from.
    properties: Properties,
    servers: Mutex<Servers>,
}

impl ServerManagerI {
    fn new(helper: &TestHelper, registry: Arc<ServerLocatorRegistry>) -> ServerManagerI {
        let properties = helper.properties().deep_clone();
        properties.set_property("TestAdapter.AdapterId", "TestAdapter");
        properties.set_property("TestAdapter.ReplicaGroupId", "ReplicatedAdapter");
        properties.set_property("TestAdapter2.AdapterId", "TestAdapter2");
        // The server's adapters register with the test's locator. ZeroC's server gives it to
        // each adapter (`setLocator`); Floe's adapters use their communicator's default one.
        properties.set_property(
            "Ice.Default.Locator",
            &format!("locator:{}", helper.endpoint(0)),
        );
        ServerManagerI {
            helper: helper.clone(),
            registry,
            properties,
            servers: Mutex::new(Servers {
                communicators: Vec::new(),
                next_port: 1,
            }),
        }
    }
}

impl test::ServerManager for ServerManagerI {
    async fn start_server(&self, _: &Current) -> Res<()> {
        let mut servers = self.servers.lock().await;
        // The client shut the previous server down. Its adapters unregister as they deactivate,
        // in the background (in Ice, shutdown returns once they have): the new server's
        // registrations must not be overtaken by them.
        for old in servers.communicators.drain(..) {
            old.wait_for_shutdown().await;
            let limit = Duration::from_secs(10);
            if !self
                .registry
                .wait_unregistered(SERVER_ADAPTER_IDS, limit)
                .await
            {
                return Err(Error::UnknownException(format!(
                    "the adapters of the previous server, shut down, are still registered after {} s",
                    limit.as_secs()
                )));
            }
            old.destroy().await;
        }

        let communicator = Communicator::with_properties(self.properties.deep_clone())?;
        servers.communicators.push(communicator.clone());
        let port = servers.next_port;
        servers.next_port += 2;
        let adapter1 = communicator
            .create_object_adapter_with_endpoints("TestAdapter", &self.helper.endpoint(port))
            .await?;
        let adapter2 = communicator
            .create_object_adapter_with_endpoints("TestAdapter2", &self.helper.endpoint(port + 1))
            .await?;

        let hello = Arc::new(test::HelloDispatcher(Arc::new(HelloI)));
        self.registry.add_object(adapter1.add(hello, hello_id())?);
        let object = Arc::new(test::TestIntfDispatcher(Arc::new(TestI {
            adapter1: adapter1.clone(),
            adapter2: adapter2.clone(),
            registry: self.registry.clone(),
        })));
        self.registry
            .add_object(adapter1.add(object.clone(), "test".parse()?)?);
        self.registry
            .add_object(adapter1.add(object.clone(), "test2".parse()?)?);
        adapter1.add(object, "test3".parse()?)?;

        // As Ice's activate, return only once the endpoints are registered.
        for adapter in [&adapter1, &adapter2] {
            adapter.activate()?;
            adapter.register_with_locator(true).await?;
        }
        Ok(())
    }

    async fn shutdown(&self, current: &Current) -> Res<()> {
        let communicators: Vec<Communicator> =
            self.servers.lock().await.communicators.drain(..).collect();
        for c in communicators {
            c.destroy().await;
        }
        current.adapter.communicator().shutdown();
        Ok(())
    }
}

fn main() -> ExitCode {
    floe_conformance::run(|| async {
        let helper = TestHelper::new(&[])?;
        let adapter = helper.adapter("ServerManager", 0).await?;

        let registry = Arc::new(ServerLocatorRegistry::new());
        let manager_id: Identity = "ServerManager".parse()?;
        registry.add_object(adapter.create_proxy(manager_id.clone()));
        adapter.add(
            Arc::new(test::ServerManagerDispatcher(Arc::new(
                ServerManagerI::new(&helper, registry.clone()),
            ))),
            manager_id,
        )?;
        let registry_prx = ice::LocatorRegistryPrx::unchecked_cast(adapter.add(
            Arc::new(test::TestLocatorRegistryDispatcher(Arc::new(RegistryI(
                registry.clone(),
            )))),
            "registry".parse()?,
        )?);
        adapter.add(
            Arc::new(test::TestLocatorDispatcher(Arc::new(LocatorI {
                registry,
                registry_prx,
                requests: AtomicI32::new(0),
            }))),
            "locator".parse()?,
        )?;

        adapter.activate()?;
        helper.ready("location");
        helper.wait_and_destroy().await;
        Ok(())
    })
}
