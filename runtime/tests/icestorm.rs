//! Floe against ZeroC's own IceStorm 3.7.8 (icebox + IceStormService, transient mode): a Floe
//! client creates topics (and gets TopicExists back as a user exception), subscribes Floe
//! servants with twoway-ordered and oneway proxies passed as parameters, publishes events with a
//! context through the publisher proxy IceStorm returns, and the subscribers receive the same
//! operation, context and bytes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::client_communicator;
use floe::codegen::{BoxFuture, DispatchError, InputStream, OperationError};
use floe::{
    Blobject, BlobjectDispatcher, Context, Current, Error, Identity, ObjectPrx, OperationMode,
    Result,
};
use floe_test_support::IceBox;
use parking_lot::Mutex;

/// `::IceStorm::TopicExists`, written as generated code would.
#[derive(Debug)]
struct TopicExists {
    name: String,
}

impl std::fmt::Display for TopicExists {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "topic `{}` exists", self.name)
    }
}

impl std::error::Error for TopicExists {}

impl floe::codegen::UserException for TopicExists {
    fn ice_id(&self) -> &'static str {
        "::IceStorm::TopicExists"
    }
    fn encode_exception(&self, os: &mut floe::codegen::OutputStream) {
        os.start_slice("::IceStorm::TopicExists", None, true);
        os.write(&self.name);
        os.end_slice();
    }
    fn uses_classes(&self) -> bool {
        false
    }
}

#[derive(Debug)]
enum CreateError {
    TopicExists(TopicExists),
    Runtime(Error),
}

impl From<Error> for CreateError {
    fn from(e: Error) -> Self {
        CreateError::Runtime(e)
    }
}

impl OperationError for CreateError {
    fn decode_user_exception(type_id: &str, is: &mut InputStream<'_>) -> Option<Result<Self>> {
        (type_id == "::IceStorm::TopicExists").then(|| {
            is.start_slice()?;
            let name = is.read::<String>()?;
            is.end_slice()?;
            Ok(CreateError::TopicExists(TopicExists { name }))
        })
    }
    fn into_dispatch(self) -> DispatchError {
        match self {
            CreateError::TopicExists(e) => DispatchError::User(Box::new(e)),
            CreateError::Runtime(e) => DispatchError::Runtime(e),
        }
    }
}

async fn create(tm: &ObjectPrx, name: &str) -> std::result::Result<Option<ObjectPrx>, CreateError> {
    tm.invoke(
        "create",
        OperationMode::Normal,
        None,
        true,
        |os| os.write(name),
        |is| is.read::<Option<ObjectPrx>>(),
    )
    .await
}

async fn get_publisher(topic: &ObjectPrx) -> Result<Option<ObjectPrx>> {
    topic
        .invoke(
            "getPublisher",
            OperationMode::Nonmutating,
            None,
            true,
            |_| {},
            |is| is.read::<Option<ObjectPrx>>(),
        )
        .await
}

async fn subscribe(
    topic: &ObjectPrx,
    qos: &Context,
    subscriber: &ObjectPrx,
) -> Result<Option<ObjectPrx>> {
    topic
        .invoke(
            "subscribeAndGetPublisher",
            OperationMode::Normal,
            None,
            true,
            |os| {
                os.write(qos);
                os.write(&Some(subscriber.clone()));
            },
            |is| is.read::<Option<ObjectPrx>>(),
        )
        .await
}

/// A subscriber that records every event it receives, raw.
#[derive(Default)]
struct Recorder(Mutex<Vec<(String, OperationMode, Context, Bytes)>>);

impl Blobject for Recorder {
    fn ice_invoke<'a>(
        &'a self,
        in_encaps: Bytes,
        current: &'a Current,
    ) -> BoxFuture<'a, Result<(bool, Bytes)>> {
        Box::pin(async move {
            self.0.lock().push((
                current.operation.clone(),
                current.mode,
                current.ctx.clone(),
                in_encaps,
            ));
            Ok((true, floe::protocol::empty_encapsulation(1, 1)))
        })
    }
}

async fn wait_events(r: &Recorder, n: usize) -> Vec<(String, OperationMode, Context, Bytes)> {
    for _ in 0..300 {
        if r.0.lock().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    r.0.lock().clone()
}

fn tick_params(s: &str) -> Bytes {
    let mut os = floe::codegen::OutputStream::new(floe::EncodingVersion::V1_0);
    os.start_encapsulation(floe::EncodingVersion::V1_1, Default::default());
    os.write(s);
    os.end_encapsulation();
    os.finish().unwrap().into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floe_publishes_and_subscribes_through_zeroc_icestorm() {
    let icebox = IceBox::start("IceStorm.Flush.Timeout=100\nIce.Default.Host=127.0.0.1\n");
    let comm = client_communicator(&[]);
    let tm = comm
        .string_to_proxy(icebox.topic_manager())
        .unwrap()
        .unwrap();
    assert!(tm.ice_is_a("::IceStorm::TopicManager").await.unwrap());

    let topic = create(&tm, "news").await.unwrap().expect("a topic proxy");
    assert_eq!(
        topic.ice_get_identity(),
        &Identity::new("topic.news", "IceStorm")
    );
    match create(&tm, "news").await {
        Err(CreateError::TopicExists(e)) => assert_eq!(e.name, "news"),
        other => panic!("expected TopicExists, got {other:?}"),
    }

    let adapter = comm
        .create_object_adapter_with_endpoints("Subs", "tcp -h 127.0.0.1 -p 0")
        .await
        .unwrap();
    let (a, b) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    let sub_a = adapter
        .add(
            Arc::new(BlobjectDispatcher(a.clone())),
            Identity::new("clockA", "subs"),
        )
        .unwrap();
    let sub_b = adapter
        .add(
            Arc::new(BlobjectDispatcher(b.clone())),
            Identity::new("clockB", "subs"),
        )
        .unwrap();
    adapter.activate().unwrap();
    let mut ordered = Context::new();
    ordered.insert("reliability".into(), "ordered".into());
    subscribe(&topic, &ordered, &sub_a).await.unwrap();
    subscribe(&topic, &Context::new(), &sub_b.ice_oneway())
        .await
        .unwrap();

    let publisher = get_publisher(&topic)
        .await
        .unwrap()
        .expect("a publisher proxy");
    let mut ctx = Context::new();
    ctx.insert("src".into(), "floe".into());
    // A twoway publish is answered at once with an empty Ok; a oneway one gets no reply.
    let (ok, out) = publisher
        .ice_invoke(
            "tick",
            OperationMode::Normal,
            tick_params("12:00"),
            Some(&ctx),
        )
        .await
        .unwrap();
    assert!(ok);
    assert_eq!(&out[..], &[6, 0, 0, 0, 1, 1]);
    publisher
        .ice_oneway()
        .ice_invoke(
            "tick",
            OperationMode::Idempotent,
            tick_params("12:01"),
            Some(&ctx),
        )
        .await
        .unwrap();

    for r in [&a, &b] {
        let mut events = wait_events(r, 2).await;
        // Only the ordered subscriber is guaranteed the publishing order.
        events.sort_by(|x, y| x.3.cmp(&y.3));
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0].0, "tick");
        assert_eq!(events[0].1, OperationMode::Normal);
        assert_eq!(
            events[1].1,
            OperationMode::Idempotent,
            "the mode byte is forwarded"
        );
        assert_eq!(events[0].2, ctx, "the context is forwarded");
        assert_eq!(
            events[0].3,
            tick_params("12:00"),
            "the bytes are forwarded unchanged"
        );
        assert_eq!(events[1].3, tick_params("12:01"));
    }

    // Destroy the topic.
    topic
        .invoke::<(), Error>(
            "destroy",
            OperationMode::Normal,
            None,
            false,
            |_| {},
            |_| Ok(()),
        )
        .await
        .unwrap();
    comm.destroy().await;
}
