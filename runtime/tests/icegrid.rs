//! Interop with a real IceGrid registry (Debian's `zeroc-icegrid`, `icegridregistry`):
//! a Floe server registers its adapter (alone and in a replica group) and ZeroC Python clients
//! reach it by `object @ adapter`, by replica group and by well-known name; a Floe client
//! resolves an adapter a ZeroC server registered; a registry that refuses dynamic registration
//! is reported as Ice reports it.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use floe::{Error, Identity, Proxy};
use floe_test_support::{ChildGuard, free_port, wait_listening};

const INSTANCE: &str = "FloeGrid";

/// A running `icegridregistry` with its data in a fresh directory; killed on drop.
struct Registry {
    child: ChildGuard,
    port: u16,
    dir: PathBuf,
}

impl Registry {
    fn start(name: &str, dynamic_registration: bool) -> Registry {
        let registry = "/usr/bin/icegridregistry";
        assert!(
            std::path::Path::new(registry).exists(),
            "{registry} is missing: install the Debian package zeroc-icegrid"
        );
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("icegrid-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("db")).unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let port = free_port();
        let child = Command::new(registry)
            .arg(format!("--IceGrid.InstanceName={INSTANCE}"))
            .arg(format!(
                "--IceGrid.Registry.Client.Endpoints=tcp -h 127.0.0.1 -p {port}"
            ))
            .arg("--IceGrid.Registry.Server.Endpoints=tcp -h 127.0.0.1")
            .arg("--IceGrid.Registry.Internal.Endpoints=tcp -h 127.0.0.1")
            .arg(format!(
                "--IceGrid.Registry.LMDB.Path={}",
                dir.join("db").display()
            ))
            .arg("--IceGrid.Registry.LMDB.MapSize=16")
            .arg(format!(
                "--IceGrid.Registry.DynamicRegistration={}",
                i32::from(dynamic_registration)
            ))
            .arg(format!(
                "--IceGrid.Registry.AdminPermissionsVerifier={INSTANCE}/NullPermissionsVerifier"
            ))
            .arg("--IceGrid.Registry.Discovery.Enabled=0")
            .arg("--IceGrid.Registry.Trace.Locator=2")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start icegridregistry");
        let registry = Registry {
            child: ChildGuard::new(child),
            port,
            dir,
        };
        wait_listening(port, "icegridregistry");
        registry
    }

    fn locator(&self) -> String {
        format!("{INSTANCE}/Locator:tcp -h 127.0.0.1 -p {}", self.port)
    }

    fn admin_registry(&self) -> String {
        format!("{INSTANCE}/Registry:tcp -h 127.0.0.1 -p {}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// Runs `icegrid_admin.py` against the registry and returns its output; fails the test
    /// unless it succeeded.
    fn admin(&self, args: &[&str]) -> String {
        require_zeroc();
        let mut child = ChildGuard::new(
            Command::new(PYTHON)
                .arg(python_dir().join("icegrid_admin.py"))
                .arg(self.admin_registry())
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run icegrid_admin.py"),
        );
        let status = child.wait_or_kill(Duration::from_secs(30));
        let mut out = String::new();
        use std::io::Read;
        if let Some(mut o) = child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut out);
        }
        assert!(
            status.is_some_and(|s| s.success()) && out.contains("OK"),
            "icegrid_admin.py {args:?} failed:\n{out}\nregistry log:\n{}",
            self.log()
        );
        out
    }

    /// Waits until the registry lists `adapter_id` (in `group`, or in none with "-").
    fn wait_adapter(&self, adapter_id: &str, group: &str) {
        let want = format!("ADAPTER {adapter_id} {group}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.admin(&["adapters"]).lines().any(|l| l == want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the registry never listed `{want}`; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.child.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeroc_clients_reach_a_floe_adapter_and_well_known_object_through_icegrid() {
    let grid = Registry::start("adapter", true);
    let locator = grid.locator();
    let server = start_floe_server_on(
        "tcp -h 127.0.0.1 -p 0",
        &[
            ("Ice.Default.Locator", &locator),
            ("Test.AdapterId", "FloeHello"),
        ],
    )
    .await;
    server.adapter.register_with_locator(true).await.unwrap();
    grid.wait_adapter("FloeHello", "-");

    let indirect = server.adapter.create_proxy(Identity::new("hello", ""));
    assert_eq!(indirect.ice_get_adapter_id(), "FloeHello");
    let locator_option = format!("--Ice.Default.Locator={locator}");
    run_python_client("hello @ FloeHello", "operations", &[&locator_option]).await;

    // A well-known object: the registry maps the bare identity to the indirect proxy.
    grid.admin(&["add-object", "hello @ FloeHello", HELLO_TYPE_ID]);
    run_python_client("hello", "operations", &[&locator_option]).await;

    // A Floe client resolves the same names through the registry's locator.
    let client = client_communicator(&[("Ice.Default.Locator", &locator)]);
    for name in ["hello @ FloeHello", "hello"] {
        let hello = HelloPrx::from_object(client.string_to_proxy(name).unwrap().unwrap());
        assert_eq!(
            hello.say_hello(name).await.unwrap(),
            format!("Hello, {name}!"),
            "through `{name}`"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_group_of_floe_adapters_survives_losing_a_member() {
    let grid = Registry::start("replicas", true);
    let locator = grid.locator();
    let mut servers = Vec::new();
    for id in ["Hello-1", "Hello-2"] {
        let server = start_floe_server_on(
            "tcp -h 127.0.0.1 -p 0",
            &[
                ("Ice.Default.Locator", &locator),
                ("Test.AdapterId", id),
                ("Test.ReplicaGroupId", "HelloGroup"),
            ],
        )
        .await;
        server.adapter.register_with_locator(true).await.unwrap();
        grid.wait_adapter(id, "HelloGroup");
        assert_eq!(
            server
                .adapter
                .create_proxy(Identity::new("hello", ""))
                .ice_get_adapter_id(),
            "HelloGroup",
            "a replicated adapter's proxies go through its group"
        );
        assert_eq!(
            server
                .adapter
                .create_indirect_proxy(Identity::new("hello", ""))
                .ice_get_adapter_id(),
            id
        );
        servers.push(server);
    }
    let locator_option = format!("--Ice.Default.Locator={locator}");
    run_python_client("hello @ HelloGroup", "operations", &[&locator_option]).await;

    // One member unregisters and goes away; the group still answers, from the other.
    let gone = servers.remove(0);
    gone.adapter.register_with_locator(false).await.unwrap();
    gone.communicator.destroy().await;
    run_python_client("hello @ HelloGroup", "operations", &[&locator_option]).await;
    let client = client_communicator(&[("Ice.Default.Locator", &locator)]);
    let hello = HelloPrx::from_object(
        client
            .string_to_proxy("hello @ HelloGroup")
            .unwrap()
            .unwrap(),
    );
    assert_eq!(hello.say_hello("group").await.unwrap(), "Hello, group!");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activate_and_register_returns_once_the_registry_knows_the_adapter() {
    let grid = Registry::start("activate", true);
    let locator = grid.locator();
    let comm = client_communicator(&[
        ("Ice.Default.Locator", &locator),
        ("Quick.AdapterId", "Quick"),
    ]);
    let adapter = comm
        .create_object_adapter_with_endpoints("Quick", "tcp -h 127.0.0.1 -p 0")
        .await
        .unwrap();
    adapter
        .add(
            std::sync::Arc::new(HelloDispatcher(std::sync::Arc::default())),
            Identity::new("hello", ""),
        )
        .unwrap();
    adapter.activate_and_register().await.unwrap();
    // No waiting: a client that looks the adapter up right away finds it.
    let client = client_communicator(&[("Ice.Default.Locator", &locator)]);
    let hello = HelloPrx::from_object(client.string_to_proxy("hello @ Quick").unwrap().unwrap());
    assert_eq!(hello.say_hello("now").await.unwrap(), "Hello, now!");

    // Deactivation unregisters before wait_for_deactivate returns.
    adapter.deactivate();
    adapter.wait_for_deactivate().await;
    let listed = grid.admin(&["adapters"]);
    assert!(
        !listed.lines().any(|l| l.starts_with("ADAPTER Quick ")),
        "the registry still lists a deactivated adapter:\n{listed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_floe_client_reaches_an_adapter_a_zeroc_server_registered() {
    let grid = Registry::start("zeroc-server", true);
    let locator = grid.locator();
    let locator_option = format!("--Ice.Default.Locator={locator}");
    let py = start_python_server_with(&[&locator_option, "--Py.AdapterId=PyHello"]);
    assert!(
        py.proxy.contains("@ PyHello"),
        "the ZeroC server's proxy is indirect: {}",
        py.proxy
    );
    grid.wait_adapter("PyHello", "-");
    let client = client_communicator(&[("Ice.Default.Locator", &locator)]);
    let hello = HelloPrx::from_object(client.string_to_proxy(&py.proxy).unwrap().unwrap());
    assert_eq!(hello.say_hello("floe").await.unwrap(), "Hello, floe!");
    assert_eq!(hello.add(40, 2).await.unwrap(), 42);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_without_dynamic_registration_refuses_an_unknown_adapter() {
    let grid = Registry::start("static", false);
    let locator = grid.locator();
    let server = start_floe_server_on(
        "tcp -h 127.0.0.1 -p 0",
        &[
            ("Ice.Default.Locator", &locator),
            ("Test.AdapterId", "Unknown"),
        ],
    )
    .await;
    match server.adapter.register_with_locator(true).await {
        Err(Error::NotRegistered { kind, id }) => {
            assert_eq!((kind.as_str(), id.as_str()), ("object adapter", "Unknown"));
        }
        other => panic!("registration of an unknown adapter gave {other:?}"),
    }
    let client = client_communicator(&[("Ice.Default.Locator", &locator)]);
    let hello = HelloPrx::from_object(client.string_to_proxy("hello @ Unknown").unwrap().unwrap());
    assert!(
        hello.say_hello("nobody").await.is_err(),
        "an adapter the registry refused is not reachable through it"
    );
}
