//! `Ice.AcceptClassCycles`: class graphs with cycles received from ZeroC's Python (which sends
//! whatever graph it is given) are refused by default, with the error ZeroC's C++ runtime gives,
//! and accepted when the property is set; no instance outlives a refused message, and an
//! accepted cycle is freed by `ValueRef::clear_graph`. Slice: `slice/Cycles.ice`; the Python side
//! is `python/cycles.py`.
//!
//! Every test here counts the live instances of one type, so they run one at a time.

mod common;
#[path = "common/tracked.rs"]
mod tracked;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use common::*;
use floe::codegen::{DispatchError, InputStream, OperationError, OutputStream, ValueRef};
use floe::encoding::CLASS_CYCLE_REFUSED;
use floe::{EncodingVersion, Error, OperationMode};
use tracked::{Tracked, live};

/// The tests share the count of live [`Tracked`] instances: each holds this lock.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn next_of(v: &ValueRef) -> Option<ValueRef> {
    v.read_as::<Tracked>().expect("a Tracked").next.clone()
}

/// The graph `Cycles::give(kind)` describes, checked: its number of distinct nodes, and whether
/// it has a cycle (kinds 2, 3 and 4).
fn check_shape(kind: i32, v: &Option<ValueRef>) {
    let Some(a) = v else {
        assert_eq!(kind, 0, "null graph for kind {kind}");
        return;
    };
    let b = next_of(a);
    match kind {
        1 => assert!(b.is_none(), "kind 1: a single node"),
        2 => assert!(b.as_ref() == Some(a), "kind 2: a node referencing itself"),
        3 => {
            let b = b.expect("kind 3: a second node");
            assert!(
                b != *a && next_of(&b).as_ref() == Some(a),
                "kind 3: two-node cycle"
            );
        }
        4 => {
            let b = b.expect("kind 4: a second node");
            let c = next_of(&b).expect("kind 4: a third node");
            assert!(c != b && c != *a, "kind 4: three nodes");
            assert!(
                next_of(&c) == Some(b),
                "kind 4: the last two reference each other"
            );
        }
        _ => panic!("unexpected kind {kind}"),
    }
}

/// Nodes of the graph of each kind (0..=4).
const NODES: [i64; 5] = [0, 1, 1, 2, 3];

/// `::FloeCycles::Carrier`.
#[derive(Debug)]
struct Carrier {
    t: Option<ValueRef>,
}

/// The error type of `Cycles::fail`, as generated.
#[derive(Debug)]
enum FailError {
    Carrier(Carrier),
    Runtime(Error),
}

impl From<Error> for FailError {
    fn from(e: Error) -> Self {
        FailError::Runtime(e)
    }
}

impl OperationError for FailError {
    fn decode_user_exception(
        type_id: &str,
        is: &mut InputStream<'_>,
    ) -> Option<floe::Result<Self>> {
        (type_id == "::FloeCycles::Carrier").then(|| {
            is.start_slice()?;
            let t = is.read_value()?;
            is.end_slice()?;
            Ok(FailError::Carrier(Carrier { t }))
        })
    }
    fn into_dispatch(self) -> DispatchError {
        match self {
            FailError::Carrier(_) => DispatchError::Runtime(Error::marshal("not sent here")),
            FailError::Runtime(e) => DispatchError::Runtime(e),
        }
    }
}

/// `Cycles::take` on a Floe server: keeps every graph it receives, so the test can count and
/// free them.
#[derive(Default)]
struct CyclesServant {
    received: parking_lot::Mutex<Vec<Option<ValueRef>>>,
}

struct CyclesDispatcher(Arc<CyclesServant>);

impl floe::Dispatcher for CyclesDispatcher {
    fn dispatch<'a>(
        &'a self,
        request: &'a mut floe::IncomingRequest,
    ) -> floe::codegen::BoxFuture<'a, floe::Result<floe::OutgoingResponse>> {
        Box::pin(async move {
            match request.current().operation.as_str() {
                "take" => {
                    let t = request.read_params(|is| {
                        let t = is.read_value()?;
                        is.read_pending_values()?;
                        Ok(t)
                    })?;
                    self.0.received.lock().push(t);
                    Ok(request.reply(None, |_| {}))
                }
                _ => {
                    floe::dispatch_builtin(
                        request,
                        "::FloeCycles::Cycles",
                        &["::FloeCycles::Cycles", "::Ice::Object"],
                    )
                    .await
                }
            }
        })
    }
}

fn cycles_script() -> std::path::PathBuf {
    python_dir().join("cycles.py")
}

/// Runs `cycles.py client PROXY EXPECT` and fails the test with its output unless it passed.
async fn run_cycles_client(proxy: String, expect: &'static str) {
    require_zeroc();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(PYTHON)
            .arg(cycles_script())
            .args(["client", &proxy, expect])
            .output()
            .expect("run python/cycles.py")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("OK client"),
        "cycles.py client {expect} failed:\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Floe server with [`CyclesServant`] and the given properties.
async fn cycles_server(props: &[(&str, &str)]) -> (floe::Communicator, Arc<CyclesServant>, String) {
    let server = start_floe_server(props).await;
    let servant = Arc::new(CyclesServant::default());
    let prx = server
        .adapter
        .add(
            Arc::new(CyclesDispatcher(servant.clone())),
            floe::Identity::new("cycles", ""),
        )
        .unwrap();
    (server.communicator, servant, prx.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_floe_server_refuses_cyclic_parameters_from_zeroc_by_default() {
    let _serial = SERIAL.lock().await;
    let before = live();
    let (comm, servant, proxy) = cycles_server(&[]).await;
    // cycles.py checks that each cyclic graph (a node referencing itself, two nodes, a cycle
    // behind a head node) fails with UnknownLocalException naming ::Ice::MarshalException and
    // ZeroC's reason, in 1.1 and in 1.0, and that acyclic ones pass.
    run_cycles_client(proxy, "refuse").await;
    // Only the acyclic graphs reached the servant: null and one node, in each encoding.
    {
        let received = servant.received.lock();
        assert_eq!(received.len(), 4, "{received:?}");
        assert_eq!(received.iter().flatten().count(), 2);
    }
    servant.received.lock().clear();
    assert_eq!(live(), before, "instances of refused graphs leaked");
    comm.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_floe_server_with_accept_class_cycles_takes_them_and_clear_graph_frees_them() {
    let _serial = SERIAL.lock().await;
    let before = live();
    let (comm, servant, proxy) = cycles_server(&[("Ice.AcceptClassCycles", "1")]).await;
    run_cycles_client(proxy, "accept").await;
    let received = std::mem::take(&mut *servant.received.lock());
    assert_eq!(received.len(), 10, "five graphs in each encoding");
    for (i, graph) in received.iter().enumerate() {
        check_shape(i as i32 % 5, graph);
    }
    assert_eq!(
        live() - before,
        2 * NODES.iter().sum::<i64>(),
        "every node alive"
    );
    // Dropping the graphs frees the acyclic ones only: cycles keep themselves alive.
    let cyclic: Vec<ValueRef> = received
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 5 >= 2)
        .filter_map(|(_, g)| g.clone())
        .collect();
    drop(received);
    assert_eq!(live() - before, 2 * (NODES[2] + NODES[3] + NODES[4]));
    for root in &cyclic {
        root.clear_graph();
    }
    drop(cyclic);
    assert_eq!(live(), before, "clear_graph left instances alive");
    comm.destroy().await;
}

/// A running `cycles.py server`; killed on drop.
struct PythonCyclesServer {
    child: Child,
    proxy: String,
}

impl Drop for PythonCyclesServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_python_cycles_server() -> PythonCyclesServer {
    require_zeroc();
    let mut child = Command::new(PYTHON)
        .arg(cycles_script())
        .arg("server")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start python/cycles.py server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let proxy = line
        .trim()
        .strip_prefix("PROXY ")
        .unwrap_or_else(|| panic!("cycles.py server said {line:?}"))
        .to_string();
    PythonCyclesServer { child, proxy }
}

async fn give(prx: &floe::ObjectPrx, kind: i32) -> floe::Result<Option<ValueRef>> {
    prx.invoke(
        "give",
        OperationMode::Normal,
        None,
        true,
        |os| os.write(&kind),
        |is| {
            let t = is.read_value()?;
            is.read_pending_values()?;
            Ok(t)
        },
    )
    .await
}

async fn fail(prx: &floe::ObjectPrx, kind: i32) -> Result<(), FailError> {
    prx.invoke(
        "fail",
        OperationMode::Normal,
        None,
        true,
        |os| os.write(&kind),
        |_| Ok(()),
    )
    .await
}

fn is_cycle_refusal(e: &Error) -> bool {
    matches!(e, Error::Marshal(reason) if reason == CLASS_CYCLE_REFUSED)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_floe_client_refuses_cyclic_results_and_exceptions_unless_told_to_accept_them() {
    let _serial = SERIAL.lock().await;
    let before = live();
    let server = start_python_cycles_server();
    for accept in [false, true] {
        let props: &[(&str, &str)] = if accept {
            &[("Ice.AcceptClassCycles", "1")]
        } else {
            &[]
        };
        let comm = client_communicator(props);
        let base = comm.string_to_proxy(&server.proxy).unwrap().unwrap();
        for encoding in [EncodingVersion::V1_1, EncodingVersion::V1_0] {
            let prx = base.ice_encoding_version(encoding);
            for kind in 0..5 {
                let cyclic = kind >= 2;
                let what = format!("kind {kind} in {encoding}, accept={accept}");
                // Results.
                match give(&prx, kind).await {
                    Ok(graph) if accept || !cyclic => {
                        check_shape(kind, &graph);
                        if let Some(g) = graph {
                            g.clear_graph();
                        }
                    }
                    Err(e) if !accept && cyclic => {
                        assert!(is_cycle_refusal(&e), "give {what}: {e:?}")
                    }
                    other => panic!("give {what}: {other:?}"),
                }
                // User exceptions carrying the graph.
                match fail(&prx, kind).await {
                    Err(FailError::Carrier(c)) if accept || !cyclic => {
                        check_shape(kind, &c.t);
                        if let Some(g) = c.t {
                            g.clear_graph();
                        }
                    }
                    Err(FailError::Runtime(e)) if !accept && cyclic => {
                        assert!(is_cycle_refusal(&e), "fail {what}: {e:?}")
                    }
                    other => panic!("fail {what}: {other:?}"),
                }
                assert_eq!(live(), before, "{what}: instances leaked");
            }
        }
        comm.destroy().await;
    }
}

/// `Pair { Tracked first; Tracked second; }`: only for the hand-written stream below.
#[derive(Debug, Default)]
struct Pair {
    first: Option<ValueRef>,
    second: Option<ValueRef>,
}

impl floe::codegen::Value for Pair {
    fn ice_id(&self) -> &'static str {
        "::FloeCycles::Pair"
    }
    fn encode_value(&self, os: &mut OutputStream) {
        os.start_slice("::FloeCycles::Pair", None, true);
        os.write_value(&self.first);
        os.write_value(&self.second);
        os.end_slice();
    }
    fn decode_value(&mut self, is: &mut InputStream<'_>) -> floe::Result<()> {
        is.start_slice()?;
        self.first = is.read_value()?;
        self.second = is.read_value()?;
        is.end_slice()
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

floe::codegen::inventory::submit! {
    floe::codegen::ValueFactory {
        type_id: "::FloeCycles::Pair",
        compact_id: None,
        create: || Box::new(Pair::default()),
    }
}

/// Builds graph `kind` of `Cycles::give` here.
fn graph(kind: i32) -> Option<ValueRef> {
    let node = |next| {
        let mut t = Tracked::default();
        t.next = next;
        ValueRef::new(t)
    };
    match kind {
        0 => None,
        1 => Some(node(None)),
        2 => {
            let a = node(None);
            a.write_as::<Tracked>().unwrap().next = Some(a.clone());
            Some(a)
        }
        3 => {
            let a = node(None);
            let b = node(Some(a.clone()));
            a.write_as::<Tracked>().unwrap().next = Some(b);
            Some(a)
        }
        _ => {
            let c = node(None);
            let b = node(Some(c.clone()));
            c.write_as::<Tracked>().unwrap().next = Some(b.clone());
            Some(node(Some(b)))
        }
    }
}

/// Floe's own encoder, every encoding and format (1.1 sliced puts the references in indirection
/// tables): cyclic graphs are refused by default (in 1.0 too, where ZeroC 3.7.8 catches only a
/// node referencing itself) and accepted with the flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphs_written_by_floe_are_refused_in_every_encoding_and_format_when_cyclic() {
    use floe::codegen::FormatType;
    let _serial = SERIAL.lock().await;
    let before = live();
    for (encoding, format) in [
        (EncodingVersion::V1_1, FormatType::Compact),
        (EncodingVersion::V1_1, FormatType::Sliced),
        (EncodingVersion::V1_0, FormatType::Compact),
    ] {
        for kind in 0..5 {
            let sent = graph(kind);
            let mut os = OutputStream::new(EncodingVersion::V1_0);
            os.start_encapsulation(encoding, format);
            os.write_value(&sent);
            os.write_pending_values();
            os.end_encapsulation();
            let bytes = os.finish().unwrap();
            if let Some(g) = sent {
                g.clear_graph();
            }
            for accept in [false, true] {
                let what = format!("kind {kind}, {encoding} {format:?}, accept={accept}");
                let mut is = InputStream::new(&bytes, EncodingVersion::V1_0);
                is.set_accept_class_cycles(accept);
                let r = (|| {
                    is.start_encapsulation()?;
                    let v = is.read_value()?;
                    is.read_pending_values()?;
                    is.end_encapsulation()?;
                    Ok(v)
                })();
                match r {
                    Ok(g) if accept || kind < 2 => {
                        check_shape(kind, &g);
                        if let Some(g) = g {
                            g.clear_graph();
                        }
                    }
                    Err(e) if !accept && kind >= 2 => {
                        assert!(is_cycle_refusal(&e), "{what}: {e:?}");
                        is.discard_values();
                    }
                    other => panic!("{what}: {other:?}"),
                }
                assert_eq!(live(), before, "{what}: instances leaked");
            }
        }
    }
}

/// 1.1 streams with a reference to an instance further on (Ice's encoder never writes one, and
/// ZeroC's eager check misses a cycle through it): `Pair` A holds B and C; B's `next` is C,
/// referenced before C is read; C's `next` is B, complete by then. Floe checks such a graph in
/// full once A is read. A reference left unresolved when the outermost instance is complete is
/// refused, as Ice refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_through_a_forward_reference_is_refused() {
    let _serial = SERIAL.lock().await;
    let before = live();
    let instance = |type_id: &str| {
        let mut v = vec![0x01, 0x21, type_id.len() as u8];
        v.extend_from_slice(type_id.as_bytes());
        v
    };
    let mut bytes = instance("::FloeCycles::Pair"); // A, id 2
    bytes.extend(instance("::FloeCycles::Tracked")); // A.first = B, id 3
    bytes.push(0x04); // B.next = instance 4, not read yet
    bytes.extend(instance("::FloeCycles::Tracked")); // A.second = C, id 4
    bytes.push(0x03); // C.next = B
    for accept in [false, true] {
        let mut is = InputStream::new(&bytes, EncodingVersion::V1_1);
        is.set_accept_class_cycles(accept);
        let r = is.read_value();
        assert!(is.is_at_end());
        if accept {
            let a = r.expect("accepted").expect("not null");
            let (b, c) = {
                let pair = a.read_as::<Pair>().expect("a Pair");
                (pair.first.clone().unwrap(), pair.second.clone().unwrap())
            };
            assert_eq!(next_of(&b), Some(c.clone()));
            assert_eq!(next_of(&c), Some(b.clone()));
            a.clear_graph();
        } else {
            assert!(matches!(&r, Err(e) if is_cycle_refusal(e)), "{r:?}");
            is.discard_values();
        }
        assert_eq!(live(), before, "accept={accept}: instances leaked");
    }

    // A reference to instance 3 that never arrives before A (id 2) is complete.
    let mut dangling = instance("::FloeCycles::Tracked");
    dangling.push(0x03);
    for accept in [false, true] {
        let mut is = InputStream::new(&dangling, EncodingVersion::V1_1);
        is.set_accept_class_cycles(accept);
        let r = is.read_value();
        assert!(
            matches!(&r, Err(Error::Marshal(m)) if m.contains("no instance")),
            "{r:?}"
        );
        is.discard_values();
    }
    assert_eq!(live(), before, "instances leaked");
}
