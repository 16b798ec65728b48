//! The admin object of a communicator, as Ice's: one Ice object, `<Ice.Admin.InstanceName>/admin`,
//! on the adapter `Ice.Admin` (listening on `Ice.Admin.Endpoints`), whose facets administer the
//! process.
//!
//! Built-in facets:
//! - `Process` (`::Ice::Process`): `shutdown` shuts the communicator down, `writeMessage` writes
//!   to standard output (fd 1) or standard error (fd 2).
//! - `Properties` (`::Ice::PropertiesAdmin`): `getProperty`, `getPropertiesForPrefix`,
//!   `setProperties`; each `setProperties` is reported to the callbacks added with
//!   [`Communicator::add_properties_update_callback`], with what really changed (nothing when
//!   it set the values already there), as Ice does.
//!
//! Applications add facets of their own with [`Communicator::add_admin_facet`].
//! `Ice.Admin.Facets` (names separated by spaces or commas) limits which facets, built-in or
//! not, are served; unset, every facet is. The admin object exists when `Ice.Admin.Enabled` is
//! above zero, or when it is unset and `Ice.Admin.Endpoints` is set. Ice creates it when the
//! communicator starts unless `Ice.Admin.DelayCreation` is set; Floe creates it at the first
//! [`Communicator::get_admin`], because creating an adapter is asynchronous and creating a
//! communicator is not. `Ice.Admin.InstanceName` names it; unset, a UUID does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::adapter::{ObjectAdapter, uuid_v4};
use crate::communicator::Communicator;
use crate::dispatch::{Dispatcher, IncomingRequest, OutgoingResponse, dispatch_builtin};
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::protocol::OperationMode;
use crate::proxy::ObjectPrx;
use futures_util::future::BoxFuture;

/// Called with the properties a `setProperties` changed (a removed one maps to "").
pub type PropertiesUpdateCallback = Arc<dyn Fn(&BTreeMap<String, String>) + Send + Sync>;

const PROCESS_TYPE_ID: &str = "::Ice::Process";
const PROCESS_TYPE_IDS: &[&str] = &["::Ice::Object", "::Ice::Process"];
const PROPERTIES_TYPE_ID: &str = "::Ice::PropertiesAdmin";
const PROPERTIES_TYPE_IDS: &[&str] = &["::Ice::Object", "::Ice::PropertiesAdmin"];

/// The admin state a communicator holds.
#[derive(Default)]
pub(crate) struct Admin {
    facets: Mutex<BTreeMap<String, Arc<dyn Dispatcher>>>,
    callbacks: Mutex<Vec<(u64, PropertiesUpdateCallback)>>,
    next_callback: std::sync::atomic::AtomicU64,
    /// The admin adapter and the admin object's identity, once created.
    created: tokio::sync::Mutex<Option<(ObjectAdapter, Identity)>>,
    builtins_added: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("facets", &self.facets.lock().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Facet names `Ice.Admin.Facets` allows (`None`: all).
fn allowed_facets(communicator: &Communicator) -> Option<Vec<String>> {
    let v = communicator.properties().get_property("Ice.Admin.Facets");
    let names: Vec<String> = v
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    (!names.is_empty()).then_some(names)
}

impl Communicator {
    fn admin_state(&self) -> &Admin {
        self.instance()
            .admin
            .get_or_init(|| Arc::new(Admin::default()))
            .downcast_ref::<Admin>()
            .expect("the instance's admin slot holds only the admin state")
    }

    fn downgrade(&self) -> WeakCommunicator {
        WeakCommunicator(Arc::downgrade(self.instance()))
    }

    fn add_builtin_facets(&self) {
        let admin = self.admin_state();
        if admin
            .builtins_added
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        let weak = self.downgrade();
        let mut facets = admin.facets.lock();
        facets
            .entry("Process".into())
            .or_insert_with(|| Arc::new(ProcessFacet(weak.clone())));
        facets
            .entry("Properties".into())
            .or_insert_with(|| Arc::new(PropertiesFacet(weak)));
    }

    fn admin_enabled(&self) -> bool {
        let props = self.properties();
        let enabled = props.get_property("Ice.Admin.Enabled");
        if enabled.is_empty() {
            !props.get_property("Ice.Admin.Endpoints").is_empty()
        } else {
            props.get_property_as_int("Ice.Admin.Enabled") > 0
        }
    }

    /// The admin object (`<Ice.Admin.InstanceName>/admin` on the adapter `Ice.Admin`), created
    /// at the first call; `None` when the admin object is not enabled.
    pub async fn get_admin(&self) -> Result<Option<ObjectPrx>> {
        if !self.admin_enabled() {
            return Ok(None);
        }
        self.add_builtin_facets();
        let mut created = self.admin_state().created.lock().await;
        if let Some((adapter, id)) = created.as_ref() {
            return Ok(Some(adapter.create_proxy(id.clone())));
        }
        let name = {
            let n = self.properties().get_property("Ice.Admin.InstanceName");
            if n.is_empty() { uuid_v4() } else { n }
        };
        let id = Identity::new("admin", name);
        let adapter = self.create_object_adapter("Ice.Admin").await?;
        adapter.add_default_servant(Arc::new(AdminObject(self.downgrade())), &id.category)?;
        adapter.activate()?;
        let proxy = adapter.create_proxy(id.clone());
        *created = Some((adapter, id));
        Ok(Some(proxy))
    }

    /// Adds `servant` as admin facet `facet`; fails when the facet exists.
    pub fn add_admin_facet(&self, servant: Arc<dyn Dispatcher>, facet: &str) -> Result<()> {
        if self.admin_enabled() {
            self.add_builtin_facets();
        }
        let mut facets = self.admin_state().facets.lock();
        if facets.contains_key(facet) {
            return Err(Error::AlreadyRegistered {
                kind: "facet".into(),
                id: facet.to_string(),
            });
        }
        facets.insert(facet.to_string(), servant);
        Ok(())
    }

    /// Removes admin facet `facet` and returns it; fails when there is none.
    pub fn remove_admin_facet(&self, facet: &str) -> Result<Arc<dyn Dispatcher>> {
        self.admin_state()
            .facets
            .lock()
            .remove(facet)
            .ok_or_else(|| Error::NotRegistered {
                kind: "facet".into(),
                id: facet.to_string(),
            })
    }

    /// Admin facet `facet`, if there is one.
    pub fn find_admin_facet(&self, facet: &str) -> Option<Arc<dyn Dispatcher>> {
        self.admin_state().facets.lock().get(facet).cloned()
    }

    /// The names of every admin facet.
    pub fn admin_facet_names(&self) -> Vec<String> {
        self.admin_state().facets.lock().keys().cloned().collect()
    }

    /// Calls `callback` after each `setProperties` on the `Properties` facet that changed
    /// something; returns a number for [`Communicator::remove_properties_update_callback`].
    pub fn add_properties_update_callback(&self, callback: PropertiesUpdateCallback) -> u64 {
        let admin = self.admin_state();
        let n = admin
            .next_callback
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        admin.callbacks.lock().push((n, callback));
        n
    }

    /// Stops calling the callback numbered `n`.
    pub fn remove_properties_update_callback(&self, n: u64) {
        self.admin_state().callbacks.lock().retain(|(k, _)| *k != n);
    }
}

/// A handle on the communicator that does not keep it alive.
#[derive(Clone)]
struct WeakCommunicator(std::sync::Weak<crate::instance::Instance>);

impl WeakCommunicator {
    fn upgrade(&self) -> Option<Communicator> {
        self.0.upgrade().map(Communicator::from_instance)
    }
}

/// The admin object: the default servant of its category on the admin adapter, answering for
/// the name `admin` with the facet the request names.
struct AdminObject(WeakCommunicator);

impl Dispatcher for AdminObject {
    fn dispatch<'a>(
        &'a self,
        request: &'a mut IncomingRequest,
    ) -> BoxFuture<'a, Result<OutgoingResponse>> {
        Box::pin(async move {
            let communicator = self.0.upgrade().ok_or(Error::CommunicatorDestroyed)?;
            let current = request.current();
            let failed = || crate::error::RequestFailed {
                name: current.id.name.clone(),
                category: current.id.category.clone(),
                facet: current.facet.clone(),
                operation: current.operation.clone(),
            };
            if current.id.name != "admin" {
                return Err(Error::ObjectNotExist(Box::new(failed())));
            }
            if let Some(allowed) = allowed_facets(&communicator) {
                if !allowed.contains(&current.facet) {
                    return Err(Error::FacetNotExist(Box::new(failed())));
                }
            }
            let servant = communicator
                .admin_state()
                .facets
                .lock()
                .get(&current.facet)
                .cloned();
            match servant {
                Some(servant) => servant.dispatch(request).await,
                None => Err(Error::FacetNotExist(Box::new(failed()))),
            }
        })
    }
}

/// `::Ice::Process`.
struct ProcessFacet(WeakCommunicator);

impl Dispatcher for ProcessFacet {
    fn dispatch<'a>(
        &'a self,
        request: &'a mut IncomingRequest,
    ) -> BoxFuture<'a, Result<OutgoingResponse>> {
        Box::pin(async move {
            match request.current().operation.as_str() {
                "shutdown" => {
                    request.check_mode(OperationMode::Normal)?;
                    request.read_empty_params()?;
                    if let Some(c) = self.0.upgrade() {
                        c.shutdown();
                    }
                    Ok(request.reply(None, |_| {}))
                }
                "writeMessage" => {
                    request.check_mode(OperationMode::Normal)?;
                    let (message, fd) =
                        request.read_params(|is| Ok((is.read::<String>()?, is.read::<i32>()?)))?;
                    use std::io::Write;
                    match fd {
                        1 => {
                            let mut out = std::io::stdout().lock();
                            let _ = writeln!(out, "{message}");
                            let _ = out.flush();
                        }
                        2 => {
                            let mut err = std::io::stderr().lock();
                            let _ = writeln!(err, "{message}");
                        }
                        _ => {}
                    }
                    Ok(request.reply(None, |_| {}))
                }
                _ => dispatch_builtin(request, PROCESS_TYPE_ID, PROCESS_TYPE_IDS).await,
            }
        })
    }
}

/// `::Ice::PropertiesAdmin`.
struct PropertiesFacet(WeakCommunicator);

impl Dispatcher for PropertiesFacet {
    fn dispatch<'a>(
        &'a self,
        request: &'a mut IncomingRequest,
    ) -> BoxFuture<'a, Result<OutgoingResponse>> {
        Box::pin(async move {
            let communicator = self.0.upgrade().ok_or(Error::CommunicatorDestroyed)?;
            let props = communicator.properties();
            match request.current().operation.as_str() {
                "getProperty" => {
                    request.check_mode(OperationMode::Normal)?;
                    let key = request.read_params(|is| is.read::<String>())?;
                    let value = props.get_property(&key);
                    Ok(request.reply(None, |os| os.write(value.as_str())))
                }
                "getPropertiesForPrefix" => {
                    request.check_mode(OperationMode::Normal)?;
                    let prefix = request.read_params(|is| is.read::<String>())?;
                    let all: HashMap<String, String> = props
                        .get_properties_for_prefix(&prefix)
                        .into_iter()
                        .collect();
                    Ok(request.reply(None, |os| os.write(&all)))
                }
                "setProperties" => {
                    request.check_mode(OperationMode::Normal)?;
                    let wanted = request.read_params(|is| is.read::<HashMap<String, String>>())?;
                    let mut changes = BTreeMap::new();
                    for (key, value) in wanted {
                        if props.get_property(&key) != value {
                            props.set_property(&key, &value);
                            changes.insert(key, value);
                        }
                    }
                    // As Ice, every call is reported, with what changed (maybe nothing).
                    {
                        let callbacks: Vec<PropertiesUpdateCallback> = communicator
                            .admin_state()
                            .callbacks
                            .lock()
                            .iter()
                            .map(|(_, c)| c.clone())
                            .collect();
                        for callback in callbacks {
                            callback(&changes);
                        }
                    }
                    Ok(request.reply(None, |_| {}))
                }
                _ => dispatch_builtin(request, PROPERTIES_TYPE_ID, PROPERTIES_TYPE_IDS).await,
            }
        })
    }
}
