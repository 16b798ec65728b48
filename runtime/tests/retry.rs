//! Ice's `retry` suite, cut down: idempotent calls are retried after a lost connection, normal
//! calls that may have been delivered are not, `Ice.RetryIntervals=-1` turns retries off, and a
//! server's graceful CloseConnection makes the next call open a new connection without error.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use floe::codegen::BoxFuture;
use floe::{
    Connection, Dispatcher, Error, Identity, IncomingRequest, OperationMode, OutgoingResponse,
    Result, dispatch_builtin,
};
use parking_lot::Mutex;

/// Drops the connection (forcefully) on the first call of each operation, answers later ones.
#[derive(Default)]
struct Flaky {
    attempts: AtomicUsize,
    last_connection: Mutex<Option<Connection>>,
}

struct FlakyDispatcher(Arc<Flaky>);

impl Dispatcher for FlakyDispatcher {
    fn dispatch<'a>(
        &'a self,
        request: &'a mut IncomingRequest,
    ) -> BoxFuture<'a, Result<OutgoingResponse>> {
        Box::pin(async move {
            *self.0.last_connection.lock() = request.current().con.clone();
            let mode = match request.current().operation.as_str() {
                "idem" => OperationMode::Idempotent,
                "normal" => OperationMode::Normal,
                _ => {
                    return dispatch_builtin(
                        request,
                        "::Test::Flaky",
                        &["::Ice::Object", "::Test::Flaky"],
                    )
                    .await;
                }
            };
            request.check_mode(mode)?;
            request.read_empty_params()?;
            let n = self.0.attempts.fetch_add(1, Ordering::SeqCst);
            if n % 2 == 0 {
                if let Some(c) = &request.current().con {
                    c.close(false);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(request.reply(None, |os| os.write(&(n as i32))))
        })
    }
}

async fn flaky_server(
    client_props: &[(&str, &str)],
) -> (
    floe::Communicator,
    floe::Communicator,
    Arc<Flaky>,
    floe::ObjectPrx,
) {
    let server = client_communicator(&[]);
    let adapter = server
        .create_object_adapter_with_endpoints("Flaky", "tcp -h 127.0.0.1 -p 0")
        .await
        .unwrap();
    let flaky = Arc::new(Flaky::default());
    let prx = adapter
        .add(
            Arc::new(FlakyDispatcher(flaky.clone())),
            Identity::new("flaky", ""),
        )
        .unwrap();
    adapter.activate().unwrap();
    let client = client_communicator(client_props);
    let prx = client.string_to_proxy(&prx.to_string()).unwrap().unwrap();
    (server, client, flaky, prx)
}

async fn call(prx: &floe::ObjectPrx, op: &'static str, mode: OperationMode) -> Result<i32> {
    prx.invoke(op, mode, None, true, |_| {}, |is| is.read::<i32>())
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_call_is_retried_normal_is_not() {
    let (server, client, flaky, prx) = flaky_server(&[]).await;
    prx.ice_ping().await.unwrap();
    // First attempt loses the connection; the retry gets attempt number 1.
    assert_eq!(
        call(&prx, "idem", OperationMode::Idempotent).await.unwrap(),
        1
    );
    assert_eq!(flaky.attempts.load(Ordering::SeqCst), 2);
    // A normal call that was sent is not retried: the caller sees the lost connection.
    let r = call(&prx, "normal", OperationMode::Normal).await;
    assert!(matches!(r, Err(Error::ConnectionLost(_))), "{r:?}");
    assert_eq!(flaky.attempts.load(Ordering::SeqCst), 3);
    client.destroy().await;
    server.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_can_be_turned_off() {
    let (server, client, flaky, prx) = flaky_server(&[("Ice.RetryIntervals", "-1")]).await;
    let r = call(&prx, "idem", OperationMode::Idempotent).await;
    assert!(matches!(r, Err(Error::ConnectionLost(_))), "{r:?}");
    assert_eq!(flaky.attempts.load(Ordering::SeqCst), 1);
    client.destroy().await;
    server.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_server_close_is_transparent() {
    let (server, client, flaky, prx) = flaky_server(&[]).await;
    prx.ice_ping().await.unwrap();
    let client_conn = prx.ice_get_connection().await.unwrap();
    let server_conn = flaky.last_connection.lock().clone().unwrap();
    server_conn.close(true);
    let reason = tokio::time::timeout(Duration::from_secs(5), client_conn.wait_closed())
        .await
        .unwrap();
    assert_eq!(reason, Error::CloseConnection);
    let reason = tokio::time::timeout(Duration::from_secs(5), server_conn.wait_closed())
        .await
        .unwrap();
    assert!(matches!(reason, Error::ConnectionClosed(_)), "{reason:?}");
    prx.ice_ping().await.unwrap();
    assert_ne!(prx.ice_get_connection().await.unwrap(), client_conn);
    client.destroy().await;
    server.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeroc_server_graceful_close_is_transparent() {
    // Shutting the ZeroC server down closes its connections with CloseConnection; the call that
    // caused it still gets its reply, and a later call fails cleanly (nothing listens any more).
    require_zeroc();
    let py = start_python_server();
    let comm = client_communicator(&[]);
    let hello = HelloPrx(comm.string_to_proxy(&py.proxy).unwrap().unwrap());
    hello.ice_ping().await.unwrap();
    hello.shutdown().await.unwrap();
    let conn = hello.ice_get_connection().await;
    if let Ok(c) = conn {
        let _ = tokio::time::timeout(Duration::from_secs(5), c.wait_closed()).await;
    }
    let r = hello.ice_ping().await;
    assert!(
        matches!(
            r,
            Err(Error::ConnectionRefused(_)) | Err(Error::CloseConnection)
        ),
        "{r:?}"
    );
    comm.destroy().await;
}
