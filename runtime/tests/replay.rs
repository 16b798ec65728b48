//! Replays the requests ZeroC's client sent in the captured sessions (`rpc_events.json`) to a
//! Floe server with an equivalent `manager` servant, and compares Floe's replies with ZeroC's
//! byte for byte: ValidateConnection, built-ins, ObjectNotExist/FacetNotExist/
//! OperationNotExist payloads, oneway and batch handling, and bzip2-compressed replies. For
//! status 5 replies only the status is compared (the text is informational).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use floe::codegen::BoxFuture;
use floe::{
    Communicator, Dispatcher, Identity, IncomingRequest, OperationMode, OutgoingResponse,
    Properties, Result, dispatch_builtin,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn vectors() -> Value {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let candidates = [
        root.join("ice/vectors/out"),
        root.join("../shared/ice/vectors/out"),
    ];
    let dir = std::env::var("FLOE_VECTORS")
        .map(PathBuf::from)
        .ok()
        .or_else(|| {
            candidates
                .iter()
                .find(|c| c.join("rpc_events.json").exists())
                .cloned()
        })
        .unwrap_or_else(|| {
            panic!("rpc_events.json not found in {candidates:?} (or set FLOE_VECTORS)")
        });
    serde_json::from_str(&std::fs::read_to_string(dir.join("rpc_events.json")).unwrap()).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

struct Manager;

/// `::Wire::DerivedErr{detail} extends ::Wire::BaseErr{code}`, as generated code writes it.
#[derive(Debug)]
struct DerivedErr {
    code: i32,
    detail: String,
}

impl std::fmt::Display for DerivedErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DerivedErr({}, {})", self.code, self.detail)
    }
}

impl std::error::Error for DerivedErr {}

impl floe::codegen::UserException for DerivedErr {
    fn ice_id(&self) -> &'static str {
        "::Wire::DerivedErr"
    }
    fn encode_exception(&self, os: &mut floe::codegen::OutputStream) {
        os.start_slice("::Wire::DerivedErr", None, false);
        os.write(&self.detail);
        os.end_slice();
        os.start_slice("::Wire::BaseErr", None, true);
        os.write(&self.code);
        os.end_slice();
    }
    fn uses_classes(&self) -> bool {
        false
    }
}

/// The `types` object of the captures' server, for its exception operations.
struct Types;

impl Dispatcher for Types {
    fn dispatch<'a>(
        &'a self,
        request: &'a mut IncomingRequest,
    ) -> BoxFuture<'a, Result<OutgoingResponse>> {
        Box::pin(async move {
            request.read_empty_params()?;
            match request.current().operation.as_str() {
                // A servant may raise an exception its operation does not declare: still status 1.
                "throwUndeclared" => request.reply_error(floe::codegen::AnyUserException::User(
                    Box::new(DerivedErr {
                        code: 9,
                        detail: "undeclared".into(),
                    }),
                )),
                "throwLocal" => Err(floe::Error::MemoryLimit("raised by the servant".into())),
                // Empty fields are filled in from the request.
                "throwOne" => Err(floe::Error::ObjectNotExist(Box::default())),
                "throwUnknown" => panic!("not an Ice exception"),
                _ => {
                    dispatch_builtin(
                        request,
                        "::Wire::Types",
                        &["::Ice::Object", "::Wire::Types"],
                    )
                    .await
                }
            }
        })
    }
}

impl Dispatcher for Manager {
    fn dispatch<'a>(
        &'a self,
        request: &'a mut IncomingRequest,
    ) -> BoxFuture<'a, Result<OutgoingResponse>> {
        Box::pin(async move {
            match request.current().operation.as_str() {
                "notify" => {
                    request.check_mode(OperationMode::Normal)?;
                    request.read_params(|is| is.read::<String>())?;
                    Ok(request.reply(None, |_| {}))
                }
                "echo" => {
                    request.check_mode(OperationMode::Normal)?;
                    let s = request.read_params(|is| is.read::<String>())?;
                    Ok(request.reply(None, |os| os.write(&s)))
                }
                "login" => {
                    request.check_mode(OperationMode::Normal)?;
                    let (_user, _password) = request
                        .read_params(|is| Ok((is.read::<String>()?, is.read::<String>()?)))?;
                    Ok(request.reply(None, |os| os.write(&None::<floe::ObjectPrx>)))
                }
                "getUser" => {
                    request.check_mode(OperationMode::Idempotent)?;
                    request.read_empty_params()?;
                    Ok(request.reply(None, |os| os.write("alice")))
                }
                _ => {
                    dispatch_builtin(
                        request,
                        "::UsersManager::Manager",
                        &["::Ice::Object", "::UsersManager::Manager"],
                    )
                    .await
                }
            }
        })
    }
}

async fn read_message(s: &mut TcpStream) -> Vec<u8> {
    let mut h = [0u8; 14];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut h))
        .await
        .expect("a reply")
        .unwrap();
    let size = i32::from_le_bytes([h[10], h[11], h[12], h[13]]) as usize;
    let mut msg = h.to_vec();
    msg.resize(size, 0);
    s.read_exact(&mut msg[14..]).await.unwrap();
    msg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floe_replies_match_zeroc_byte_for_byte() {
    let comm = Communicator::with_properties(Properties::new()).unwrap();
    let adapter = comm
        .create_object_adapter_with_endpoints("Replay", "tcp -h 127.0.0.1 -p 0")
        .await
        .unwrap();
    let prx = adapter
        .add(Arc::new(Manager), Identity::new("manager", ""))
        .unwrap();
    adapter
        .add(Arc::new(Types), Identity::new("types", ""))
        .unwrap();
    // The session object that mode_mismatch calls getUser on.
    adapter
        .add(Arc::new(Manager), Identity::new("alice", "sessions"))
        .unwrap();
    adapter.activate().unwrap();
    let port = match &prx.ice_get_endpoints()[0] {
        floe::Endpoint::Ip(ip) => ip.port,
        other => panic!("{other:?}"),
    };
    let scenarios = [
        "checkedcast_isA",
        "ice_ping",
        "ice_id_ids",
        "isA_false",
        "facet_request",
        "oneway",
        "batch_oneway",
        "object_not_exist",
        "object_not_exist_category",
        "operation_not_exist",
        "bad_params_unmarshal",
        "unsupported_encoding",
        "mode_mismatch",
        "compression",
        "exc_undeclared",
        "exc_local",
        "exc_servant_objectnotexist",
        "exc_unknown",
    ];
    let v = vectors();
    let mut compared = 0;
    let mut exact = 0;
    for scenario in scenarios {
        let events: Vec<&Value> = v["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["scenario"] == scenario && e["kind"] == "msg")
            .collect();
        assert!(
            !events.is_empty(),
            "scenario {scenario} missing from the captures"
        );
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut last_op = String::new();
        for e in events {
            let bytes = hex(e["hex"].as_str().unwrap());
            let d = &e["decoded"];
            if e["dir"] == "C>S" {
                last_op = d["operation"].as_str().unwrap_or("").to_string();
                s.write_all(&bytes).await.unwrap();
                if bytes[8] == 4 {
                    let mut rest = Vec::new();
                    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
                        .await
                        .unwrap()
                        .unwrap();
                    assert!(rest.is_empty(), "{scenario}: nothing after CloseConnection");
                }
                continue;
            }
            let got = read_message(&mut s).await;
            compared += 1;
            let status = d.get("replyStatus").and_then(Value::as_str).unwrap_or("");
            if status.starts_with('5')
                || status.starts_with('7')
                || (scenario == "mode_mismatch" && last_op == "login")
            {
                // Same header fields and status; the text (or the returned proxy) differs.
                assert_eq!(got[..10], bytes[..10], "{scenario}: header");
                assert_eq!(
                    got[14..19],
                    bytes[14..19],
                    "{scenario}: request id and status"
                );
            } else {
                assert_eq!(hexs(&got), hexs(&bytes), "{scenario}: reply to {last_op}");
                exact += 1;
            }
        }
    }
    assert!(
        compared >= 22 && exact >= 16,
        "compared {compared}, exact {exact}"
    );
    comm.destroy().await;
}

fn hexs(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A fake server that plays ZeroC's side of a captured scenario: it sends the captured server
/// messages and checks that every message the client sends equals the captured client message.
async fn fake_zeroc_server(events: Vec<Value>) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        for e in events {
            let bytes = hex(e["hex"].as_str().unwrap());
            if e["dir"] == "S>C" {
                s.write_all(&bytes).await.unwrap();
            } else {
                let got = read_message(&mut s).await;
                assert_eq!(
                    hexs(&got),
                    hexs(&bytes),
                    "{} seq {}: client message differs",
                    e["scenario"],
                    e["seq"]
                );
            }
        }
    });
    (port, task)
}

fn scenario_events(v: &Value, scenario: &str) -> Vec<Value> {
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["scenario"] == scenario && e["kind"] == "msg")
        .cloned()
        .collect()
}

fn encaps11(body: &[u8]) -> bytes::Bytes {
    let mut v = ((6 + body.len()) as i32).to_le_bytes().to_vec();
    v.extend_from_slice(&[1, 1]);
    v.extend_from_slice(body);
    v.into()
}

fn string_body(s: &str) -> Vec<u8> {
    let mut os = floe::encoding::OutputStream::new(floe::EncodingVersion::V1_1);
    os.write(s);
    os.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floe_requests_match_zeroc_byte_for_byte() {
    use floe::Error;
    let v = vectors();
    let scenarios = [
        "checkedcast_isA",
        "ice_ping",
        "ice_id_ids",
        "isA_false",
        "context",
        "facet_request",
        "oneway",
        "batch_oneway",
        "object_not_exist",
        "operation_not_exist",
        "unsupported_encoding",
        "compression",
    ];
    for scenario in scenarios {
        let (port, server) = fake_zeroc_server(scenario_events(&v, scenario)).await;
        let comm = Communicator::with_properties(Properties::new()).unwrap();
        let z = if scenario == "compression" { " -z" } else { "" };
        let target = if scenario == "object_not_exist" {
            "nosuch"
        } else {
            "manager"
        };
        let prx = comm
            .string_to_proxy(&format!("{target}:tcp -h 127.0.0.1 -p {port}{z}"))
            .unwrap()
            .unwrap();
        match scenario {
            "checkedcast_isA" => assert!(prx.ice_is_a("::UsersManager::Manager").await.unwrap()),
            "ice_ping" => prx.ice_ping().await.unwrap(),
            "ice_id_ids" => {
                assert_eq!(prx.ice_id().await.unwrap(), "::UsersManager::Manager");
                assert_eq!(
                    prx.ice_ids().await.unwrap(),
                    vec!["::Ice::Object", "::UsersManager::Manager"]
                );
            }
            "isA_false" => assert!(!prx.ice_is_a("::Wire::Types").await.unwrap()),
            "context" => {
                let mut ctx = floe::Context::new();
                ctx.insert("user".into(), "alice".into());
                ctx.insert("trace".into(), "1".into());
                prx.ice_context(ctx.clone()).ice_ping().await.unwrap();
                let mut body = string_body("alice");
                body.extend(string_body("secret"));
                let (ok, _) = prx
                    .ice_invoke("login", OperationMode::Normal, encaps11(&body), Some(&ctx))
                    .await
                    .unwrap();
                assert!(ok);
            }
            "facet_request" => {
                let r = prx.ice_facet("admin").ice_ping().await;
                assert!(matches!(r, Err(Error::FacetNotExist(_))), "{r:?}");
            }
            "oneway" => {
                prx.ice_oneway()
                    .ice_invoke(
                        "notify",
                        OperationMode::Normal,
                        encaps11(&string_body("hello")),
                        None,
                    )
                    .await
                    .unwrap();
                prx.ice_ping().await.unwrap();
            }
            "batch_oneway" => {
                let batch = prx.ice_batch_oneway();
                for m in ["b1", "b2", "b3"] {
                    batch
                        .ice_invoke(
                            "notify",
                            OperationMode::Normal,
                            encaps11(&string_body(m)),
                            None,
                        )
                        .await
                        .unwrap();
                }
                batch.ice_flush_batch_requests().await.unwrap();
                prx.ice_ping().await.unwrap();
            }
            "object_not_exist" => {
                let r = prx.ice_ping().await;
                assert!(matches!(r, Err(Error::ObjectNotExist(_))), "{r:?}");
            }
            "operation_not_exist" => {
                let r = prx
                    .ice_invoke("noSuchOp", OperationMode::Normal, encaps11(&[]), None)
                    .await;
                assert!(matches!(r, Err(Error::OperationNotExist(_))), "{r:?}");
            }
            "unsupported_encoding" => {
                let bad = bytes::Bytes::from_static(&[6, 0, 0, 0, 1, 2]);
                let r = prx
                    .ice_invoke("ice_ping", OperationMode::Nonmutating, bad, None)
                    .await;
                assert!(matches!(r, Err(Error::UnknownLocalException(_))), "{r:?}");
            }
            "compression" => {
                for s in ["short".to_string(), "compress me please ".repeat(25)] {
                    let (ok, out) = prx
                        .ice_invoke(
                            "echo",
                            OperationMode::Normal,
                            encaps11(&string_body(&s)),
                            None,
                        )
                        .await
                        .unwrap();
                    assert!(ok);
                    assert_eq!(&out[6..], &string_body(&s)[..]);
                }
            }
            _ => unreachable!(),
        }
        comm.destroy().await;
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap_or_else(|_| panic!("{scenario}: the fake server did not see the whole session"))
            .unwrap_or_else(|e| panic!("{scenario}: {e}"));
    }
}
