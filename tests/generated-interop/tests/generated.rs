//! Generated code on the wire, both ways: ZeroC's Python client calls a Floe server whose servant
//! and dispatcher are `slice2rs` output (encodings 1.1 and 1.0), and a generated Rust proxy calls a
//! ZeroC Python server. Every Slice type category, out parameters, optionals, user exceptions with
//! inheritance, classes with inheritance and proxies are exercised.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use floe::codegen::ValueRef;
use floe::{Communicator, Identity, Properties};
use floe_generated_interop_tests::dispatcher;
use floe_generated_interop_tests::interop::{
    Circle, Color, Point, Shape, TesterPrx, tester::FailError,
};
use floe_test_support::{ChildGuard, PYTHON, require_python};

fn require_zeroc() {
    require_python(
        "Ice",
        "python3-zeroc-ice zeroc-ice-compilers zeroc-ice-slice",
    );
}

fn python_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python")
}

async fn python_client_against_generated_servant(encoding: &str) {
    require_zeroc();
    let communicator = Communicator::with_properties(Properties::new()).expect("communicator");
    let adapter = communicator
        .create_object_adapter_with_endpoints("Tester", "tcp -h 127.0.0.1 -p 0")
        .await
        .expect("adapter");
    let prx = adapter
        .add(dispatcher(), Identity::new("tester", ""))
        .expect("add servant");
    adapter.activate().expect("activate");
    let proxy = communicator.proxy_to_string(Some(&prx));
    let encoding = encoding.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(PYTHON)
            .arg(python_dir().join("client.py"))
            .arg(&proxy)
            .arg(&encoding)
            .output()
            .expect("run the Python client")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("OK "),
        "ZeroC's client failed against the generated servant ({}):\n{stdout}\n{stderr}",
        out.status
    );
    tokio::time::timeout(Duration::from_secs(10), communicator.wait_for_shutdown())
        .await
        .expect("the client's shutdown() call reached the servant");
    communicator.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeroc_client_calls_generated_servant_encoding_1_1() {
    python_client_against_generated_servant("1.1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeroc_client_calls_generated_servant_encoding_1_0() {
    python_client_against_generated_servant("1.0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_proxy_calls_zeroc_server() {
    require_zeroc();
    tokio::time::timeout(Duration::from_secs(60), proxy_scenario())
        .await
        .expect("the generated-proxy scenario finished within 60 s");
}

async fn proxy_scenario() {
    let mut child = ChildGuard::new(
        Command::new(PYTHON)
            .arg(python_dir().join("server.py"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the Python server"),
    );
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the port");
    let port: u16 = line
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the Python server printed {line:?} instead of its port"));

    let communicator = Communicator::with_properties(Properties::new()).expect("communicator");
    let base = communicator
        .string_to_proxy(&format!("tester:tcp -h 127.0.0.1 -p {port}"))
        .expect("parse proxy")
        .expect("not null");
    let t = TesterPrx::checked_cast(&base)
        .await
        .expect("ice_isA")
        .expect("the Python servant is a Tester");

    assert_eq!(t.echo("héllo").await.expect("echo"), "héllo");
    assert_eq!(t.add(2, 40).await.expect("add"), 42);
    let mirrored = t
        .mirror(&[Point { x: 1, y: 2 }, Point { x: 3, y: 4 }])
        .await
        .expect("mirror");
    assert_eq!(
        mirrored.return_value,
        vec![Point { x: 3, y: 4 }, Point { x: 1, y: 2 }]
    );
    assert_eq!(mirrored.counts.get("points"), Some(&2));
    assert_eq!(t.next(Color::Blue).await.expect("next"), Color::Red);
    assert_eq!(t.maybe(Some("abc".into())).await.expect("maybe"), Some(3));
    assert_eq!(t.maybe(None).await.expect("maybe unset"), None);

    match t.fail(0).await {
        Err(FailError::BaseError(e)) => assert_eq!(e.reason, "base"),
        other => panic!("fail(0) gave {other:?}"),
    }
    match t.fail(7).await {
        Err(FailError::DetailError(e)) => {
            assert_eq!(e.reason, "detail");
            assert_eq!(e.code, 7);
        }
        other => panic!("fail(7) gave {other:?}"),
    }

    let grown = t
        .grow(Some(ValueRef::new(Circle {
            name: "c".into(),
            radius: 1.5,
        })))
        .await
        .expect("grow")
        .expect("not null");
    {
        let c = grown.read_as::<Circle>().expect("a Circle comes back");
        assert_eq!((c.name.as_str(), c.radius), ("c+", 3.0));
    }
    let grown = t
        .grow(Some(ValueRef::new(Shape { name: "s".into() })))
        .await
        .expect("grow")
        .expect("not null");
    assert_eq!(grown.read_as::<Shape>().expect("a Shape").name, "s+");
    assert!(t.grow(None).await.expect("grow null").is_none());

    let me = t.self_().await.expect("self").expect("not null");
    assert_eq!(me.ice_get_identity(), t.ice_get_identity());
    me.ice_ping()
        .await
        .expect("ping through the returned proxy");

    t.shutdown().await.expect("shutdown");
    let status = child
        .wait_or_kill_async(Duration::from_secs(60))
        .await
        .expect("the Python server exits after shutdown()");
    assert!(status.success(), "the Python server exited with {status}");
    communicator.destroy().await;
}
