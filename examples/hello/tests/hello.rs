//! The hello demo as a user runs it: the real server binary, our client binary, and ZeroC's Python
//! client against it; the server exits when a client calls `shutdown`.

use std::process::{Command, Stdio};
use std::time::Duration;

use floe_test_support::{ChildGuard, PYTHON, config_arg, first_line, write_config};

struct Server {
    child: ChildGuard,
    port: u16,
    _dir: tempfile::TempDir,
}

/// Writes a property file, as a user of the demo would.
fn config(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    config_arg(&write_config(dir.path(), name, text))
}

fn start_server() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = config(
        &dir,
        "config.server",
        "Hello.Endpoints=tcp -h 127.0.0.1 -p 0\n",
    );
    let mut child = ChildGuard::new(
        Command::new(env!("CARGO_BIN_EXE_hello-server"))
            .arg(cfg)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start hello-server"),
    );
    // The rest is drained, so the server's greetings never meet a closed pipe.
    let line = first_line(&mut child, Duration::from_secs(20)).unwrap_or_default();
    let port = line
        .split_whitespace()
        .skip_while(|w| *w != "-p")
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("hello-server printed {line:?} instead of its endpoint"));
    Server {
        child,
        port,
        _dir: dir,
    }
}

fn client_config(server: &Server) -> String {
    config(
        &server._dir,
        "config.client",
        &format!("Hello.Proxy=hello:tcp -h 127.0.0.1 -p {}\n", server.port),
    )
}

#[test]
fn floe_client_calls_floe_server_then_shuts_it_down() {
    let mut server = start_server();
    let out = Command::new(env!("CARGO_BIN_EXE_hello-client"))
        .args([client_config(&server).as_str(), "t", "o", "t", "s"])
        .output()
        .expect("run hello-client");
    assert!(
        out.status.success(),
        "hello-client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = server.child.wait().expect("wait for the server");
    assert!(status.success(), "hello-server exited with {status}");
}

#[test]
fn zeroc_python_client_calls_floe_server() {
    floe_test_support::require_python("Ice", "python3-zeroc-ice");
    let mut server = start_server();
    let slice = concat!(env!("CARGO_MANIFEST_DIR"), "/Hello.ice");
    let script = format!(
        "import sys, Ice\nIce.loadSlice({slice:?})\nimport Demo\n\
         with Ice.initialize(sys.argv) as c:\n    h = Demo.HelloPrx.checkedCast(c.propertyToProxy('Hello.Proxy'))\n    \
         assert h is not None\n    h.sayHello(10)\n    h.ice_oneway().sayHello(0)\n    h.shutdown()\n    print('OK')\n"
    );
    let out = Command::new(PYTHON)
        .args(["-c", &script, &client_config(&server)])
        .output()
        .expect("run the Python client");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("OK"),
        "ZeroC's client failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let status = server.child.wait().expect("wait for the server");
    assert!(status.success(), "hello-server exited with {status}");
}
