//! Where a connection starts the dispatch of large parameters (`slice/Decoding.ice`): on the
//! blocking pool when they may hold classes (a class graph of many small instances decodes slowly
//! for its size), in place otherwise. Generated dispatchers tell which operations may, from their
//! in-parameters' types; a Blobject decodes nothing; a hand-written dispatcher may do anything.

use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use bytes::Bytes;
use floe::codegen::{BoxFuture, Current, Error, IncomingRequest, OutgoingResponse, ValueRef};
use floe::{
    Blobject, BlobjectDispatcher, Communicator, Dispatcher, Identity, OperationMode, Properties,
};

floe::include_slice!("Decoding");

use decoding::{C, CMap, I, IDispatcher, IPrx, J, JDispatcher, Plain, Wrapped};

/// Records each call and whether it ran on the thread that created the recorder.
#[derive(Debug)]
struct Recorder {
    home: ThreadId,
    calls: Mutex<Vec<(String, bool)>>,
}

impl Recorder {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            home: std::thread::current().id(),
            calls: Mutex::new(Vec::new()),
        })
    }

    fn record(&self, what: &str) {
        let at_home = std::thread::current().id() == self.home;
        self.calls.lock().unwrap().push((what.to_string(), at_home));
    }

    fn calls(&self) -> Vec<(String, bool)> {
        self.calls.lock().unwrap().clone()
    }
}

impl I for Recorder {
    async fn big(&self, _b: Vec<u8>, _current: &Current) -> Result<(), Error> {
        self.record("big");
        Ok(())
    }

    async fn graph(&self, _c: Option<ValueRef>, _current: &Current) -> Result<(), Error> {
        self.record("graph");
        Ok(())
    }

    async fn opt(&self, _c: Option<ValueRef>, _current: &Current) -> Result<(), Error> {
        self.record("opt");
        Ok(())
    }

    async fn name(&self, _current: &Current) -> Result<String, Error> {
        self.record("name");
        Ok("recorder".into())
    }

    async fn held(&self, _w: Wrapped, _current: &Current) -> Result<(), Error> {
        self.record("held");
        Ok(())
    }

    async fn plain(&self, _p: Plain, _current: &Current) -> Result<(), Error> {
        self.record("plain");
        Ok(())
    }

    async fn mapped(&self, _m: CMap, _current: &Current) -> Result<(), Error> {
        self.record("mapped");
        Ok(())
    }
}

impl J for Recorder {
    async fn more(&self, _b: Vec<u8>, _current: &Current) -> Result<(), Error> {
        self.record("more");
        Ok(())
    }
}

impl Blobject for Recorder {
    fn ice_invoke<'a>(
        &'a self,
        _in_encaps: Bytes,
        current: &'a Current,
    ) -> BoxFuture<'a, floe::Result<(bool, Bytes)>> {
        self.record(&format!("blobject {}", current.operation));
        Box::pin(async { Ok((true, Bytes::from_static(&[6, 0, 0, 0, 1, 1]))) })
    }
}

/// A dispatcher written by hand, with the default answer.
struct ByHand(Arc<Recorder>);

impl Dispatcher for ByHand {
    fn dispatch<'a>(
        &'a self,
        request: &'a mut IncomingRequest,
    ) -> BoxFuture<'a, floe::Result<OutgoingResponse>> {
        self.0
            .record(&format!("by hand {}", request.current().operation));
        Box::pin(async move { Ok(request.reply_empty()) })
    }
}

#[test]
fn generated_dispatchers_flag_the_operations_whose_parameters_may_hold_classes() {
    let i = IDispatcher(Recorder::new());
    for (operation, slow) in [
        ("big", false),
        ("graph", true),
        ("opt", true),
        ("name", false),
        ("held", true),
        ("plain", false),
        ("mapped", true),
        ("ice_ping", false),
        ("ice_isA", false),
        ("noSuchOperation", false),
    ] {
        assert_eq!(i.may_decode_slowly(operation), slow, "I::{operation}");
    }
    // Inherited operations count too.
    let j = JDispatcher(Recorder::new());
    for (operation, slow) in [
        ("more", false),
        ("big", false),
        ("graph", true),
        ("opt", true),
    ] {
        assert_eq!(j.may_decode_slowly(operation), slow, "J::{operation}");
    }
    assert!(!BlobjectDispatcher(Recorder::new()).may_decode_slowly("graph"));
    assert!(ByHand(Recorder::new()).may_decode_slowly("anything"));
}

/// The encapsulation (1.1) around `body`.
fn encaps(body: &[u8]) -> Bytes {
    let mut out = ((body.len() + 6) as i32).to_le_bytes().to_vec();
    out.extend_from_slice(&[1, 1]);
    out.extend_from_slice(body);
    out.into()
}

// tokio's current-thread runtime: every task runs on this test's thread, so a servant called
// elsewhere was called from the blocking pool.
#[tokio::test]
async fn large_parameters_are_decoded_in_place_unless_they_may_hold_classes() {
    let recorder = Recorder::new();
    let communicator = Communicator::with_properties(Properties::new()).expect("communicator");
    let adapter = communicator
        .create_object_adapter_with_endpoints("Decoding", "tcp -h 127.0.0.1 -p 0")
        .await
        .expect("adapter");
    let i = adapter
        .add(
            Arc::new(IDispatcher(recorder.clone())),
            Identity::new("i", ""),
        )
        .expect("add the generated dispatcher");
    let raw = adapter
        .add(
            Arc::new(BlobjectDispatcher(recorder.clone())),
            Identity::new("raw", ""),
        )
        .expect("add the Blobject");
    let by_hand = adapter
        .add(
            Arc::new(ByHand(recorder.clone())),
            Identity::new("by-hand", ""),
        )
        .expect("add the hand-written dispatcher");
    adapter.activate().expect("activate");
    let i = IPrx::unchecked_cast(i);

    let large = vec![7u8; 200 * 1024];
    let class = |data: &[u8]| {
        Some(ValueRef::new(C {
            data: data.to_vec(),
        }))
    };
    i.big(&large).await.expect("big");
    i.graph(class(&large)).await.expect("large graph");
    i.graph(class(&[1])).await.expect("small graph");
    i.opt(class(&large)).await.expect("large opt");
    i.plain(&Plain {
        s: "plain".into(),
        b: large.clone(),
    })
    .await
    .expect("plain");
    i.held(&Wrapped { c: class(&large) }).await.expect("held");
    assert_eq!(i.name().await.expect("name"), "recorder");
    for prx in [&raw, &by_hand] {
        let (ok, _) = prx
            .ice_invoke("anything", OperationMode::Normal, encaps(&large), None)
            .await
            .expect("ice_invoke");
        assert!(ok);
    }
    communicator.destroy().await;

    let expected: Vec<(String, bool)> = [
        ("big", true),
        ("graph", false),
        ("graph", true),
        ("opt", false),
        ("plain", true),
        ("held", false),
        ("name", true),
        ("blobject anything", true),
        ("by hand anything", false),
    ]
    .into_iter()
    .map(|(what, in_place)| (what.to_string(), in_place))
    .collect();
    assert_eq!(
        recorder.calls(),
        expected,
        "(call, dispatched on the runtime's thread)"
    );
}
