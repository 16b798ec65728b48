//! One subscriber of a topic (or one link to another topic): its bounded queue, the task that
//! delivers the queue, and ZeroC's retry and removal rules (see the crate documentation).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::Notify;

use floe::codegen::BoxFuture;
use floe::protocol::{HEADER_SIZE, Header, MessageType, put_context, put_size, put_string};
use floe::{Blobject, Connection, Context, Current, Error, Identity, ObjectPrx, OperationMode};

use crate::Shared;
use crate::config::QueueFullPolicy;
use crate::slice::ice_storm::{EventData, EventMode, TopicLinkPrx};
use crate::store::SubscriberRecord;
use crate::topic::TopicImpl;

/// Most bytes of oneway requests written to a subscriber at once.
const ONEWAY_WRITE_MAX: usize = 256 * 1024;
/// Most oneway requests written to a subscriber at once.
const ONEWAY_BATCH_MAX: usize = 1024;
/// Most events a datagram subscriber's delivery task takes from its queue at once.
const DATAGRAM_BATCH_MAX: usize = 256;

/// The bytes of the events the broker holds (queued, in flight or being published), against
/// `IceStorm.MemoryMax`.
#[derive(Debug, Default)]
pub(crate) struct Memory {
    held: AtomicUsize,
}

impl Memory {
    /// Bytes held now.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

/// One event: what a publisher sent, without its target.
#[derive(Debug)]
pub(crate) struct Event {
    pub op: String,
    pub mode: OperationMode,
    pub ctx: Context,
    /// The parameter encapsulation (the end of `tail`).
    pub data: Bytes,
    /// The end of a Request body carrying this event (operation, mode, context, parameters),
    /// encoded once and shared by every oneway subscriber.
    tail: Bytes,
    /// Where the event's bytes are counted while it lives.
    memory: Arc<Memory>,
}

impl Drop for Event {
    fn drop(&mut self) {
        self.memory
            .held
            .fetch_sub(self.tail.len(), Ordering::Relaxed);
    }
}

impl Event {
    /// Encodes the tail; the event keeps its parameters as a slice of it, not as a second
    /// buffer (nor the whole request they arrived in).
    fn new(
        memory: &Arc<Memory>,
        op: String,
        mode: OperationMode,
        ctx: Context,
        data: Bytes,
    ) -> Event {
        let mut tail = BytesMut::with_capacity(op.len() + data.len() + 8);
        put_string(&mut tail, &op);
        tail.extend_from_slice(&[mode as u8]);
        put_context(&mut tail, &ctx);
        let params_at = tail.len();
        tail.extend_from_slice(&data);
        let tail = tail.freeze();
        memory.held.fetch_add(tail.len(), Ordering::Relaxed);
        Event {
            op,
            mode,
            ctx,
            data: tail.slice(params_at..),
            tail,
            memory: memory.clone(),
        }
    }

    fn from_current(memory: &Arc<Memory>, data: Bytes, current: &Current) -> Event {
        Event::new(
            memory,
            current.operation.clone(),
            current.mode,
            current.ctx.clone(),
            data,
        )
    }

    pub(crate) fn from_data(memory: &Arc<Memory>, e: EventData) -> Event {
        let mode = match e.mode {
            EventMode::Normal => OperationMode::Normal,
            EventMode::Nonmutating => OperationMode::Nonmutating,
            EventMode::Idempotent => OperationMode::Idempotent,
        };
        Event::new(memory, e.op, mode, e.context, Bytes::from(e.data))
    }

    /// The bytes of the event, as counted against the memory bounds.
    fn size(&self) -> usize {
        self.tail.len()
    }

    fn to_data(&self) -> EventData {
        EventData {
            op: self.op.clone(),
            mode: match self.mode {
                OperationMode::Normal => EventMode::Normal,
                OperationMode::Nonmutating => EventMode::Nonmutating,
                OperationMode::Idempotent => EventMode::Idempotent,
            },
            data: self.data.to_vec(),
            context: self.ctx.clone(),
        }
    }

    /// The `cost` entry of the event's context (0 when absent or not a number, as `atoi`).
    fn cost(&self) -> i32 {
        self.ctx.get("cost").map(|c| leading_int(c)).unwrap_or(0)
    }
}

/// Parses like C's `atoi`: optional blanks and sign, then digits; anything else ends the number
/// (no digits gives 0). ZeroC reads `retryCount` and event costs this way.
pub(crate) fn leading_int(s: &str) -> i32 {
    let s = s.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        v = (v * 10 + i64::from(b - b'0')).min(i64::from(i32::MAX) + 1);
    }
    let v = if neg { -v } else { v };
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// Counts the subscriber writes a twoway publish started at once, so that its answer can follow
/// them (see [`Writes::wait`]).
#[derive(Debug, Default)]
pub(crate) struct Writes {
    left: std::sync::atomic::AtomicUsize,
    done: Notify,
}

impl Writes {
    /// How long a twoway publish waits at most for the writes it started.
    const WAIT_MAX: std::time::Duration = std::time::Duration::from_millis(1);

    fn started(&self) {
        self.left.fetch_add(1, Ordering::AcqRel);
    }

    fn finished(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.notify_one();
        }
    }

    /// Waits until every write started is done, at most [`Writes::WAIT_MAX`] (a subscriber that
    /// stopped reading delays the answer that long, once: while its write is in flight, later
    /// events only queue).
    pub(crate) async fn wait(&self) {
        if self.left.load(Ordering::Acquire) == 0 {
            return;
        }
        let _ = tokio::time::timeout(Self::WAIT_MAX, self.done.notified()).await;
    }
}

/// How a subscriber receives its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Twoway requests, at most this many outstanding (1 for `reliability=ordered`).
    Twoway(usize),
    /// Oneway requests over a connection, written as raw Requests in queue order.
    Oneway,
    /// Datagram requests, one per event, in queue order.
    Datagram,
    /// Batched requests flushed every `IceStorm.Flush.Timeout`.
    Batch,
    /// A link to another topic: batches of events through `TopicLink::forward`.
    Link,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Online,
    /// Events are discarded until then.
    Offline(Instant),
    /// Removed (or being removed): nothing more is delivered.
    Error,
}

/// A subscriber's queued events and their bytes.
#[derive(Debug, Default)]
struct Queue {
    events: VecDeque<Arc<Event>>,
    bytes: usize,
}

impl Queue {
    fn len(&self) -> usize {
        self.events.len()
    }

    fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    fn iter(&self) -> impl Iterator<Item = &Arc<Event>> {
        self.events.iter()
    }

    fn push_back(&mut self, e: Arc<Event>) {
        self.bytes += e.size();
        self.events.push_back(e);
    }

    fn pop_front(&mut self) {
        if let Some(e) = self.events.pop_front() {
            self.bytes -= e.size();
        }
    }

    /// Takes the first `n` events.
    fn take_front(&mut self, n: usize) -> Vec<Arc<Event>> {
        let taken: Vec<Arc<Event>> = self.events.drain(..n).collect();
        self.bytes -= taken.iter().map(|e| e.size()).sum::<usize>();
        taken
    }

    fn clear(&mut self) {
        self.events.clear();
        self.bytes = 0;
    }
}

#[derive(Debug)]
struct Inner {
    events: Queue,
    state: State,
    current_retry: i32,
    outstanding: usize,
    /// Oneway subscribers over a connection: the connection events are written to.
    conn: Option<Connection>,
    /// Oneway subscribers over a connection: whether a write is in flight (the next batch
    /// leaves when it completes).
    writing: bool,
}

/// A subscriber of one topic.
pub(crate) struct Subscriber {
    /// What is stored for it.
    pub rec: SubscriberRecord,
    /// Its identity (for a link: the linked topic's identity).
    pub id: Identity,
    /// For a link: the linked topic.
    pub linked_topic: Option<ObjectPrx>,
    /// The publisher object for this subscriber alone (`None` for links).
    pub publisher: Option<ObjectPrx>,
    obj: ObjectPrx,
    kind: Kind,
    /// The start of a oneway Request body for this subscriber: request id 0, identity, facet.
    prefix: Bytes,
    retry_count: i32,
    /// Bytes a request to this subscriber adds to an event's (header, request id, identity,
    /// facet; for a link, the `forward` call around the events).
    overhead: usize,
    /// Bytes each event adds inside a link's `forward` (the size of its parameter bytes).
    per_event: usize,
    /// Events dropped because they were too large for this subscriber.
    oversized: AtomicU64,
    inner: Mutex<Inner>,
    wake: Notify,
    reaping: AtomicBool,
    shared: Arc<Shared>,
    topic: Weak<TopicImpl>,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("key", &self.rec.key)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Why a subscription (or a link) is refused.
#[derive(Debug)]
pub(crate) enum SubscribeError {
    /// The identity is already subscribed (or the topic already linked).
    Exists,
    /// The quality of service is refused, for this reason.
    BadQoS(String),
    /// The subscriber is refused, for this reason.
    Invalid(String),
    /// The subscriber cannot be built or stored.
    Runtime(Error),
}

impl Subscriber {
    /// Builds a subscriber from its record (checking its QoS as ZeroC does), registers its
    /// per-subscriber publisher and starts its delivery task.
    pub(crate) fn create(
        shared: &Arc<Shared>,
        topic: &Arc<TopicImpl>,
        rec: SubscriberRecord,
    ) -> Result<Arc<Subscriber>, SubscribeError> {
        let comm = &shared.comm;
        let parse = |s: &str| -> Result<ObjectPrx, SubscribeError> {
            comm.string_to_proxy(s)
                .map_err(SubscribeError::Runtime)?
                .ok_or_else(|| SubscribeError::Runtime(Error::IllegalArgument("null proxy".into())))
        };
        let stored = parse(&rec.proxy)?;
        // A subscriber that is a publisher (or link) object of this broker sends every event
        // back to it, forever; a link is the one subscriber allowed to name a link object.
        if shared.is_broker_object(stored.ice_get_identity(), !rec.link) {
            return Err(SubscribeError::Invalid(format!(
                "`{}` is a publisher or link object of this broker: its events would come back \
                 to the broker forever",
                comm.identity_to_string(stored.ice_get_identity())
            )));
        }
        let obj = stored.ice_timeout(shared.config.send_timeout_ms);
        let (kind, retry_count, linked_topic) = if rec.link {
            let t = match &rec.topic {
                Some(t) => parse(t)?,
                None => {
                    return Err(SubscribeError::Runtime(Error::IllegalArgument(
                        "link without a topic".into(),
                    )));
                }
            };
            (Kind::Link, -1, Some(t))
        } else {
            let retry = rec.qos.get("retryCount").map_or(0, |v| leading_int(v));
            let reliability = rec.qos.get("reliability").map_or("", String::as_str);
            if !reliability.is_empty() && reliability != "ordered" {
                return Err(SubscribeError::BadQoS(format!(
                    "invalid reliability: {reliability}"
                )));
            }
            for (key, what) in [
                ("locatorCacheTimeout", "invalid locator cache timeout"),
                ("connectionCached", "invalid connection cached setting"),
            ] {
                if let Some(v) = rec.qos.get(key) {
                    if v.trim().parse::<i32>().is_err() {
                        return Err(SubscribeError::BadQoS(format!(
                            "{what} (numeric value required): {v}"
                        )));
                    }
                }
            }
            let kind = if reliability == "ordered" {
                if !obj.ice_is_twoway() {
                    return Err(SubscribeError::BadQoS(
                        "ordered reliability requires a twoway proxy".into(),
                    ));
                }
                Kind::Twoway(1)
            } else if obj.ice_get_mode().is_twoway() {
                Kind::Twoway(5)
            } else if obj.ice_get_mode().is_batch() {
                Kind::Batch
            } else if obj.ice_get_mode() == floe::InvocationMode::Datagram {
                Kind::Datagram
            } else {
                Kind::Oneway
            };
            (kind, retry, None)
        };
        let id = match &linked_topic {
            Some(t) => t.ice_get_identity().clone(),
            None => stored.ice_get_identity().clone(),
        };
        let publisher = (!rec.link).then(|| {
            let pid = Identity::new(
                format!(
                    "topic.{}.publish.{}",
                    topic.name,
                    comm.identity_to_string(&id)
                ),
                &shared.config.instance_name,
            );
            shared.publish_adapter.create_proxy(pid)
        });
        let prefix = {
            let mut b = BytesMut::new();
            b.extend_from_slice(&0i32.to_le_bytes());
            let target = obj.ice_get_identity();
            put_string(&mut b, &target.name);
            put_string(&mut b, &target.category);
            let facet = obj.ice_get_facet();
            if facet.is_empty() {
                put_size(&mut b, 0);
            } else {
                put_size(&mut b, 1);
                put_string(&mut b, facet);
            }
            b.freeze()
        };
        // A link sends `forward` (a string), mode, an empty context, an encapsulation header and
        // the size of its sequence of events; each event's parameters are preceded by a size.
        let (overhead, per_event) = if kind == Kind::Link {
            (HEADER_SIZE + prefix.len() + 8 + 1 + 1 + 6 + 5, 5)
        } else {
            (HEADER_SIZE + prefix.len(), 0)
        };
        let sub = Arc::new(Subscriber {
            rec,
            id,
            linked_topic,
            publisher,
            overhead,
            per_event,
            oversized: AtomicU64::new(0),
            prefix,
            obj: if kind == Kind::Batch {
                obj.ice_batch_oneway()
            } else {
                obj
            },
            kind,
            retry_count,
            inner: Mutex::new(Inner {
                events: Queue::default(),
                state: State::Online,
                current_retry: 0,
                outstanding: 0,
                conn: None,
                writing: false,
            }),
            wake: Notify::new(),
            reaping: AtomicBool::new(false),
            shared: shared.clone(),
            topic: Arc::downgrade(topic),
        });
        if let Some(p) = &sub.publisher {
            let servant = PerSubscriberPublisher {
                sub: Arc::downgrade(&sub),
            };
            shared
                .publish_adapter
                .add(
                    Arc::new(floe::BlobjectDispatcher(Arc::new(servant))),
                    p.ice_get_identity().clone(),
                )
                .map_err(SubscribeError::Runtime)?;
        }
        tokio::spawn(sub.clone().run());
        Ok(sub)
    }

    /// Queues events; returns false when the subscriber is in error and must be reaped.
    /// `forwarded` events (from a linked topic) are not queued on links.
    /// A oneway subscriber with an open connection and no write in flight gets the events
    /// written at once (no task in between); otherwise its delivery task is woken.
    /// `writes`, when given, counts such a write until it completes.
    pub(crate) fn queue(
        self: &Arc<Self>,
        forwarded: bool,
        events: &[Arc<Event>],
        writes: Option<&Arc<Writes>>,
    ) -> bool {
        if forwarded && self.kind == Kind::Link {
            return true;
        }
        let mut g = self.inner.lock();
        match g.state {
            State::Error => return false,
            State::Offline(until) => {
                if Instant::now() < until {
                    return true;
                }
                g.state = State::Online;
                self.trace_state("online");
            }
            State::Online => {}
        }
        for e in events {
            if !self.fits(e) {
                self.drop_oversized(e);
                continue;
            }
            while let Some(why) = self.full(&g.events, e) {
                match self.shared.config.queue_full_policy {
                    QueueFullPolicy::RemoveSubscriber => {
                        drop(g);
                        self.fail(&Error::MemoryLimit(why));
                        return false;
                    }
                    QueueFullPolicy::DropEvents => g.events.pop_front(),
                }
            }
            g.events.push_back(e.clone());
        }
        if self.kind == Kind::Oneway && !g.writing {
            if let Some(conn) = g.conn.clone().filter(Connection::is_active) {
                self.write_next(g, conn, writes.cloned());
                return true;
            }
        }
        drop(g);
        self.wake.notify_one();
        true
    }

    /// Why the queue cannot take `e` before it loses an event: it holds
    /// `IceStorm.Send.QueueSizeMax` events, or `e` would take it past
    /// `IceStorm.Send.QueueMemoryMax`, or it has a backlog while the broker holds more than
    /// `IceStorm.MemoryMax`. An empty queue always takes an event (a single event is bounded by
    /// `Ice.MessageSizeMax`).
    fn full(&self, queue: &Queue, e: &Event) -> Option<String> {
        if queue.is_empty() {
            return None;
        }
        let config = &self.shared.config;
        if config.queue_size_max.is_some_and(|max| queue.len() >= max) {
            return Some(format!(
                "queue of {} events is full (IceStorm.Send.QueueSizeMax)",
                queue.len()
            ));
        }
        if let Some(max) = config.queue_memory_max {
            if queue.bytes + e.size() > max {
                return Some(format!(
                    "queue of {} KiB is full (IceStorm.Send.QueueMemoryMax: {} KiB)",
                    queue.bytes.div_ceil(1024),
                    max / 1024
                ));
            }
        }
        if let Some(max) = config.memory_max {
            let held = self.shared.memory.held();
            if held > max {
                return Some(format!(
                    "the broker holds {} KiB of events (IceStorm.MemoryMax: {} KiB) and this \
                     subscriber is behind",
                    held.div_ceil(1024),
                    max / 1024
                ));
            }
        }
        None
    }

    /// Whether `e`, addressed to this subscriber, stays within `Ice.MessageSizeMax` (for a
    /// link: alone in a `forward`).
    fn fits(&self, e: &Event) -> bool {
        self.overhead + e.size() + self.per_event <= self.shared.config.message_size_max
    }

    /// Drops an event too large for this subscriber, counting it and keeping the subscriber
    /// (as ZeroC's IceStorm does when a request outgrows `Ice.MessageSizeMax`). Logged on the
    /// 1st, 2nd, 4th, 8th... drop.
    fn drop_oversized(&self, e: &Event) {
        let n = self.oversized.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            tracing::warn!(
                target: "icestorm::subscriber",
                "{}: event `{}` of {} bytes dropped: addressed to this subscriber it exceeds \
                 Ice.MessageSizeMax ({} KiB); {n} dropped so far",
                self.shared.comm.identity_to_string(&self.id),
                e.op.escape_debug(),
                e.size(),
                self.shared.config.message_size_max / 1024
            );
        }
    }

    /// Writes the next queued events (at most [`ONEWAY_BATCH_MAX`] events and about
    /// [`ONEWAY_WRITE_MAX`] bytes) to `conn` as consecutive oneway Requests in one write,
    /// counting them outstanding and the write in flight; `g` is released before the write.
    /// When it completes, the events queued meanwhile follow in the next
    /// ([`Subscriber::written`]). A write the connection takes at once (its task had nothing
    /// to write) is followed by the next right here.
    fn write_next<'a>(
        self: &'a Arc<Self>,
        mut g: MutexGuard<'a, Inner>,
        conn: Connection,
        mut writes: Option<Arc<Writes>>,
    ) {
        loop {
            let mut bytes = 0;
            let mut n = 0;
            for e in g.events.iter().take(ONEWAY_BATCH_MAX) {
                if n > 0 && bytes + e.tail.len() > ONEWAY_WRITE_MAX {
                    break;
                }
                bytes += e.tail.len();
                n += 1;
            }
            g.outstanding += n;
            g.writing = true;
            let events = g.events.take_front(n);
            drop(g);
            let mut buf = BytesMut::with_capacity(n * (HEADER_SIZE + self.prefix.len()) + bytes);
            for e in &events {
                Header {
                    message_type: MessageType::Request,
                    compression: 0,
                    size: HEADER_SIZE + self.prefix.len() + e.tail.len(),
                }
                .write(&mut buf);
                buf.extend_from_slice(&self.prefix);
                buf.extend_from_slice(&e.tail);
            }
            drop(events);
            let me = self.clone();
            let next = conn.clone();
            let later = writes.take();
            if let Some(w) = &later {
                w.started();
            }
            let now = later.clone();
            let written_now = conn.send_raw_now_or_then(buf.freeze(), move |result| {
                me.written(next, n, result);
                if let Some(w) = later {
                    w.finished();
                }
            });
            if !written_now {
                return;
            }
            if let Some(w) = now {
                w.finished();
            }
            match self.wrote(self.inner.lock(), n, &conn) {
                Some(next) => g = next,
                None => return,
            }
        }
    }

    /// A write of `n` events succeeded: the guard back if more events are queued for `conn`,
    /// to write next; otherwise the subscriber stops writing (its delivery task takes over
    /// what comes later).
    fn wrote<'a>(
        &self,
        mut g: MutexGuard<'a, Inner>,
        n: usize,
        conn: &Connection,
    ) -> Option<MutexGuard<'a, Inner>> {
        g.outstanding = g.outstanding.saturating_sub(n);
        g.current_retry = 0;
        if g.state == State::Online && !g.events.is_empty() && conn.is_active() {
            return Some(g);
        }
        g.writing = false;
        let more = g.state == State::Online && !g.events.is_empty();
        drop(g);
        if more {
            self.wake.notify_one();
        }
        None
    }

    /// A oneway write completed (or failed).
    fn written(self: &Arc<Self>, conn: Connection, n: usize, result: floe::Result<()>) {
        let mut g = self.inner.lock();
        match result {
            Ok(()) => {
                if let Some(g) = self.wrote(g, n, &conn) {
                    self.write_next(g, conn, None);
                }
            }
            Err(e) => {
                g.outstanding = g.outstanding.saturating_sub(n);
                g.writing = false;
                drop(g);
                self.fail(&e);
            }
        }
    }

    /// Whether the subscriber failed for good (links in error are not listed).
    pub(crate) fn errored(&self) -> bool {
        self.inner.lock().state == State::Error
    }

    /// Stops delivery: the queue is dropped and the per-subscriber publisher removed.
    pub(crate) fn destroy(&self) {
        {
            let mut g = self.inner.lock();
            g.state = State::Error;
            g.events.clear();
        }
        self.wake.notify_one();
        if let Some(p) = &self.publisher {
            let _ = self.shared.publish_adapter.remove(p.ice_get_identity());
        }
    }

    /// Whether everything queued has been handed over (nothing queued, nothing outstanding).
    pub(crate) fn drained(&self) -> bool {
        let g = self.inner.lock();
        g.state == State::Error || (g.events.is_empty() && g.outstanding == 0)
    }

    /// Takes up to `n` events to deliver now, counting them outstanding; `None` once in error.
    fn take(&self, n: usize) -> Option<Vec<Arc<Event>>> {
        let mut g = self.inner.lock();
        match g.state {
            State::Error => None,
            State::Offline(_) => Some(Vec::new()),
            State::Online => {
                let n = n.min(g.events.len());
                g.outstanding += n;
                Some(g.events.take_front(n))
            }
        }
    }

    /// Ends the delivery of `n` events: a success resets the retry count, a failure follows
    /// [`Subscriber::fail`].
    fn settle(&self, n: usize, result: floe::Result<()>) {
        {
            let mut g = self.inner.lock();
            g.outstanding = g.outstanding.saturating_sub(n);
            if result.is_ok() {
                g.current_retry = 0;
            }
        }
        if let Err(e) = result {
            self.fail(&e);
        }
    }

    async fn run(self: Arc<Self>) {
        match self.kind {
            Kind::Twoway(max) => self.run_twoway(max).await,
            Kind::Oneway => self.run_oneway().await,
            Kind::Datagram => {
                self.run_batches(DATAGRAM_BATCH_MAX, None, |events| self.invoke_each(events))
                    .await
            }
            Kind::Batch => {
                let flush = self.shared.config.flush_interval;
                self.run_batches(usize::MAX, Some(flush), |events| {
                    self.invoke_batched(events)
                })
                .await
            }
            Kind::Link => {
                let link = TopicLinkPrx::unchecked_cast(self.obj.clone());
                self.run_batches(usize::MAX, None, |events| self.forward(&link, events))
                    .await
            }
        }
    }

    async fn invoke(&self, e: Arc<Event>) -> floe::Result<(bool, Bytes)> {
        self.obj
            .ice_invoke(&e.op, e.mode, e.data.clone(), Some(&e.ctx))
            .await
    }

    async fn run_twoway(self: &Arc<Self>, max: usize) {
        let mut inflight = FuturesUnordered::new();
        loop {
            let Some(events) = self.take(max - inflight.len()) else {
                return;
            };
            inflight.extend(events.into_iter().map(|e| self.invoke(e)));
            if inflight.is_empty() {
                self.wake.notified().await;
                continue;
            }
            tokio::select! {
                Some(r) = inflight.next() => self.settle(1, r.map(drop)),
                _ = self.wake.notified() => {}
            }
        }
    }

    /// Oneway subscribers: the queued events are written as consecutive oneway Requests, as
    /// many as are queued (up to [`ONEWAY_WRITE_MAX`] bytes) in one write, one write in flight,
    /// in queue order ([`Subscriber::queue`] and [`Subscriber::written`] do the writing; this
    /// task opens the connection when there is none).
    async fn run_oneway(self: &Arc<Self>) {
        loop {
            let wanted = {
                let g = self.inner.lock();
                match g.state {
                    State::Error => return,
                    State::Offline(_) => false,
                    State::Online => !g.writing && !g.events.is_empty(),
                }
            };
            if !wanted {
                self.wake.notified().await;
                continue;
            }
            match self.obj.ice_get_connection().await {
                Ok(conn) => {
                    let mut g = self.inner.lock();
                    g.conn = Some(conn.clone());
                    if g.state == State::Online && !g.writing && !g.events.is_empty() {
                        self.write_next(g, conn, None);
                    }
                }
                Err(e) => self.fail(&e),
            }
        }
    }

    /// Delivers the queue in batches of at most `max` events, one batch at a time, each handed
    /// over by `send`. With a `linger`, a batch is taken that long after its first event was
    /// queued, so that the events queued meanwhile go with it.
    async fn run_batches<F, Fut>(self: &Arc<Self>, max: usize, linger: Option<Duration>, send: F)
    where
        F: Fn(Vec<Arc<Event>>) -> Fut,
        Fut: Future<Output = floe::Result<()>>,
    {
        loop {
            if let Some(linger) = linger {
                let pending = {
                    let g = self.inner.lock();
                    if g.state == State::Error {
                        return;
                    }
                    !g.events.is_empty()
                };
                if !pending {
                    self.wake.notified().await;
                    continue;
                }
                tokio::time::sleep(linger).await;
            }
            let Some(events) = self.take(max) else {
                return;
            };
            if events.is_empty() {
                self.wake.notified().await;
                continue;
            }
            let n = events.len();
            let result = send(events).await;
            self.settle(n, result);
        }
    }

    /// Sends events as requests one after the other, stopping at the first failure.
    async fn invoke_each(&self, events: Vec<Arc<Event>>) -> floe::Result<()> {
        for e in events {
            self.invoke(e).await?;
        }
        Ok(())
    }

    /// Batch subscribers: the events are queued as batched requests, then flushed.
    async fn invoke_batched(&self, events: Vec<Arc<Event>>) -> floe::Result<()> {
        self.invoke_each(events).await?;
        self.obj.ice_flush_batch_requests().await
    }

    /// Links: the events within the link's cost go to the linked topic in as few `forward`
    /// calls as `Ice.MessageSizeMax` allows.
    async fn forward(&self, link: &TopicLinkPrx, events: Vec<Arc<Event>>) -> floe::Result<()> {
        let cost = self.rec.cost;
        let max = self.shared.config.message_size_max;
        let mut batch: Vec<EventData> = Vec::new();
        let mut bytes = self.overhead;
        for e in events.iter().filter(|e| cost == 0 || e.cost() <= cost) {
            let size = e.size() + self.per_event;
            if !batch.is_empty() && bytes + size > max {
                link.forward(&std::mem::take(&mut batch)).await?;
                bytes = self.overhead;
            }
            bytes += size;
            batch.push(e.to_data());
        }
        if batch.is_empty() {
            return Ok(());
        }
        link.forward(&batch).await
    }

    /// ZeroC's rules for a failed delivery: ObjectNotExist and NotRegistered (and a full queue)
    /// remove the subscriber at once; other failures put it offline for `Discard.Interval`
    /// (its queue dropped, new events discarded) while it has retries left (`retryCount`, -1 =
    /// forever), and remove it after that.
    fn fail(&self, err: &Error) {
        let hard = matches!(
            err,
            Error::ObjectNotExist(_) | Error::NotRegistered { .. } | Error::MemoryLimit(_)
        );
        let now = Instant::now();
        let trace = self.shared.config.trace.subscriber;
        let name = self.shared.comm.identity_to_string(&self.id);
        let mut g = self.inner.lock();
        match g.state {
            State::Error => return,
            State::Offline(until) if !hard && now < until => return,
            _ => {}
        }
        if !hard && (self.retry_count == -1 || g.current_retry < self.retry_count) {
            let discard = self.shared.config.discard_interval;
            if g.current_retry == 0 {
                tracing::warn!(
                    target: "icestorm::subscriber",
                    "{name}: subscriber offline: {err}; discarding events for {:?}, retryCount: {}",
                    discard,
                    self.retry_count
                );
            } else if trace > 0 {
                tracing::info!(
                    target: "icestorm::subscriber",
                    "{name}: subscriber offline: {err}; discarding events for {:?}, retry {}/{}",
                    discard,
                    g.current_retry,
                    self.retry_count
                );
            }
            g.state = State::Offline(now + discard);
            g.current_retry += 1;
            g.events.clear();
        } else {
            g.state = State::Error;
            g.events.clear();
            let retry = g.current_retry;
            drop(g);
            if trace > 0 {
                tracing::info!(
                    target: "icestorm::subscriber",
                    "{name}: subscriber errored out: {err}; retry {retry}/{}",
                    self.retry_count
                );
            }
            self.reap();
        }
    }

    /// Asks the topic to remove this subscriber (once).
    pub(crate) fn reap(&self) {
        if self.reaping.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(t) = self.topic.upgrade() {
            t.reap_later(vec![self.rec.key.clone()]);
        }
    }

    fn trace_state(&self, state: &str) {
        if self.shared.config.trace.subscriber > 1 {
            tracing::debug!(
                target: "icestorm::subscriber",
                "{}: now {state}",
                self.shared.comm.identity_to_string(&self.id)
            );
        }
    }
}

/// The publisher object of one subscriber (`subscribeAndGetPublisher`'s result): its events go to
/// that subscriber only.
struct PerSubscriberPublisher {
    sub: Weak<Subscriber>,
}

impl Blobject for PerSubscriberPublisher {
    fn ice_invoke<'a>(
        &'a self,
        in_encaps: Bytes,
        current: &'a Current,
    ) -> BoxFuture<'a, floe::Result<(bool, Bytes)>> {
        let Some(sub) = self.sub.upgrade() else {
            return Box::pin(async { Err(Error::ObjectNotExist(Box::default())) });
        };
        Box::pin(async move {
            answer_publish(&sub.shared.clone(), in_encaps, current, |event, writes| {
                if !sub.queue(false, &[event], writes) {
                    sub.reap();
                }
            })
            .await
        })
    }
}

/// Handles a request to a publisher object: `publish` queues its event and, for a twoway
/// request, the answer (an empty success) waits for the writes to idle subscribers `publish`
/// started (as ZeroC's IceStorm writes to them before answering, so the event leaves first;
/// see [`Writes`]), never for a subscriber's queue.
pub(crate) async fn answer_publish(
    shared: &Shared,
    in_encaps: Bytes,
    current: &Current,
    publish: impl FnOnce(Arc<Event>, Option<&Arc<Writes>>),
) -> floe::Result<(bool, Bytes)> {
    if let Err(why) = shared.check_class_graphs(&current.operation, &in_encaps) {
        return Err(Error::Marshal(why));
    }
    let event = Arc::new(Event::from_current(&shared.memory, in_encaps, current));
    let writes = (current.request_id != 0).then(Arc::<Writes>::default);
    publish(event, writes.as_ref());
    if let Some(w) = writes {
        w.wait().await;
    }
    Ok((
        true,
        floe::protocol::empty_encapsulation(current.encoding.major, current.encoding.minor),
    ))
}

#[cfg(test)]
mod tests {
    use super::leading_int;

    #[test]
    fn leading_int_reads_like_atoi() {
        assert_eq!(leading_int("3"), 3);
        assert_eq!(leading_int(" -1"), -1);
        assert_eq!(leading_int("12abc"), 12);
        assert_eq!(leading_int("abc"), 0);
        assert_eq!(leading_int(""), 0);
        assert_eq!(leading_int("99999999999999"), i32::MAX);
        assert_eq!(leading_int("-99999999999999"), i32::MIN);
    }
}
