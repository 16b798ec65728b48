//! A topic: its subscribers and links, and the servants of its topic object (`Topic`, with the
//! federation operations of `TopicInternal`), its publisher object and its link object.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use parking_lot::RwLock;

use floe::codegen::{BoxFuture, Current};
use floe::{Blobject, BlobjectDispatcher, Error, Identity, ObjectPrx};

use crate::slice::ice;
use crate::slice::ice_storm::{
    self, AlreadySubscribed, BadQoS, EventData, InvalidSubscriber, LinkExists, LinkInfo,
    NoSuchLink, TopicInternalPrx, TopicLinkPrx, TopicPrx, topic, topic_internal,
};
use crate::store::SubscriberRecord;
use crate::subscriber::{Event, SubscribeError, Subscriber, Writes, answer_publish};
use crate::{BrokerError, Shared};

/// The topic name of a topic identity: `name` without its `topic.` prefix, or the whole name
/// when the category is empty (IceStorm's older identities).
pub(crate) fn identity_to_topic_name(id: &Identity) -> String {
    if id.category.is_empty() {
        return id.name.clone();
    }
    id.name
        .strip_prefix("topic.")
        .unwrap_or(&id.name)
        .to_string()
}

/// One topic.
pub(crate) struct TopicImpl {
    pub name: String,
    pub id: Identity,
    publisher_id: Identity,
    link_id: Identity,
    shared: Arc<Shared>,
    self_ref: Weak<TopicImpl>,
    subscribers: RwLock<Vec<Arc<Subscriber>>>,
    /// Serialises changes of the subscriber list with their persistence; holds whether the
    /// topic was destroyed.
    ops: tokio::sync::Mutex<bool>,
}

impl std::fmt::Debug for TopicImpl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicImpl")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TopicImpl {
    /// Creates the topic, registers its three objects and re-creates the stored subscribers
    /// (those that cannot be re-created are logged and dropped from the store).
    pub(crate) async fn install(
        shared: &Arc<Shared>,
        name: &str,
        records: Vec<SubscriberRecord>,
    ) -> Result<Arc<TopicImpl>, BrokerError> {
        let category = &shared.config.instance_name;
        let topic = Arc::new_cyclic(|me| TopicImpl {
            name: name.to_string(),
            id: Identity::new(format!("topic.{name}"), category.clone()),
            publisher_id: Identity::new(format!("{name}.publish"), category.clone()),
            link_id: Identity::new(format!("{name}.link"), category.clone()),
            shared: shared.clone(),
            self_ref: me.clone(),
            subscribers: RwLock::new(Vec::new()),
            ops: tokio::sync::Mutex::new(false),
        });
        let mut dropped = Vec::new();
        for rec in records {
            let key = rec.key.clone();
            match Subscriber::create(shared, &topic, rec) {
                Ok(s) => {
                    topic.trace(1, &format!("recreate {key}"));
                    topic.subscribers.write().push(s);
                }
                Err(e) => {
                    tracing::warn!(target: "icestorm::topic", "{name}: recreate {key} failed: {e:?}");
                    dropped.push(key);
                }
            }
        }
        if !dropped.is_empty() {
            let store = shared.store.clone();
            let n = name.to_string();
            crate::blocking(move || store.remove_subscribers(&n, &dropped)).await?;
        }
        shared.topic_adapter.add(
            Arc::new(ice_storm::TopicInternalDispatcher(Arc::new(TopicServant(
                topic.clone(),
            )))),
            topic.id.clone(),
        )?;
        shared.publish_adapter.add(
            Arc::new(BlobjectDispatcher(Arc::new(Publisher(topic.clone())))),
            topic.publisher_id.clone(),
        )?;
        shared.publish_adapter.add(
            Arc::new(ice_storm::TopicLinkDispatcher(Arc::new(LinkServant(
                topic.clone(),
            )))),
            topic.link_id.clone(),
        )?;
        Ok(topic)
    }

    /// The topic's proxy.
    pub(crate) fn proxy(&self) -> TopicPrx {
        TopicPrx::unchecked_cast(self.shared.topic_adapter.create_proxy(self.id.clone()))
    }

    fn trace(&self, level: i32, msg: &str) {
        if self.shared.config.trace.topic >= level {
            tracing::info!(target: "icestorm::topic", "{}: {msg}", self.name);
        }
    }

    /// Queues `events` for every subscriber; links skip `forwarded` events. `writes` counts the
    /// writes to idle subscribers started at once.
    pub(crate) fn publish(
        &self,
        forwarded: bool,
        events: &[Arc<Event>],
        writes: Option<&Arc<Writes>>,
    ) {
        let mut reap = Vec::new();
        for s in self.subscribers.read().iter() {
            if !s.queue(forwarded, events, writes) {
                reap.push(s.clone());
            }
        }
        for s in reap {
            s.reap();
        }
    }

    /// Removes subscribers (by key) in the background.
    pub(crate) fn reap_later(&self, keys: Vec<String>) {
        if let Some(me) = self.self_ref.upgrade() {
            tokio::spawn(async move {
                me.trace(1, &format!("reap {}", keys.join(",")));
                if let Err(e) = me.remove_subscribers(&keys).await {
                    tracing::warn!(target: "icestorm::topic", "{}: cannot reap {keys:?}: {e}", me.name);
                }
            });
        }
    }

    /// Removes subscribers by key, from the store first; returns whether any was there.
    async fn remove_subscribers(&self, keys: &[String]) -> Result<bool, BrokerError> {
        let guard = self.ops.lock().await;
        if *guard {
            return Ok(false);
        }
        let present: Vec<String> = self
            .subscribers
            .read()
            .iter()
            .filter(|s| keys.contains(&s.rec.key))
            .map(|s| s.rec.key.clone())
            .collect();
        if present.is_empty() {
            return Ok(false);
        }
        let store = self.shared.store.clone();
        let name = self.name.clone();
        let k = present.clone();
        crate::blocking(move || store.remove_subscribers(&name, &k)).await?;
        let removed: Vec<Arc<Subscriber>> = {
            let mut list = self.subscribers.write();
            let (gone, kept) = list.drain(..).partition(|s| present.contains(&s.rec.key));
            *list = kept;
            gone
        };
        for s in removed {
            s.destroy();
        }
        Ok(true)
    }

    /// Adds a subscriber (or link) after checking for an existing one with the same identity.
    async fn add_subscriber(
        self: &Arc<Self>,
        rec: SubscriberRecord,
    ) -> Result<Arc<Subscriber>, SubscribeError> {
        let guard = self.ops.lock().await;
        if *guard {
            return Err(SubscribeError::Runtime(destroyed(&self.id)));
        }
        if self.subscribers.read().iter().any(|s| s.rec.key == rec.key) {
            return Err(SubscribeError::Exists);
        }
        let sub = Subscriber::create(&self.shared, self, rec.clone())?;
        let store = self.shared.store.clone();
        let name = self.name.clone();
        if let Err(e) = crate::blocking(move || store.put_subscriber(&name, &rec)).await {
            sub.destroy();
            return Err(SubscribeError::Runtime(e.into()));
        }
        self.subscribers.write().push(sub.clone());
        drop(guard);
        Ok(sub)
    }

    /// Destroys the topic: its record and subscribers, then its objects.
    pub(crate) async fn destroy(&self) -> Result<(), BrokerError> {
        let mut guard = self.ops.lock().await;
        if *guard {
            return Err(destroyed(&self.id).into());
        }
        let store = self.shared.store.clone();
        let name = self.name.clone();
        crate::blocking(move || store.destroy_topic(&name)).await?;
        *guard = true;
        let _ = self.shared.topic_adapter.remove(&self.id);
        let _ = self.shared.publish_adapter.remove(&self.publisher_id);
        let _ = self.shared.publish_adapter.remove(&self.link_id);
        for s in self.subscribers.write().drain(..) {
            s.destroy();
        }
        self.trace(1, "destroy");
        Ok(())
    }

    /// Stops delivery for good (broker shutdown), keeping the stored state.
    pub(crate) fn stop(&self) {
        for s in self.subscribers.read().iter() {
            s.destroy();
        }
    }

    /// Whether every subscriber's queue has been handed over.
    pub(crate) fn drained(&self) -> bool {
        self.subscribers.read().iter().all(|s| s.drained())
    }
}

fn destroyed(id: &Identity) -> Error {
    Error::ObjectNotExist(Box::new(floe::RequestFailed {
        name: id.name.clone(),
        category: id.category.clone(),
        ..Default::default()
    }))
}

/// The servant of a topic object.
struct TopicServant(Arc<TopicImpl>);

impl ice_storm::Topic for TopicServant {
    async fn get_name(&self, _current: &Current) -> Result<String, Error> {
        Ok(self.0.name.clone())
    }

    async fn get_publisher(&self, _current: &Current) -> Result<Option<ObjectPrx>, Error> {
        Ok(Some(
            self.0
                .shared
                .publish_adapter
                .create_proxy(self.0.publisher_id.clone()),
        ))
    }

    async fn get_non_replicated_publisher(
        &self,
        _current: &Current,
    ) -> Result<Option<ObjectPrx>, Error> {
        Ok(Some(
            self.0
                .shared
                .publish_adapter
                .create_direct_proxy(self.0.publisher_id.clone()),
        ))
    }

    async fn subscribe_and_get_publisher(
        &self,
        qos: HashMap<String, String>,
        subscriber: Option<ObjectPrx>,
        _current: &Current,
    ) -> Result<Option<ObjectPrx>, topic::SubscribeAndGetPublisherError> {
        let t = &self.0;
        let Some(subscriber) = subscriber else {
            t.trace(1, "subscribeAndGetPublisher: null proxy");
            return Err(InvalidSubscriber {
                reason: "subscriber is a null proxy".into(),
            }
            .into());
        };
        let key = t
            .shared
            .comm
            .identity_to_string(subscriber.ice_get_identity());
        t.trace(
            1,
            &format!("subscribeAndGetPublisher: {key} ({subscriber}) QoS: {qos:?}"),
        );
        let rec = SubscriberRecord {
            key,
            proxy: subscriber.to_string(),
            qos: qos.into_iter().collect::<BTreeMap<_, _>>(),
            link: false,
            cost: 0,
            topic: None,
        };
        match t.add_subscriber(rec).await {
            Ok(sub) => Ok(sub.publisher.clone()),
            Err(SubscribeError::Exists) => Err(AlreadySubscribed {}.into()),
            Err(SubscribeError::BadQoS(reason)) => Err(BadQoS { reason }.into()),
            Err(SubscribeError::Invalid(reason)) => {
                t.trace(1, &format!("subscribeAndGetPublisher refused: {reason}"));
                Err(InvalidSubscriber { reason }.into())
            }
            Err(SubscribeError::Runtime(e)) => Err(e.into()),
        }
    }

    async fn unsubscribe(
        &self,
        subscriber: Option<ObjectPrx>,
        _current: &Current,
    ) -> Result<(), Error> {
        let t = &self.0;
        let Some(subscriber) = subscriber else {
            // ZeroC raises InvalidSubscriber here, which `unsubscribe` does not declare: its
            // clients see an unknown user exception.
            return Err(Error::UnknownUserException(
                "::IceStorm::InvalidSubscriber".into(),
            ));
        };
        let key = t
            .shared
            .comm
            .identity_to_string(subscriber.ice_get_identity());
        t.trace(1, &format!("unsubscribe: {key}"));
        t.remove_subscribers(&[key]).await?;
        Ok(())
    }

    async fn link(
        &self,
        link_to: Option<TopicPrx>,
        cost: i32,
        _current: &Current,
    ) -> Result<(), topic::LinkError> {
        let t = &self.0;
        let Some(link_to) = link_to else {
            return Err(Error::UnknownException("link: the topic is a null proxy".into()).into());
        };
        let internal = TopicInternalPrx::unchecked_cast((*link_to).clone());
        let Some(link) = internal.get_link_proxy().await? else {
            return Err(Error::UnknownException(format!(
                "link: topic `{}` returned a null link object",
                *link_to
            ))
            .into());
        };
        let id = link_to.ice_get_identity().clone();
        let key = t.shared.comm.identity_to_string(&id);
        t.trace(1, &format!("link {key} cost {cost}"));
        let rec = SubscriberRecord {
            key,
            proxy: link.to_string(),
            qos: BTreeMap::new(),
            link: true,
            cost,
            topic: Some(link_to.to_string()),
        };
        match t.add_subscriber(rec).await {
            Ok(_) => Ok(()),
            Err(SubscribeError::Exists) => Err(LinkExists {
                name: identity_to_topic_name(&id),
            }
            .into()),
            Err(SubscribeError::BadQoS(r) | SubscribeError::Invalid(r)) => {
                Err(Error::UnknownException(format!("link refused: {r}")).into())
            }
            Err(SubscribeError::Runtime(e)) => Err(e.into()),
        }
    }

    async fn unlink(
        &self,
        link_to: Option<TopicPrx>,
        _current: &Current,
    ) -> Result<(), topic::UnlinkError> {
        let t = &self.0;
        let Some(link_to) = link_to else {
            return Err(Error::UnknownException("unlink: the topic is a null proxy".into()).into());
        };
        let id = link_to.ice_get_identity().clone();
        let key = t.shared.comm.identity_to_string(&id);
        let linked = t
            .subscribers
            .read()
            .iter()
            .any(|s| s.rec.key == key && s.rec.link);
        if !linked
            || !t
                .remove_subscribers(std::slice::from_ref(&key))
                .await
                .map_err(Error::from)?
        {
            t.trace(1, &format!("unlink {key} failed - not linked"));
            return Err(NoSuchLink {
                name: identity_to_topic_name(&id),
            }
            .into());
        }
        t.trace(1, &format!("unlink {key}"));
        Ok(())
    }

    async fn get_link_info_seq(&self, _current: &Current) -> Result<Vec<LinkInfo>, Error> {
        Ok(self
            .0
            .subscribers
            .read()
            .iter()
            .filter(|s| s.rec.link && !s.errored())
            .filter_map(|s| {
                let t = s.linked_topic.clone()?;
                Some(LinkInfo {
                    name: identity_to_topic_name(t.ice_get_identity()),
                    the_topic: Some(TopicPrx::unchecked_cast(t)),
                    cost: s.rec.cost,
                })
            })
            .collect())
    }

    async fn get_subscribers(&self, _current: &Current) -> Result<Vec<ice::Identity>, Error> {
        Ok(self
            .0
            .subscribers
            .read()
            .iter()
            .map(|s| ice::Identity {
                name: s.id.name.clone(),
                category: s.id.category.clone(),
            })
            .collect())
    }

    async fn destroy(&self, _current: &Current) -> Result<(), Error> {
        self.0.shared.remove_topic(&self.0.name).await?;
        Ok(())
    }
}

impl ice_storm::TopicInternal for TopicServant {
    async fn get_link_proxy(&self, _current: &Current) -> Result<Option<TopicLinkPrx>, Error> {
        Ok(Some(TopicLinkPrx::unchecked_cast(
            self.0
                .shared
                .publish_adapter
                .create_proxy(self.0.link_id.clone()),
        )))
    }

    async fn reap(
        &self,
        ids: Vec<ice::Identity>,
        _current: &Current,
    ) -> Result<(), topic_internal::ReapError> {
        let keys: Vec<String> = ids
            .iter()
            .map(|i| {
                self.0
                    .shared
                    .comm
                    .identity_to_string(&Identity::new(i.name.clone(), i.category.clone()))
            })
            .collect();
        self.0
            .remove_subscribers(&keys)
            .await
            .map_err(Error::from)?;
        Ok(())
    }
}

/// The publisher object of a topic: every request is an event for every subscriber.
struct Publisher(Arc<TopicImpl>);

impl Blobject for Publisher {
    fn ice_invoke<'a>(
        &'a self,
        in_encaps: Bytes,
        current: &'a Current,
    ) -> BoxFuture<'a, floe::Result<(bool, Bytes)>> {
        Box::pin(answer_publish(
            &self.0.shared,
            in_encaps,
            current,
            |event, writes| self.0.publish(false, &[event], writes),
        ))
    }
}

/// The link object of a topic: events forwarded by linked topics.
struct LinkServant(Arc<TopicImpl>);

impl ice_storm::TopicLink for LinkServant {
    async fn forward(&self, events: Vec<EventData>, _current: &Current) -> Result<(), Error> {
        let shared = &self.0.shared;
        let events: Vec<Arc<Event>> = events
            .into_iter()
            .filter(|e| shared.check_class_graphs(&e.op, &e.data).is_ok())
            .map(|e| Arc::new(Event::from_data(&shared.memory, e)))
            .collect();
        self.0.publish(true, &events, None);
        Ok(())
    }
}
