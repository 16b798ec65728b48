//! Shared pieces of the interop tests: the ZeroC Python checks, a Floe server with hand-written
//! dispatchers (written the way generated code is, per docs/codegen-surface.md), and helpers to
//! run the Python client and server scripts.
#![allow(dead_code)]

pub mod cpp;
pub mod types;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use floe::codegen::{
    BoxFuture, DispatchError, InputStream, OperationError, OutputStream, Proxy, UserException,
};
use floe::{
    Communicator, Dispatcher, Error, Identity, IncomingRequest, ObjectAdapter, ObjectPrx,
    OperationMode, OutgoingResponse, Properties, Result, dispatch_builtin,
};

use floe_test_support::ChildGuard;
pub use floe_test_support::PYTHON;

/// Fails (never skips) when ZeroC's Python mapping is missing.
pub fn require_zeroc() {
    floe_test_support::require_python(
        "Ice",
        "python3-zeroc-ice zeroc-ice-compilers zeroc-ice-slice",
    );
}

pub fn python_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python")
}

/// Longest a Python client script may run before the test fails.
const PYTHON_CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `client.py PROXY SCENARIO extra...` and fails the test with its output unless it
/// printed `OK SCENARIO`.
pub async fn run_python_client(proxy: &str, scenario: &str, extra: &[&str]) {
    let (ok, text) = try_python_client(proxy, scenario, extra).await;
    assert!(ok, "python client scenario {scenario} failed:\n{text}");
}

/// Runs `client.py` and returns (success, combined output) without asserting; a client that
/// runs longer than a minute is killed and counts as failed.
pub async fn try_python_client(proxy: &str, scenario: &str, extra: &[&str]) -> (bool, String) {
    require_zeroc();
    let mut child = ChildGuard::new(
        Command::new(PYTHON)
            .arg(python_dir().join("client.py"))
            .arg(proxy)
            .arg(scenario)
            .args(extra)
            .current_dir(python_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run python client"),
    );
    let status = child.wait_or_kill_async(PYTHON_CLIENT_TIMEOUT).await;
    let mut stdout = String::new();
    let mut stderr = String::new();
    use std::io::Read;
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut stdout);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let text = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    match status {
        Some(st) => (st.success() && stdout.contains("OK "), text),
        None => (
            false,
            format!("killed after {PYTHON_CLIENT_TIMEOUT:?}\n{text}"),
        ),
    }
}

/// A running `server.py`; killed on drop.
pub struct PythonServer {
    pub child: ChildGuard,
    pub proxy: String,
}

pub fn start_python_server() -> PythonServer {
    start_python_server_with(&[])
}

/// [`start_python_server`] with Ice options (`--Name=value`) for its communicator; its adapter is
/// named `Py`.
pub fn start_python_server_with(options: &[&str]) -> PythonServer {
    require_zeroc();
    let mut child = Command::new(PYTHON)
        .arg(python_dir().join("server.py"))
        .args(options)
        .current_dir(python_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start python server");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let proxy = line
        .trim()
        .strip_prefix("PROXY ")
        .unwrap_or_else(|| panic!("server said {line:?}"))
        .to_string();
    PythonServer {
        child: ChildGuard::new(child),
        proxy,
    }
}

pub const HELLO_TYPE_ID: &str = "::FloeTest::Hello";
pub const HELLO_TYPE_IDS: &[&str] = &["::FloeTest::Hello", "::Ice::Object"];
pub const ADMIN_TYPE_ID: &str = "::FloeTest::Admin";
pub const ADMIN_TYPE_IDS: &[&str] = &["::FloeTest::Admin", "::Ice::Object"];

#[derive(Default)]
pub struct HelloImpl {
    pub notifications: AtomicI32,
    pub suffix: String,
}

/// `::FloeTest::TestFailure`, written the way slice2rs generates an exception.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TestFailure {
    pub reason: String,
}

impl std::fmt::Display for TestFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "::FloeTest::TestFailure {{ reason: {:?} }}", self.reason)
    }
}

impl std::error::Error for TestFailure {}

impl UserException for TestFailure {
    fn ice_id(&self) -> &'static str {
        "::FloeTest::TestFailure"
    }
    fn encode_exception(&self, os: &mut OutputStream) {
        os.start_slice("::FloeTest::TestFailure", None, true);
        os.write(&self.reason);
        os.end_slice();
    }
    fn uses_classes(&self) -> bool {
        false
    }
}

impl TestFailure {
    pub fn decode_exception(is: &mut InputStream<'_>) -> Result<TestFailure> {
        is.start_slice()?;
        let reason = is.read::<String>()?;
        is.end_slice()?;
        Ok(TestFailure { reason })
    }
}

/// The error type of `Hello::fail`, as generated (`hello::FailError`).
#[derive(Debug)]
pub enum FailError {
    TestFailure(TestFailure),
    Runtime(Error),
}

impl From<Error> for FailError {
    fn from(e: Error) -> Self {
        FailError::Runtime(e)
    }
}

impl OperationError for FailError {
    fn decode_user_exception(type_id: &str, is: &mut InputStream<'_>) -> Option<Result<Self>> {
        match type_id {
            "::FloeTest::TestFailure" => {
                Some(TestFailure::decode_exception(is).map(FailError::TestFailure))
            }
            _ => None,
        }
    }
    fn into_dispatch(self) -> DispatchError {
        match self {
            FailError::TestFailure(e) => DispatchError::User(Box::new(e)),
            FailError::Runtime(e) => DispatchError::Runtime(e),
        }
    }
}

/// `::FloeTest::Hello*`, as generated.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HelloPrx(pub ObjectPrx);

impl Proxy for HelloPrx {
    const TYPE_ID: &'static str = HELLO_TYPE_ID;
    fn from_object(prx: ObjectPrx) -> Self {
        HelloPrx(prx)
    }
    fn as_object(&self) -> &ObjectPrx {
        &self.0
    }
}

impl std::ops::Deref for HelloPrx {
    type Target = ObjectPrx;
    fn deref(&self) -> &ObjectPrx {
        &self.0
    }
}

impl HelloPrx {
    pub async fn checked_cast(prx: &ObjectPrx) -> Result<Option<HelloPrx>> {
        Ok(if prx.ice_is_a(Self::TYPE_ID).await? {
            Some(HelloPrx(prx.clone()))
        } else {
            None
        })
    }

    pub async fn say_hello(&self, name: &str) -> Result<String> {
        self.0
            .invoke(
                "sayHello",
                OperationMode::Normal,
                None,
                true,
                |os| os.write(name),
                |is| is.read::<String>(),
            )
            .await
    }

    pub async fn add(&self, a: i32, b: i32) -> Result<i32> {
        self.0
            .invoke(
                "add",
                OperationMode::Idempotent,
                None,
                true,
                |os| {
                    os.write(&a);
                    os.write(&b);
                },
                |is| is.read::<i32>(),
            )
            .await
    }

    pub async fn notify(&self, msg: &str) -> Result<()> {
        self.0
            .invoke(
                "notify",
                OperationMode::Normal,
                None,
                false,
                |os| os.write(msg),
                |_| Ok(()),
            )
            .await
    }

    pub async fn notify_count(&self) -> Result<i32> {
        self.0
            .invoke(
                "notifyCount",
                OperationMode::Idempotent,
                None,
                true,
                |_| {},
                |is| is.read::<i32>(),
            )
            .await
    }

    pub async fn slow(&self, ms: i32) -> Result<()> {
        self.0
            .invoke(
                "slow",
                OperationMode::Normal,
                None,
                false,
                |os| os.write(&ms),
                |_| Ok(()),
            )
            .await
    }

    pub async fn fail(&self, reason: &str) -> std::result::Result<(), FailError> {
        self.0
            .invoke(
                "fail",
                OperationMode::Normal,
                None,
                false,
                |os| os.write(reason),
                |_| Ok(()),
            )
            .await
    }

    pub async fn echo_proxy(&self, p: Option<&ObjectPrx>) -> Result<Option<ObjectPrx>> {
        self.0
            .invoke(
                "echoProxy",
                OperationMode::Normal,
                None,
                true,
                |os| os.write(&p.cloned()),
                |is| is.read::<Option<ObjectPrx>>(),
            )
            .await
    }

    pub async fn callback(&self, name: &str) -> Result<()> {
        self.0
            .invoke(
                "callback",
                OperationMode::Normal,
                None,
                false,
                |os| os.write(name),
                |_| Ok(()),
            )
            .await
    }

    pub async fn shutdown(&self) -> Result<()> {
        self.0
            .invoke(
                "shutdown",
                OperationMode::Normal,
                None,
                false,
                |_| {},
                |_| Ok(()),
            )
            .await
    }
}

pub struct HelloDispatcher(pub Arc<HelloImpl>);

impl Dispatcher for HelloDispatcher {
    fn dispatch<'a>(
        &'a self,
        request: &'a mut IncomingRequest,
    ) -> BoxFuture<'a, Result<OutgoingResponse>> {
        Box::pin(async move {
            match request.current().operation.as_str() {
                "sayHello" => {
                    request.check_mode(OperationMode::Normal)?;
                    let name = request.read_params(|is| is.read::<String>())?;
                    let ret = if self.0.suffix.is_empty() {
                        format!("Hello, {name}!")
                    } else {
                        format!(
                            "Hello, {name}! ({} {})",
                            self.0.suffix,
                            request
                                .current()
                                .adapter
                                .communicator()
                                .identity_to_string(&request.current().id)
                        )
                    };
                    Ok(request.reply(None, |os| os.write(&ret)))
                }
                "add" => {
                    request.check_mode(OperationMode::Idempotent)?;
                    let (a, b) =
                        request.read_params(|is| Ok((is.read::<i32>()?, is.read::<i32>()?)))?;
                    Ok(request.reply(None, |os| os.write(&(a.wrapping_add(b)))))
                }
                "notify" => {
                    request.check_mode(OperationMode::Normal)?;
                    let _msg = request.read_params(|is| is.read::<String>())?;
                    self.0.notifications.fetch_add(1, Ordering::SeqCst);
                    Ok(request.reply(None, |_| {}))
                }
                "notifyCount" => {
                    request.check_mode(OperationMode::Idempotent)?;
                    request.read_empty_params()?;
                    let n = self.0.notifications.load(Ordering::SeqCst);
                    Ok(request.reply(None, |os| os.write(&n)))
                }
                "echoBytes" => {
                    request.check_mode(OperationMode::Normal)?;
                    let data = request.read_params(|is| is.read::<Vec<u8>>())?;
                    Ok(request.reply(None, |os| os.write(&data)))
                }
                "getContext" => {
                    request.check_mode(OperationMode::Normal)?;
                    request.read_empty_params()?;
                    let ctx = request.current().ctx.clone();
                    Ok(request.reply(None, |os| os.write(&ctx)))
                }
                "slow" => {
                    request.check_mode(OperationMode::Normal)?;
                    let ms = request.read_params(|is| is.read::<i32>())?;
                    tokio::time::sleep(Duration::from_millis(ms.max(0) as u64)).await;
                    Ok(request.reply(None, |_| {}))
                }
                "fail" => {
                    request.check_mode(OperationMode::Normal)?;
                    let reason = request.read_params(|is| is.read::<String>())?;
                    let result: std::result::Result<(), FailError> =
                        Err(FailError::TestFailure(TestFailure { reason }));
                    match result {
                        Ok(()) => Ok(request.reply(None, |_| {})),
                        Err(e) => request.reply_error(e),
                    }
                }
                "callback" => {
                    request.check_mode(OperationMode::Normal)?;
                    let name = request.read_params(|is| is.read::<String>())?;
                    let con = request.current().con.clone().ok_or_else(|| {
                        Error::IllegalArgument("no connection to call back on".into())
                    })?;
                    let cb = con.create_proxy(Identity::new(name, ""))?;
                    cb.invoke::<(), Error>(
                        "ping",
                        OperationMode::Normal,
                        None,
                        false,
                        |os| os.write("from server"),
                        |_| Ok(()),
                    )
                    .await?;
                    Ok(request.reply(None, |_| {}))
                }
                "echoProxy" => {
                    request.check_mode(OperationMode::Normal)?;
                    let p = request.read_params(|is| is.read::<Option<ObjectPrx>>())?;
                    Ok(request.reply(None, |os| os.write(&p)))
                }
                "shutdown" => {
                    request.check_mode(OperationMode::Normal)?;
                    request.read_empty_params()?;
                    request.current().adapter.communicator().shutdown();
                    Ok(request.reply(None, |_| {}))
                }
                _ => dispatch_builtin(request, HELLO_TYPE_ID, HELLO_TYPE_IDS).await,
            }
        })
    }
}

/// `::FloeTest::Callback`: records the messages it receives.
#[derive(Default)]
pub struct CallbackDispatcher(pub parking_lot::Mutex<Vec<String>>);

impl Dispatcher for CallbackDispatcher {
    fn dispatch<'a>(
        &'a self,
        request: &'a mut IncomingRequest,
    ) -> BoxFuture<'a, Result<OutgoingResponse>> {
        Box::pin(async move {
            match request.current().operation.as_str() {
                "ping" => {
                    request.check_mode(OperationMode::Normal)?;
                    let msg = request.read_params(|is| is.read::<String>())?;
                    self.0.lock().push(msg);
                    Ok(request.reply(None, |_| {}))
                }
                _ => {
                    dispatch_builtin(
                        request,
                        "::FloeTest::Callback",
                        &["::FloeTest::Callback", "::Ice::Object"],
                    )
                    .await
                }
            }
        })
    }
}

pub struct AdminDispatcher;

impl Dispatcher for AdminDispatcher {
    fn dispatch<'a>(
        &'a self,
        request: &'a mut IncomingRequest,
    ) -> BoxFuture<'a, Result<OutgoingResponse>> {
        Box::pin(async move {
            match request.current().operation.as_str() {
                "name" => {
                    request.check_mode(OperationMode::Normal)?;
                    request.read_empty_params()?;
                    Ok(request.reply(None, |os| os.write("admin facet")))
                }
                _ => dispatch_builtin(request, ADMIN_TYPE_ID, ADMIN_TYPE_IDS).await,
            }
        })
    }
}

/// A Floe server on 127.0.0.1:0 with `hello`, its `admin` facet and a default servant for
/// category `any`.
pub struct FloeServer {
    pub communicator: Communicator,
    pub adapter: ObjectAdapter,
    pub hello: Arc<HelloImpl>,
    pub proxy: ObjectPrx,
}

pub async fn start_floe_server(props: &[(&str, &str)]) -> FloeServer {
    start_floe_server_on("tcp -h 127.0.0.1 -p 0:udp -h 127.0.0.1 -p 0", props).await
}

/// [`start_floe_server`] listening on `endpoints`.
pub async fn start_floe_server_on(endpoints: &str, props: &[(&str, &str)]) -> FloeServer {
    let properties = Properties::new();
    for (k, v) in props {
        properties.set_property(k, v);
    }
    let communicator = Communicator::with_properties(properties).unwrap();
    let adapter = communicator
        .create_object_adapter_with_endpoints("Test", endpoints)
        .await
        .unwrap();
    let hello = Arc::new(HelloImpl::default());
    let proxy = adapter
        .add(
            Arc::new(HelloDispatcher(hello.clone())),
            Identity::new("hello", ""),
        )
        .unwrap();
    adapter
        .add_facet(
            Arc::new(AdminDispatcher),
            Identity::new("hello", ""),
            "admin",
        )
        .unwrap();
    let default = HelloImpl {
        suffix: "default servant for".into(),
        ..Default::default()
    };
    adapter
        .add_default_servant(Arc::new(HelloDispatcher(Arc::new(default))), "any")
        .unwrap();
    adapter.activate().unwrap();
    FloeServer {
        communicator,
        adapter,
        hello,
        proxy,
    }
}

/// A communicator for test clients; calls give up after 20 s so that a broken peer fails the
/// test instead of hanging it.
pub fn client_communicator(props: &[(&str, &str)]) -> Communicator {
    let properties = Properties::new();
    properties.set_property("Ice.Default.InvocationTimeout", "20000");
    for (k, v) in props {
        properties.set_property(k, v);
    }
    Communicator::with_properties(properties).unwrap()
}

pub fn unused(_: Error) {}
