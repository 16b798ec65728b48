//! IceDiscovery against ZeroC's plugin, by real UDP multicast on 127.0.0.1 with no registry:
//! a ZeroC Python client finds a Floe adapter, a replica group of Floe adapters and a well-known
//! object; a Floe client finds an adapter a ZeroC server announced; two Floe communicators find
//! each other; a name nobody holds is reported as not found once the retries are spent; a
//! lookup in another domain gets no answer.

mod common;

use std::time::{Duration, Instant};

use common::*;
use floe::discovery::Discovery;
use floe::{Communicator, Error, Properties, Proxy};
use floe_test_support::free_port;

/// The settings both sides use: the group on the loopback interface, a port and a domain of
/// this test's own so that tests running at once do not answer each other.
struct Net {
    port: u16,
    domain: String,
}

impl Net {
    fn new(domain: &str) -> Net {
        Net {
            port: free_port(),
            domain: domain.to_string(),
        }
    }

    fn props(&self) -> Vec<(String, String)> {
        vec![
            ("IceDiscovery.Interface".into(), "127.0.0.1".into()),
            ("IceDiscovery.Port".into(), self.port.to_string()),
            ("IceDiscovery.DomainId".into(), self.domain.clone()),
            ("IceDiscovery.Timeout".into(), "200".into()),
            ("IceDiscovery.RetryCount".into(), "2".into()),
        ]
    }

    /// The same settings as ZeroC command-line options, with the plugin loaded.
    fn zeroc_options(&self) -> Vec<String> {
        let mut o = vec!["--Ice.Plugin.IceDiscovery=IceDiscovery:createIceDiscovery".to_string()];
        o.extend(self.props().into_iter().map(|(k, v)| format!("--{k}={v}")));
        o
    }

    fn communicator(&self, extra: &[(&str, &str)]) -> Communicator {
        let properties = Properties::new();
        properties.set_property("Ice.Default.InvocationTimeout", "20000");
        for (k, v) in self.props() {
            properties.set_property(&k, &v);
        }
        for (k, v) in extra {
            properties.set_property(k, v);
        }
        Communicator::with_properties(properties).unwrap()
    }
}

/// A Floe server whose adapter `Test` (id `adapter_id`, in `group` when given) is announced by
/// discovery.
async fn floe_server(net: &Net, adapter_id: &str, group: Option<&str>) -> (FloeServer, Discovery) {
    let mut props: Vec<(String, String)> = net.props();
    props.push(("Test.AdapterId".into(), adapter_id.into()));
    if let Some(g) = group {
        props.push(("Test.ReplicaGroupId".into(), g.into()));
    }
    let pairs: Vec<(&str, &str)> = props
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // Discovery starts before the adapter is made, so that the adapter registers with it.
    let communicator = {
        let properties = Properties::new();
        for (k, v) in &pairs {
            properties.set_property(k, v);
        }
        Communicator::with_properties(properties).unwrap()
    };
    let discovery = Discovery::start(&communicator).await.unwrap();
    let server = serve_hello(communicator).await;
    server.adapter.register_with_locator(true).await.unwrap();
    (server, discovery)
}

/// `hello` on adapter `Test` (endpoints on 127.0.0.1) of `communicator`.
async fn serve_hello(communicator: Communicator) -> FloeServer {
    use std::sync::Arc;
    let adapter = communicator
        .create_object_adapter_with_endpoints("Test", "tcp -h 127.0.0.1 -p 0")
        .await
        .unwrap();
    let hello = Arc::new(HelloImpl::default());
    let proxy = adapter
        .add(
            Arc::new(HelloDispatcher(hello.clone())),
            floe::Identity::new("hello", ""),
        )
        .unwrap();
    adapter.activate().unwrap();
    FloeServer {
        communicator,
        adapter,
        hello,
        proxy,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zeroc_client_finds_a_floe_adapter_and_object_by_multicast() {
    let net = Net::new("floe-adapter");
    let (_server, _discovery) = floe_server(&net, "FloeFound", None).await;
    let options = net.zeroc_options();
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    run_python_client("hello @ FloeFound", "operations", &options).await;
    run_python_client("hello", "operations", &options).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zeroc_client_finds_a_replica_group_of_floe_adapters() {
    let net = Net::new("floe-group");
    let (one, _d1) = floe_server(&net, "Member-1", Some("Group")).await;
    let (two, _d2) = floe_server(&net, "Member-2", Some("Group")).await;
    let options = net.zeroc_options();
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    run_python_client("hello @ Group", "operations", &options).await;

    // A Floe client's locator answers for the group with both members' endpoints.
    let client = net.communicator(&[]);
    let discovery = Discovery::start(&client).await.unwrap();
    let found = discovery
        .locator()
        .invoke::<Option<floe::ObjectPrx>, Error>(
            "findAdapterById",
            floe::OperationMode::Nonmutating,
            None,
            true,
            |os| os.write("Group"),
            |is| is.read::<Option<floe::ObjectPrx>>(),
        )
        .await
        .unwrap()
        .expect("the group is found");
    let mut ports: Vec<u16> = found
        .ice_get_endpoints()
        .iter()
        .map(|e| match e {
            floe::Endpoint::Ip(ip) => ip.port,
            other => panic!("unexpected endpoint {other:?}"),
        })
        .collect();
    ports.sort_unstable();
    let mut members: Vec<u16> = [&one, &two]
        .iter()
        .map(|s| match &s.adapter.endpoints()[0] {
            floe::Endpoint::Ip(ip) => ip.port,
            other => panic!("unexpected endpoint {other:?}"),
        })
        .collect();
    members.sort_unstable();
    assert_eq!(
        ports, members,
        "the group's answer holds every member's endpoint"
    );
    let hello = HelloPrx::from_object(client.string_to_proxy("hello @ Group").unwrap().unwrap());
    assert_eq!(hello.say_hello("group").await.unwrap(), "Hello, group!");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_floe_client_finds_an_adapter_a_zeroc_server_announced() {
    let net = Net::new("zeroc-adapter");
    let mut options = net.zeroc_options();
    options.push("--Py.AdapterId=PyFound".into());
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let py = start_python_server_with(&options);
    assert!(py.proxy.contains("@ PyFound"), "{}", py.proxy);

    let client = net.communicator(&[]);
    let _discovery = Discovery::start(&client).await.unwrap();
    let hello = HelloPrx::from_object(client.string_to_proxy("hello @ PyFound").unwrap().unwrap());
    assert_eq!(hello.say_hello("floe").await.unwrap(), "Hello, floe!");
    // And the same object by its bare identity: ZeroC's plugin answers findObjectById.
    let well_known = HelloPrx::from_object(client.string_to_proxy("hello").unwrap().unwrap());
    assert_eq!(well_known.add(2, 3).await.unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floe_communicators_find_each_other_and_nobody_answers_for_unknown_names() {
    let net = Net::new("floe-floe");
    let (_server, _discovery) = floe_server(&net, "FloeOnly", None).await;
    let client = net.communicator(&[]);
    let _client_discovery = Discovery::start(&client).await.unwrap();
    let hello = HelloPrx::from_object(client.string_to_proxy("hello @ FloeOnly").unwrap().unwrap());
    assert_eq!(hello.say_hello("peer").await.unwrap(), "Hello, peer!");

    // Nobody holds it: the lookup gives up after the first try and two retries of 200 ms.
    let started = Instant::now();
    let missing = client.string_to_proxy("hello @ Nowhere").unwrap().unwrap();
    match missing.ice_ping().await {
        Err(Error::NotRegistered { kind, id }) => {
            assert_eq!((kind.as_str(), id.as_str()), ("object adapter", "Nowhere"));
        }
        other => panic!("an adapter nobody announced gave {other:?}"),
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(550) && waited < Duration::from_secs(5),
        "gave up after {waited:?}"
    );

    // Another domain on the same group and port gets no answer from this one.
    let other = Net {
        port: net.port,
        domain: "another-domain".into(),
    };
    let outsider = other.communicator(&[]);
    let _outsider_discovery = Discovery::start(&outsider).await.unwrap();
    let elsewhere = outsider
        .string_to_proxy("hello @ FloeOnly")
        .unwrap()
        .unwrap();
    assert!(
        elsewhere.ice_ping().await.is_err(),
        "a lookup in another domain was answered"
    );
}
