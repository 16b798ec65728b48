//! The instance's place on the query topic: its subscription, kept alive (anyone who can reach
//! the broker can unsubscribe it, or destroy the topic), and the subscribers it has seen there,
//! so that `createUser` can tell when one that was there a moment ago is missing and might not
//! hear the query.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use floe::{Error, ObjectPrx};
use icestorm_lite::slice::ice_storm::{TopicManagerPrx, TopicPrx};
use parking_lot::{Mutex, RwLock};
use tracing::warn;

use crate::limits::Escaped;
use crate::slice::users_manager::ManagerQueryPrx;

/// A subscriber of the topic, by identity (category, name).
pub type Member = (String, String);

/// The subscription of one instance to the query topic.
#[derive(Debug)]
pub struct Subscription {
    topic_manager: TopicManagerPrx,
    name: String,
    /// The instance's query object, oneway, as subscribed.
    subscriber: ObjectPrx,
    topic: RwLock<TopicPrx>,
    publisher: RwLock<ManagerQueryPrx>,
    /// When each subscriber was last seen on the topic.
    seen: Mutex<HashMap<Member, Instant>>,
    grace: Duration,
}

pub use icestorm_lite::open_topic;

/// Subscribes `subscriber` to `topic` (already subscribed is fine) and returns the topic's
/// publisher.
async fn subscribe(topic: &TopicPrx, subscriber: &ObjectPrx) -> Result<ManagerQueryPrx, String> {
    use icestorm_lite::slice::ice_storm::topic::SubscribeAndGetPublisherError as E;
    match topic
        .subscribe_and_get_publisher(&HashMap::new(), Some(subscriber.clone()))
        .await
    {
        Ok(_) | Err(E::AlreadySubscribed(_)) => {}
        Err(e) => return Err(e.to_string()),
    }
    let publisher = topic
        .get_publisher()
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the broker returned no publisher")?;
    Ok(ManagerQueryPrx::unchecked_cast(publisher))
}

fn member(prx: &ObjectPrx) -> Member {
    let id = prx.ice_get_identity();
    (id.category.clone(), id.name.clone())
}

impl Subscription {
    /// Opens topic `name` on `tm` and subscribes `subscriber` (oneway) to it. A member missing
    /// for less than `grace` counts as still in the cluster.
    pub async fn open(
        tm: TopicManagerPrx,
        name: &str,
        subscriber: ObjectPrx,
        grace: Duration,
    ) -> Result<Subscription, String> {
        let topic = open_topic(&tm, name).await?;
        let publisher = subscribe(&topic, &subscriber).await?;
        let seen = HashMap::from([(member(&subscriber), Instant::now())]);
        Ok(Subscription {
            topic_manager: tm,
            name: name.to_string(),
            subscriber,
            topic: RwLock::new(topic),
            publisher: RwLock::new(publisher),
            seen: Mutex::new(seen),
            grace,
        })
    }

    /// The proxy queries are published with.
    pub fn publisher(&self) -> ManagerQueryPrx {
        self.publisher.read().clone()
    }

    /// Lists the topic's subscribers now, subscribing again first when this instance is not
    /// among them (and opening the topic again when it was destroyed), and remembers when each
    /// was seen.
    pub async fn members(&self) -> Result<HashSet<Member>, Error> {
        let topic = self.topic.read().clone();
        let ids = match topic.get_subscribers().await {
            Ok(ids) => ids,
            Err(Error::ObjectNotExist(_)) => {
                warn!(target: "usersmanager", topic = %Escaped(&self.name), "the query topic was destroyed; opening it again");
                let topic = open_topic(&self.topic_manager, &self.name)
                    .await
                    .map_err(Error::UnknownException)?;
                *self.topic.write() = topic.clone();
                topic.get_subscribers().await?
            }
            Err(e) => return Err(e),
        };
        let mut present: HashSet<Member> = ids.into_iter().map(|i| (i.category, i.name)).collect();
        let me = member(&self.subscriber);
        if !present.contains(&me) {
            let topic = self.topic.read().clone();
            let publisher = subscribe(&topic, &self.subscriber)
                .await
                .map_err(Error::UnknownException)?;
            *self.publisher.write() = publisher;
            warn!(target: "usersmanager", topic = %Escaped(&self.name), "this instance was no longer subscribed to the query topic; subscribed again");
            present.insert(me);
        }
        let now = Instant::now();
        let mut seen = self.seen.lock();
        for m in &present {
            seen.insert(m.clone(), now);
        }
        seen.retain(|_, t| now.duration_since(*t) < self.grace);
        Ok(present)
    }

    /// The subscribers seen within the grace period that are not in `present`.
    pub fn missing(&self, present: &HashSet<Member>) -> Vec<Member> {
        let now = Instant::now();
        self.seen
            .lock()
            .iter()
            .filter(|(m, t)| !present.contains(*m) && now.duration_since(**t) < self.grace)
            .map(|(m, _)| m.clone())
            .collect()
    }

    /// Unsubscribes (at shutdown).
    pub async fn unsubscribe(&self) -> Result<(), Error> {
        let topic = TopicPrx::unchecked_cast(self.topic.read().ice_invocation_timeout(2000));
        topic.unsubscribe(Some(self.subscriber.clone())).await
    }
}
