//! A Telegraph client: a Floe peer that serves its `Inbox`, logs in to the managers and keeps
//! its session alive, seals and delivers messages straight to their recipients, retries what
//! could not be delivered (with backoff, at once when the recipient comes online, and after a
//! restart), and exchanges delivered and read receipts.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use floe::codegen::Current;
use floe::{Communicator, ObjectAdapter, Properties, Proxy};
use parking_lot::Mutex;
use tokio::sync::{Notify, broadcast};
use tracing::{debug, info, warn};

use crate::crypto::{self, Identity, MAX_TEXT};
use crate::slice::telegraph::{
    self as api, InboxPrx, ManagerPrx, ReceiptKind, UserInfo, inbox as inbox_ops, manager as ops,
};
use crate::store::{Contact, Message, Outgoing, State, Store, StoreError};

/// A client's settings (`Telegraph.*` properties).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// All properties (Ice's included).
    pub properties: Properties,
    /// The user's name.
    pub name: String,
    /// The user's password.
    pub password: String,
    /// The managers (`Telegraph.Managers`: a proxy with every manager's endpoints).
    pub managers: String,
    /// The client's data directory (`Telegraph.Client.DataDir`, default `telegraph-<name>`).
    pub data_dir: PathBuf,
    /// Endpoints of the client's adapter (`Telegraph.Client.Endpoints`).
    pub endpoints: String,
    /// Heartbeat period (`Telegraph.HeartbeatInterval`, ms).
    pub heartbeat: Duration,
    /// First and longest pause between delivery attempts to one recipient
    /// (`Telegraph.RetryMin` / `Telegraph.RetryMax`, ms).
    pub retry: (Duration, Duration),
    /// The broker's topic manager, to learn of presence changes (`IceStorm.TopicManager.Proxy`).
    pub topic_manager: Option<String>,
    /// The presence topic (`Telegraph.PresenceTopic`).
    pub presence_topic: String,
}

fn millis(p: &Properties, key: &str, default: u64) -> Duration {
    Duration::from_millis(
        p.get_property(key)
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|v| *v > 0)
            .unwrap_or(default),
    )
}

impl ClientConfig {
    /// Reads the settings for user `name`.
    pub fn from_properties(
        properties: Properties,
        name: &str,
        password: &str,
    ) -> Result<ClientConfig, ClientError> {
        crypto::valid_name(name).map_err(ClientError::Invalid)?;
        let managers = properties.get_property("Telegraph.Managers");
        let data_dir = Some(properties.get_property("Telegraph.Client.DataDir"))
            .filter(|s| !s.trim().is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(format!("telegraph-{name}")));
        Ok(ClientConfig {
            name: name.to_string(),
            password: password.to_string(),
            managers,
            data_dir,
            endpoints: properties
                .get_property_with_default("Telegraph.Client.Endpoints", "tcp -h 127.0.0.1 -p 0"),
            heartbeat: millis(&properties, "Telegraph.HeartbeatInterval", 5_000),
            retry: (
                millis(&properties, "Telegraph.RetryMin", 200),
                millis(&properties, "Telegraph.RetryMax", 30_000),
            ),
            topic_manager: Some(properties.get_property("IceStorm.TopicManager.Proxy"))
                .filter(|s| !s.trim().is_empty()),
            presence_topic: properties
                .get_property_with_default("Telegraph.PresenceTopic", "TelegraphPresence"),
            properties,
        })
    }
}

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A bad argument (name, text, configuration).
    #[error("{0}")]
    Invalid(String),
    /// The managers refused or could not be reached.
    #[error("managers: {0}")]
    Managers(String),
    /// The contact's keys changed since they were pinned.
    #[error(
        "{0}'s keys changed since they were pinned: check with them, then `telegraph trust {0}`"
    )]
    KeyChanged(String),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The runtime failed.
    #[error(transparent)]
    Runtime(#[from] floe::Error),
}

/// Something that happened, for a user interface.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A message arrived.
    Received(Message),
    /// One of this client's messages changed state (delivered, read).
    Updated(Message),
    /// A user went online or offline.
    Presence(UserInfo),
    /// A contact's keys changed.
    KeyChanged(String),
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn manager_error(e: impl std::fmt::Debug) -> ClientError {
    let text = format!("{e:?}");
    // Generated exceptions print as their type; their reason is in the Debug form.
    ClientError::Managers(text)
}

struct Inner {
    config: ClientConfig,
    identity: Identity,
    store: Store,
    communicator: Communicator,
    adapter: ObjectAdapter,
    inbox: InboxPrx,
    managers: ManagerPrx,
    session: Mutex<Option<String>>,
    /// Recipients' inboxes as last looked up (cleared for a recipient on a failed delivery).
    addresses: Mutex<HashMap<String, InboxPrx>>,
    /// When each recipient may be tried again, and the current pause.
    backoff: Mutex<HashMap<String, (Instant, Duration)>>,
    wake: Notify,
    events: broadcast::Sender<Event>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// A running client.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.inner.config.name)
            .finish()
    }
}

impl Client {
    /// Opens the client's store (making its keys on first use) and serves its inbox; registers
    /// the user first when `register` is set; logs in; starts heartbeats and deliveries.
    pub async fn start(config: ClientConfig, register: bool) -> Result<Client, ClientError> {
        let store = {
            let dir = config.data_dir.clone();
            tokio::task::spawn_blocking(move || Store::open(&dir))
                .await
                .map_err(|e| ClientError::Invalid(e.to_string()))??
        };
        let identity = store.identity(&config.name)?;
        let communicator = Communicator::with_properties(config.properties.clone())?;
        let started = Self::start_on(config, store, identity, communicator.clone(), register).await;
        if started.is_err() {
            communicator.destroy().await;
        }
        started
    }

    async fn start_on(
        config: ClientConfig,
        store: Store,
        identity: Identity,
        communicator: Communicator,
        register: bool,
    ) -> Result<Client, ClientError> {
        let adapter = communicator
            .create_object_adapter_with_endpoints("Telegraph.Client", &config.endpoints)
            .await?;
        let managers = if config.managers.trim().is_empty() {
            // No managers configured: the UDP lookup.
            adapter.activate()?;
            let p = &config.properties;
            let targets = crate::discovery::targets(
                &p.get_property_with_default("Telegraph.Discovery.Hosts", "127.0.0.1"),
                &p.get_property_with_default("Telegraph.Discovery.Ports", "4062"),
            )
            .map_err(ClientError::Invalid)?;
            let wait = millis(p, "Telegraph.Discovery.Timeout", 1_000);
            crate::discovery::find_managers(&communicator, &adapter, &targets, wait)
                .await?
                .ok_or_else(|| {
                    ClientError::Managers(
                        "Telegraph.Managers is not set and no manager answered the UDP lookup"
                            .into(),
                    )
                })?
        } else {
            let prx = communicator
                .string_to_proxy(&config.managers)
                .map_err(|e| ClientError::Invalid(format!("Telegraph.Managers: {e}")))?
                .ok_or_else(|| ClientError::Invalid("Telegraph.Managers is a null proxy".into()))?;
            ManagerPrx::unchecked_cast(prx)
        };
        let managers = ManagerPrx::unchecked_cast(managers.ice_invocation_timeout(10_000));
        let (events, _) = broadcast::channel(1024);
        let inbox_id: floe::Identity = format!("inbox/{}", config.name).parse()?;
        let inbox = InboxPrx::unchecked_cast(adapter.create_proxy(inbox_id.clone()));
        let client = Client {
            inner: Arc::new(Inner {
                config,
                identity,
                store,
                communicator,
                adapter: adapter.clone(),
                inbox,
                managers,
                session: Mutex::new(None),
                addresses: Mutex::new(HashMap::new()),
                backoff: Mutex::new(HashMap::new()),
                wake: Notify::new(),
                events,
                tasks: Mutex::new(Vec::new()),
            }),
        };
        adapter.add(
            Arc::new(api::InboxDispatcher(Arc::new(InboxI {
                client: Arc::downgrade(&client.inner),
            }))),
            inbox_id,
        )?;
        if client.inner.config.topic_manager.is_some() {
            client.subscribe_presence().await;
        }
        adapter.activate()?;
        if register {
            client.register().await?;
        }
        client.login().await?;
        let (c1, c2) = (client.clone(), client.clone());
        client
            .inner
            .tasks
            .lock()
            .push(tokio::spawn(async move { c1.heartbeat_loop().await }));
        client
            .inner
            .tasks
            .lock()
            .push(tokio::spawn(async move { c2.delivery_loop().await }));
        Ok(client)
    }

    /// The user's name.
    pub fn name(&self) -> &str {
        &self.inner.config.name
    }

    /// The client's store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// This client's inbox proxy.
    pub fn inbox(&self) -> &InboxPrx {
        &self.inner.inbox
    }

    /// Events as they happen.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    async fn register(&self) -> Result<(), ClientError> {
        let c = &self.inner.config;
        let id = &self.inner.identity;
        match self
            .inner
            .managers
            .register(
                &c.name,
                &c.password,
                id.identity_public().as_ref(),
                id.exchange_public().as_ref(),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => Err(manager_error(e)),
        }
    }

    async fn login(&self) -> Result<(), ClientError> {
        let c = &self.inner.config;
        let token = self
            .inner
            .managers
            .login(&c.name, &c.password, Some(self.inner.inbox.clone()))
            .await
            .map_err(manager_error)?;
        *self.inner.session.lock() = Some(token);
        info!(target: "telegraph::client", user = %c.name, inbox = %self.inner.inbox.as_object(), "logged in");
        Ok(())
    }

    fn session(&self) -> Result<String, ClientError> {
        self.inner
            .session
            .lock()
            .clone()
            .ok_or_else(|| ClientError::Managers("not logged in".into()))
    }

    async fn heartbeat_loop(self) {
        let mut timer = tokio::time::interval(self.inner.config.heartbeat);
        loop {
            timer.tick().await;
            let Ok(session) = self.session() else {
                continue;
            };
            match self
                .inner
                .managers
                .heartbeat(&session, Some(self.inner.inbox.clone()))
                .await
            {
                Ok(()) => {}
                Err(ops::HeartbeatError::Unauthorized(_)) => {
                    // The session expired (the client was away for long): log in again.
                    if let Err(e) = self.login().await {
                        warn!(target: "telegraph::client", error = %e, "login again failed");
                    }
                }
                Err(e) => debug!(target: "telegraph::client", error = ?e, "heartbeat failed"),
            }
        }
    }

    /// Every account, as the managers have it.
    pub async fn users(&self) -> Result<Vec<UserInfo>, ClientError> {
        self.inner
            .managers
            .users(&self.session()?)
            .await
            .map_err(manager_error)
    }

    /// Looks `name` up and pins its keys at first sight; a change of keys is recorded and
    /// reported (the old keys stay pinned).
    pub async fn lookup(&self, name: &str) -> Result<UserInfo, ClientError> {
        let info = self
            .inner
            .managers
            .lookup(&self.session()?, name)
            .await
            .map_err(manager_error)?;
        if !info.inbox.is_empty()
            && let Ok(Some(p)) = self.inner.communicator.string_to_proxy(&info.inbox)
        {
            self.inner
                .addresses
                .lock()
                .insert(name.to_string(), InboxPrx::unchecked_cast(p));
        }
        let store = &self.inner.store;
        match store.contact(name)? {
            None => store.set_contact(
                name,
                &Contact {
                    identity_key: info.identity_key.clone(),
                    exchange_key: info.exchange_key.clone(),
                    changed_to: None,
                },
            )?,
            Some(mut c) => {
                let same =
                    c.identity_key == info.identity_key && c.exchange_key == info.exchange_key;
                let new = (info.identity_key.clone(), info.exchange_key.clone());
                if !same && c.changed_to.as_ref() != Some(&new) {
                    warn!(target: "telegraph::client", contact = %name, "the contact's keys changed");
                    c.changed_to = Some(new);
                    store.set_contact(name, &c)?;
                    let _ = self.inner.events.send(Event::KeyChanged(name.to_string()));
                }
            }
        }
        Ok(info)
    }

    /// Accepts the new keys of `name` after a change.
    pub fn trust(&self, name: &str) -> Result<bool, ClientError> {
        let store = &self.inner.store;
        let Some(mut c) = store.contact(name)? else {
            return Ok(false);
        };
        let Some((ik, xk)) = c.changed_to.take() else {
            return Ok(false);
        };
        c.identity_key = ik;
        c.exchange_key = xk;
        store.set_contact(name, &c)?;
        Ok(true)
    }

    async fn pinned(&self, name: &str) -> Result<Contact, ClientError> {
        let contact = match self.inner.store.contact(name)? {
            Some(c) => c,
            None => {
                self.lookup(name).await?;
                self.inner
                    .store
                    .contact(name)?
                    .ok_or_else(|| ClientError::Managers(format!("no keys for {name}")))?
            }
        };
        if contact.changed_to.is_some() {
            return Err(ClientError::KeyChanged(name.to_string()));
        }
        Ok(contact)
    }

    /// Seals `text` for `to`, stores it, and queues it for delivery (tried at once). Returns the
    /// message as stored (state Pending until delivered).
    pub async fn send(&self, to: &str, text: &str) -> Result<Message, ClientError> {
        crypto::valid_name(to).map_err(ClientError::Invalid)?;
        if to == self.name() {
            return Err(ClientError::Invalid(
                "a message to oneself is not sent".into(),
            ));
        }
        if text.len() > MAX_TEXT {
            return Err(ClientError::Invalid(format!(
                "a text of {} bytes (at most {MAX_TEXT})",
                text.len()
            )));
        }
        let contact = self.pinned(to).await?;
        let store = &self.inner.store;
        let counter = store.next_counter(to)?;
        let id = crypto::new_message_id();
        let sent_at = now_ms();
        let envelope = crypto::seal(
            &self.inner.identity,
            self.name(),
            to,
            &contact.exchange_key,
            &id,
            counter,
            sent_at,
            text,
        )
        .map_err(|e| ClientError::Invalid(e.to_string()))?;
        let message = Message {
            id,
            peer: to.to_string(),
            outgoing: true,
            counter,
            sent_at,
            stored_at: sent_at,
            text: text.to_string(),
            state: State::Pending,
        };
        store.put_message(&message)?;
        store.queue(to, &Outgoing::Message(envelope))?;
        store.flush().await?;
        self.inner.backoff.lock().remove(to);
        self.inner.wake.notify_one();
        Ok(message)
    }

    /// Marks every unread message from `peer` read and queues the read receipts.
    pub async fn mark_read(&self, peer: &str) -> Result<usize, ClientError> {
        let store = &self.inner.store;
        let mut n = 0;
        for m in store.conversation(peer)? {
            if !m.outgoing && m.state == State::Unread {
                store.advance(&m.id, State::Read)?;
                let receipt = crypto::sign_receipt(
                    &self.inner.identity,
                    &m.id,
                    self.name(),
                    peer,
                    ReceiptKind::Read,
                    now_ms(),
                );
                store.queue(peer, &Outgoing::Receipt(receipt))?;
                n += 1;
            }
        }
        if n > 0 {
            store.flush().await?;
            self.inner.wake.notify_one();
        }
        Ok(n)
    }

    /// Whether anything is waiting in the outbox.
    pub fn outbox_len(&self) -> usize {
        self.inner.store.outbox_len()
    }

    /// Tries every waiting delivery now (ignoring backoff).
    pub fn retry_now(&self) {
        self.inner.backoff.lock().clear();
        self.inner.wake.notify_one();
    }

    async fn delivery_loop(self) {
        loop {
            let next = self.deliver_due().await;
            let pause = next.unwrap_or(Duration::from_secs(60));
            tokio::select! {
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Delivers what is due, recipient by recipient, in order; returns when something is due
    /// next.
    async fn deliver_due(&self) -> Option<Duration> {
        let items = match self.inner.store.outbox() {
            Ok(i) => i,
            Err(e) => {
                warn!(target: "telegraph::client", error = %e, "outbox unreadable");
                return Some(self.inner.config.retry.1);
            }
        };
        let mut by_peer: Vec<(String, Vec<Outgoing>)> = Vec::new();
        for (to, item) in items {
            match by_peer.last_mut() {
                Some((p, list)) if *p == to => list.push(item),
                _ => by_peer.push((to, vec![item])),
            }
        }
        let mut next: Option<Duration> = None;
        let now = Instant::now();
        for (to, list) in by_peer {
            if let Some((at, _)) = self.inner.backoff.lock().get(&to).copied()
                && at > now
            {
                next = Some(next.map_or(at - now, |n| n.min(at - now)));
                continue;
            }
            if let Err(e) = self.deliver_to(&to, list).await {
                debug!(target: "telegraph::client", to = %to, error = %e, "delivery failed; will retry");
                let (min, max) = self.inner.config.retry;
                let mut backoff = self.inner.backoff.lock();
                let pause = backoff.get(&to).map_or(min, |(_, p)| (*p * 2).min(max));
                backoff.insert(to.clone(), (Instant::now() + pause, pause));
                self.inner.addresses.lock().remove(&to);
                next = Some(next.map_or(pause, |n| n.min(pause)));
            } else {
                self.inner.backoff.lock().remove(&to);
            }
        }
        next
    }

    async fn address(&self, to: &str) -> Result<InboxPrx, ClientError> {
        if let Some(p) = self.inner.addresses.lock().get(to).cloned() {
            return Ok(p);
        }
        let info = self.lookup(to).await?;
        if info.inbox.is_empty() {
            return Err(ClientError::Managers(format!("{to} has never been online")));
        }
        self.inner
            .addresses
            .lock()
            .get(to)
            .cloned()
            .ok_or_else(|| ClientError::Managers(format!("{to}'s inbox is unusable")))
    }

    async fn deliver_to(&self, to: &str, list: Vec<Outgoing>) -> Result<(), ClientError> {
        let inbox = self.address(to).await?;
        let inbox = InboxPrx::unchecked_cast(inbox.ice_invocation_timeout(5_000));
        for item in list {
            let result = match &item {
                Outgoing::Message(e) => inbox.deliver(e).await.map_err(|e| match e {
                    inbox_ops::DeliverError::Rejected(r) => {
                        ClientError::Invalid(format!("rejected by {to}: {}", r.reason))
                    }
                    e => ClientError::Managers(format!("{e:?}")),
                }),
                Outgoing::Receipt(r) => inbox.receipt(r).await.map_err(|e| match e {
                    inbox_ops::ReceiptError::Rejected(r) => {
                        ClientError::Invalid(format!("rejected by {to}: {}", r.reason))
                    }
                    e => ClientError::Managers(format!("{e:?}")),
                }),
            };
            match result {
                Ok(()) => {
                    self.inner.store.dequeue(to, &item)?;
                    if let Outgoing::Message(e) = &item
                        && let Some(m) = self.inner.store.advance(&e.id, State::Delivered)?
                    {
                        let _ = self.inner.events.send(Event::Updated(m));
                    }
                }
                Err(ClientError::Invalid(reason)) => {
                    // The recipient will never take it: keep the message (as pending) but stop
                    // sending it.
                    warn!(target: "telegraph::client", to = %to, reason = %reason, "delivery rejected");
                    self.inner.store.dequeue(to, &item)?;
                }
                Err(e) => return Err(e),
            }
        }
        // No flush: a dequeue lost in a crash only sends the item again, and the recipient
        // drops what it already has.
        Ok(())
    }

    async fn subscribe_presence(&self) {
        let c = &self.inner.config;
        let Some(tm) = &c.topic_manager else { return };
        let result: Result<(), String> = async {
            let tm = self
                .inner
                .communicator
                .string_to_proxy(tm)
                .map_err(|e| e.to_string())?
                .ok_or("null topic manager")?;
            let tm = icestorm_lite::slice::ice_storm::TopicManagerPrx::unchecked_cast(tm);
            let topic = tm
                .retrieve(&c.presence_topic)
                .await
                .map_err(|e| format!("{e:?}"))?
                .ok_or("null topic")?;
            let id: floe::Identity = format!("presence/{}", c.name)
                .parse()
                .map_err(|e: floe::Error| e.to_string())?;
            let subscriber = self
                .inner
                .adapter
                .add(
                    Arc::new(api::PresenceDispatcher(Arc::new(PresenceI {
                        client: Arc::downgrade(&self.inner),
                    }))),
                    id,
                )
                .map_err(|e| e.to_string())?;
            let subscriber = Some(subscriber.ice_oneway());
            if let Err(e) = topic
                .subscribe_and_get_publisher(&HashMap::new(), subscriber.clone())
                .await
            {
                // A subscription left by an earlier run of this user: replace it.
                if !format!("{e:?}").contains("AlreadySubscribed") {
                    return Err(format!("{e:?}"));
                }
                topic
                    .unsubscribe(subscriber.clone())
                    .await
                    .map_err(|e| format!("{e:?}"))?;
                topic
                    .subscribe_and_get_publisher(&HashMap::new(), subscriber)
                    .await
                    .map_err(|e| format!("{e:?}"))?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            warn!(target: "telegraph::client", error = %e, "presence not followed");
        }
    }

    /// Logs out and stops the client.
    pub async fn shutdown(&self) {
        self.stop_tasks().await;
        if let Ok(session) = self.session() {
            let _ = ManagerPrx::unchecked_cast(self.inner.managers.ice_invocation_timeout(2_000))
                .logout(&session)
                .await;
        }
        let _ = self.inner.store.flush().await;
        self.inner.communicator.destroy().await;
    }

    /// Stops the client without logging out (as a crash would, but flushing its store).
    pub async fn stop(&self) {
        self.stop_tasks().await;
        let _ = self.inner.store.flush().await;
        self.inner.communicator.destroy().await;
    }

    /// Stops the heartbeat and delivery tasks and waits until they are gone (so the store is
    /// released once the last handle is dropped).
    async fn stop_tasks(&self) {
        let tasks: Vec<_> = self.inner.tasks.lock().drain(..).collect();
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Checks an incoming message and stores it; a duplicate is acknowledged and dropped.
    async fn receive(&self, envelope: api::Envelope) -> Result<(), api::Rejected> {
        let reject = |reason: String| api::Rejected { reason };
        let store = &self.inner.store;
        if store
            .seen(&envelope.id)
            .map_err(|e| reject(e.to_string()))?
        {
            debug!(target: "telegraph::client", id = %envelope.id, "duplicate dropped");
            return Ok(());
        }
        crypto::valid_name(&envelope.sender).map_err(reject)?;
        if envelope.sender == self.name() {
            return Err(reject("a message from oneself".into()));
        }
        let contact = match store
            .contact(&envelope.sender)
            .map_err(|e| reject(e.to_string()))?
        {
            Some(c) => c,
            None => {
                self.lookup(&envelope.sender)
                    .await
                    .map_err(|e| reject(format!("sender unknown: {e}")))?;
                store
                    .contact(&envelope.sender)
                    .map_err(|e| reject(e.to_string()))?
                    .ok_or_else(|| reject("sender unknown".into()))?
            }
        };
        if contact.changed_to.is_some() {
            return Err(reject(format!(
                "{}'s keys changed and are not trusted yet",
                envelope.sender
            )));
        }
        if let Some(other) = store
            .message_at(&envelope.sender, false, envelope.counter)
            .map_err(|e| reject(e.to_string()))?
            && other.id != envelope.id
        {
            return Err(reject(format!(
                "counter {} of {} was used by another message",
                envelope.counter, envelope.sender
            )));
        }
        let text = match crypto::open(
            &self.inner.identity,
            self.name(),
            &contact.identity_key,
            &envelope,
        ) {
            Ok(t) => t,
            Err(e) => {
                // A signature that fails may mean the sender's keys changed: find out, so the
                // user is told.
                if matches!(e, crypto::CryptoError::BadSignature) {
                    let _ = self.lookup(&envelope.sender).await;
                }
                info!(target: "telegraph::client", from = %envelope.sender, error = %e, "message rejected");
                return Err(reject(e.to_string()));
            }
        };
        let message = Message {
            id: envelope.id.clone(),
            peer: envelope.sender.clone(),
            outgoing: false,
            counter: envelope.counter,
            sent_at: envelope.sent_at,
            stored_at: now_ms(),
            text,
            state: State::Unread,
        };
        store
            .put_message(&message)
            .map_err(|e| reject(e.to_string()))?;
        let receipt = crypto::sign_receipt(
            &self.inner.identity,
            &message.id,
            self.name(),
            &message.peer,
            ReceiptKind::Delivered,
            now_ms(),
        );
        store
            .queue(&message.peer, &Outgoing::Receipt(receipt))
            .map_err(|e| reject(e.to_string()))?;
        store.flush().await.map_err(|e| reject(e.to_string()))?;
        let _ = self.inner.events.send(Event::Received(message));
        self.inner.wake.notify_one();
        Ok(())
    }

    async fn record_receipt(&self, r: api::Receipt) -> Result<(), api::Rejected> {
        let reject = |reason: String| api::Rejected { reason };
        let store = &self.inner.store;
        let Some(m) = store
            .message(&r.message_id)
            .map_err(|e| reject(e.to_string()))?
        else {
            return Err(reject(format!("no message {} was sent here", r.message_id)));
        };
        if !m.outgoing || m.peer != r.reader || r.sender != self.name() {
            return Err(reject(
                "the receipt is not for a message this client sent to its reader".into(),
            ));
        }
        let contact = store
            .contact(&r.reader)
            .map_err(|e| reject(e.to_string()))?
            .ok_or_else(|| reject("unknown reader".into()))?;
        if contact.changed_to.is_some() {
            return Err(reject(format!(
                "{}'s keys changed and are not trusted yet",
                r.reader
            )));
        }
        crypto::verify_receipt(&contact.identity_key, &r).map_err(|e| reject(e.to_string()))?;
        let state = if r.kind == ReceiptKind::Read {
            State::Read
        } else {
            State::Delivered
        };
        if let Some(m) = store
            .advance(&r.message_id, state)
            .map_err(|e| reject(e.to_string()))?
        {
            store.flush().await.map_err(|e| reject(e.to_string()))?;
            let _ = self.inner.events.send(Event::Updated(m));
        }
        Ok(())
    }
}

/// The servants hold the client weakly: the adapter they live in belongs to the client, and a
/// strong reference would keep the client (and its store) alive for ever.
fn upgrade(client: &Weak<Inner>) -> Result<Client, api::Rejected> {
    client
        .upgrade()
        .map(|inner| Client { inner })
        .ok_or_else(|| api::Rejected {
            reason: "the client is stopping".into(),
        })
}

struct InboxI {
    client: Weak<Inner>,
}

impl api::Inbox for InboxI {
    async fn deliver(
        &self,
        message: api::Envelope,
        _: &Current,
    ) -> Result<(), inbox_ops::DeliverError> {
        upgrade(&self.client)?
            .receive(message)
            .await
            .map_err(Into::into)
    }

    async fn receipt(&self, r: api::Receipt, _: &Current) -> Result<(), inbox_ops::ReceiptError> {
        upgrade(&self.client)?
            .record_receipt(r)
            .await
            .map_err(Into::into)
    }
}

struct PresenceI {
    client: Weak<Inner>,
}

impl api::Presence for PresenceI {
    async fn changed(&self, user: UserInfo, _: &Current) -> Result<(), floe::Error> {
        let Ok(client) = upgrade(&self.client) else {
            return Ok(());
        };
        if user.name == client.name() {
            return Ok(());
        }
        if user.online {
            // The user is back, perhaps at a new address: deliver what waits for it now, at the
            // address the managers give (the broker's topic is not trusted with addresses).
            client.inner.addresses.lock().remove(&user.name);
            client.inner.backoff.lock().remove(&user.name);
            client.inner.wake.notify_one();
        }
        let _ = client.inner.events.send(Event::Presence(user));
        Ok(())
    }
}
