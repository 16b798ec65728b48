//! The [`Communicator`]: configuration, proxies from strings and properties, the outgoing
//! connection cache, object adapters, and an explicit, idempotent shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::adapter::ObjectAdapter;
use crate::connection::{self, AcmConfig};
use crate::endpoint::{DEFAULT_TIMEOUT_MS, parse_version};
use crate::error::{Error, Result};
use crate::identity::Identity;
pub use crate::instance::Communicator;
use crate::instance::{Instance, override_ms, raise_descriptor_limit};
use crate::properties::Properties;
use crate::protocol::{DEFAULT_MESSAGE_SIZE_MAX_KIB, message_size_max_bytes};
use crate::proxy::ObjectPrx;

/// Creates a communicator from command-line arguments (`--Ice.Config=`, `ICE_CONFIG`,
/// `--Ice.*` overrides; see [`Properties::from_args`]). The Ice options are removed from `args`.
pub fn initialize(args: &mut Vec<String>) -> Result<Communicator> {
    Communicator::with_properties(Properties::from_args(args)?)
}

impl Communicator {
    /// Creates a communicator configured by `properties`. The first one of the process raises
    /// the soft limit on open file descriptors to the hard one (a server that accepts many
    /// connections runs out of descriptors at the usual soft limit of 1,024 long before it
    /// runs out of anything else).
    pub fn with_properties(properties: Properties) -> Result<Communicator> {
        raise_descriptor_limit();
        let p = &properties;
        let default_encoding = {
            let s = p.get_property_with_default("Ice.Default.EncodingVersion", "1.1");
            let v = parse_version(&s)
                .map_err(|m| Error::Initialization(format!("Ice.Default.EncodingVersion: {m}")))?;
            if v.major != 1 || v.minor > 1 {
                return Err(Error::Initialization(format!(
                    "Ice.Default.EncodingVersion {v} is not supported"
                )));
            }
            v
        };
        let default_timeout =
            p.get_property_as_int_with_default("Ice.Default.Timeout", DEFAULT_TIMEOUT_MS);
        let dflt_client = AcmConfig::from_properties(p, "Ice.ACM", AcmConfig::default_for(false));
        let dflt_server = AcmConfig::from_properties(p, "Ice.ACM", AcmConfig::default_for(true));
        let retry_intervals = {
            let list = p.get_property_as_list_with_default("Ice.RetryIntervals", &["0"]);
            let v: Vec<i32> = list.iter().filter_map(|s| s.parse().ok()).collect();
            if v.len() == 1 && v[0] == -1 {
                Vec::new()
            } else {
                v.into_iter().map(|x| x.max(0)).collect()
            }
        };
        let (shutdown, _) = watch::channel(false);
        let mut instance = Instance {
            self_ref: std::sync::Weak::new(),
            default_encoding,
            default_host: p.get_property("Ice.Default.Host"),
            default_timeout: if default_timeout < 1 && default_timeout != -1 {
                DEFAULT_TIMEOUT_MS
            } else {
                default_timeout
            },
            default_invocation_timeout: p
                .get_property_as_int_with_default("Ice.Default.InvocationTimeout", -1),
            override_timeout: override_ms(p, "Ice.Override.Timeout"),
            override_connect_timeout: override_ms(p, "Ice.Override.ConnectTimeout"),
            override_compress: {
                let v = p.get_property("Ice.Override.Compress");
                if v.is_empty() {
                    None
                } else {
                    Some(p.get_property_as_int("Ice.Override.Compress") > 0)
                }
            },
            max_message_size: message_size_max_bytes(p.get_property_as_int_with_default(
                "Ice.MessageSizeMax",
                DEFAULT_MESSAGE_SIZE_MAX_KIB,
            )),
            client_acm: AcmConfig::from_properties(p, "Ice.ACM.Client", dflt_client),
            server_acm: AcmConfig::from_properties(p, "Ice.ACM.Server", dflt_server),
            connection_limits: connection::Limits::from_properties(p),
            close_timeout: Duration::from_millis(
                p.get_property_as_int_with_default("Ice.Override.CloseTimeout", 10000)
                    .max(1) as u64,
            ),
            retry_intervals,
            trace_network: p.get_property_as_int("Ice.Trace.Network"),
            trace_protocol: p.get_property_as_int("Ice.Trace.Protocol"),
            trace_retry: p.get_property_as_int("Ice.Trace.Retry"),
            warn_dispatch: p.get_property_as_int_with_default("Ice.Warn.Dispatch", 1),
            default_format: if p.get_property_as_int("Ice.Default.SlicedFormat") > 0 {
                crate::encoding::FormatType::Sliced
            } else {
                crate::encoding::FormatType::Compact
            },
            accept_class_cycles: p.get_property_as_int("Ice.AcceptClassCycles") > 0,
            connections: Mutex::new(HashMap::new()),
            adapters: Mutex::new(HashMap::new()),
            unnamed_adapters: Mutex::new(Vec::new()),
            udp_sockets: tokio::sync::Mutex::new(HashMap::new()),
            ssl: std::sync::OnceLock::new(),
            batches: Mutex::new(Vec::new()),
            locations: Mutex::new(HashMap::new()),
            admin: std::sync::OnceLock::new(),
            shutdown,
            destroyed: AtomicBool::new(false),
            properties,
        };
        Ok(Communicator {
            inner: Arc::new_cyclic(move |self_ref| {
                instance.self_ref = self_ref.clone();
                instance
            }),
        })
    }

    /// Runs `f` so that proxies decoded inside it (with `InputStream::read`) belong to this
    /// communicator. Typed invocations and dispatch do this by themselves; use it when decoding
    /// raw encapsulations (for instance in a [`crate::Blobject`]).
    pub fn decode_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        crate::proxy::with_decode_instance(&self.inner, f)
    }

    /// The communicator's properties.
    pub fn properties(&self) -> &Properties {
        &self.inner.properties
    }

    /// Parses a stringified proxy (`id -t -e 1.1:tcp -h host -p port`). An empty string (or
    /// `""`) is Ice's null proxy and gives `Ok(None)`.
    pub fn string_to_proxy(&self, s: &str) -> Result<Option<ObjectPrx>> {
        ObjectPrx::parse(self.inner.clone(), s)
    }

    /// The string form of a proxy (Ice's `proxyToString`); `""` for a null proxy.
    pub fn proxy_to_string(&self, proxy: Option<&ObjectPrx>) -> String {
        proxy.map(|p| p.to_string()).unwrap_or_default()
    }

    /// The proxy named by property `name`, or `None` when it is unset. `<name>.InvocationTimeout`
    /// applies if set.
    pub fn property_to_proxy(&self, name: &str) -> Result<Option<ObjectPrx>> {
        let value = self.inner.properties.get_property(name);
        if value.is_empty() {
            return Ok(None);
        }
        let prx = self.string_to_proxy(&value)?;
        let timeout = self
            .inner
            .properties
            .get_property_as_int_with_default(&format!("{name}.InvocationTimeout"), 0);
        Ok(prx.map(|p| {
            if timeout != 0 {
                p.ice_invocation_timeout(timeout)
            } else {
                p
            }
        }))
    }

    /// Ice's `identityToString` (Unicode mode).
    pub fn identity_to_string(&self, id: &Identity) -> String {
        id.to_string()
    }

    /// Ice's `stringToIdentity`.
    pub fn string_to_identity(&self, s: &str) -> Result<Identity> {
        s.parse()
    }

    /// Creates an object adapter listening on `<name>.Endpoints`.
    pub async fn create_object_adapter(&self, name: &str) -> Result<ObjectAdapter> {
        let endpoints = self
            .inner
            .properties
            .get_property(&format!("{name}.Endpoints"));
        self.create_object_adapter_with_endpoints(name, &endpoints)
            .await
    }

    /// Creates an object adapter listening on `endpoints` (for instance `tcp -h 127.0.0.1 -p 0`).
    pub async fn create_object_adapter_with_endpoints(
        &self,
        name: &str,
        endpoints: &str,
    ) -> Result<ObjectAdapter> {
        self.inner.check_not_destroyed()?;
        if !name.is_empty() && self.inner.adapters.lock().contains_key(name) {
            return Err(Error::AlreadyRegistered {
                kind: "object adapter".into(),
                id: name.to_string(),
            });
        }
        if !name.is_empty() {
            self.inner
                .properties
                .set_property(&format!("{name}.Endpoints"), endpoints);
        }
        let adapter = ObjectAdapter::create(self.inner.clone(), name, endpoints).await?;
        if name.is_empty() {
            self.inner
                .unnamed_adapters
                .lock()
                .push(Arc::new(adapter.clone()));
        } else {
            self.inner
                .adapters
                .lock()
                .insert(name.to_string(), Arc::new(adapter.clone()));
        }
        Ok(adapter)
    }

    /// Sends the queued requests of every batch-oneway and batch-datagram proxy of this
    /// communicator. Returns the first error, after trying them all.
    pub async fn flush_batch_requests(&self) -> Result<()> {
        let refs: Vec<_> = std::mem::take(&mut *self.inner.batches.lock());
        let mut first_error = None;
        for r in refs
            .iter()
            .filter_map(|w| w.upgrade())
            .filter_map(|r| r.downcast::<crate::proxy::Reference>().ok())
        {
            if let Err(e) = ObjectPrx::from_reference(r)
                .ice_flush_batch_requests()
                .await
            {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Deactivates every object adapter. Idempotent.
    pub fn shutdown(&self) {
        for a in self.inner.all_adapters() {
            a.deactivate();
        }
        self.inner.shutdown.send_replace(true);
    }

    /// Whether [`Communicator::shutdown`] was called.
    pub fn is_shutdown(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    /// Waits until [`Communicator::shutdown`] is called and every adapter has finished.
    pub async fn wait_for_shutdown(&self) {
        let mut rx = self.inner.shutdown.subscribe();
        let _ = rx.wait_for(|s| *s).await;
        for a in self.inner.all_adapters() {
            a.wait_for_deactivate().await;
        }
    }

    /// Shuts down, closes every outgoing connection gracefully, and makes later calls fail with
    /// [`Error::CommunicatorDestroyed`]. Idempotent.
    pub async fn destroy(&self) {
        self.shutdown();
        self.wait_for_shutdown().await;
        self.inner.destroyed.store(true, Ordering::Release);
        let slots: Vec<_> = self
            .inner
            .connections
            .lock()
            .drain()
            .map(|(_, v)| v)
            .collect();
        let mut conns = Vec::new();
        for slot in slots {
            if let Some(c) = slot.lock().await.take() {
                c.abort_and_close(Error::CommunicatorDestroyed);
                conns.push(c);
            }
        }
        for c in conns {
            let _ = tokio::time::timeout(self.inner.close_timeout, c.wait_closed()).await;
        }
        self.inner.adapters.lock().clear();
        self.inner.unnamed_adapters.lock().clear();
    }
}
