//! The admin object over real sockets: its Process and Properties facets called as ZeroC's
//! `Ice::Process` and `Ice::PropertiesAdmin` clients call them, update callbacks, custom facets
//! and the `Ice.Admin.Facets` filter.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use common::*;
use floe::{Communicator, Error, ObjectPrx, OperationMode, Properties};

fn communicator(props: &[(&str, &str)]) -> Communicator {
    let properties = Properties::new();
    properties.set_property("Ice.Admin.Endpoints", "tcp -h 127.0.0.1");
    properties.set_property("Ice.Admin.InstanceName", "Test");
    for (k, v) in props {
        properties.set_property(k, v);
    }
    Communicator::with_properties(properties).unwrap()
}

async fn get_property(admin: &ObjectPrx, key: &str) -> Result<String, Error> {
    admin
        .ice_facet("Properties")
        .invoke::<String, Error>(
            "getProperty",
            OperationMode::Normal,
            None,
            true,
            |os| os.write(key),
            |is| is.read::<String>(),
        )
        .await
}

async fn set_properties(admin: &ObjectPrx, props: &[(&str, &str)]) {
    let map: HashMap<String, String> = props
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    admin
        .ice_facet("Properties")
        .invoke::<(), Error>(
            "setProperties",
            OperationMode::Normal,
            None,
            false,
            |os| os.write(&map),
            |_| Ok(()),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn properties_and_process_facets_answer_remote_callers() {
    let server = communicator(&[("Prop1", "1"), ("Prop2", "2")]);
    let changes: Arc<parking_lot::Mutex<Vec<BTreeMap<String, String>>>> = Arc::default();
    let seen = changes.clone();
    server.add_properties_update_callback(Arc::new(move |c| seen.lock().push(c.clone())));
    let admin = server.get_admin().await.unwrap().expect("admin enabled");
    assert_eq!(admin.ice_get_identity().to_string(), "Test/admin");

    let client = client_communicator(&[]);
    let admin = client.string_to_proxy(&admin.to_string()).unwrap().unwrap();
    assert_eq!(get_property(&admin, "Prop1").await.unwrap(), "1");
    assert_eq!(get_property(&admin, "Bogus").await.unwrap(), "");
    let all = admin
        .ice_facet("Properties")
        .invoke::<HashMap<String, String>, Error>(
            "getPropertiesForPrefix",
            OperationMode::Normal,
            None,
            true,
            |os| os.write("Prop"),
            |is| is.read::<HashMap<String, String>>(),
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 2);

    set_properties(&admin, &[("Prop1", "10"), ("Prop2", ""), ("Prop3", "3")]).await;
    assert_eq!(get_property(&admin, "Prop1").await.unwrap(), "10");
    assert_eq!(server.properties().get_property("Prop2"), "");
    // The same again changes nothing: the callback hears of the call, with no changes (Ice's
    // Ice/admin client waits for that call).
    set_properties(&admin, &[("Prop1", "10"), ("Prop2", ""), ("Prop3", "3")]).await;
    let heard = changes.lock().clone();
    assert_eq!(heard.len(), 2, "{heard:?}");
    assert!(heard[1].is_empty(), "{heard:?}");
    let expected: BTreeMap<String, String> = [("Prop1", "10"), ("Prop2", ""), ("Prop3", "3")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(heard[0], expected);

    // Process: writeMessage, then shutdown shuts the communicator down.
    let process = admin.ice_facet("Process");
    assert!(process.ice_is_a("::Ice::Process").await.unwrap());
    process
        .invoke::<(), Error>(
            "writeMessage",
            OperationMode::Normal,
            None,
            false,
            |os| {
                os.write("admin test message");
                os.write(&1i32);
            },
            |_| Ok(()),
        )
        .await
        .unwrap();
    assert!(!server.is_shutdown());
    process
        .invoke::<(), Error>(
            "shutdown",
            OperationMode::Normal,
            None,
            false,
            |_| {},
            |_| Ok(()),
        )
        .await
        .unwrap();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        server.wait_for_shutdown(),
    )
    .await
    .expect("Process::shutdown shut the communicator down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_facets_and_the_facet_filter() {
    // Without endpoints or Ice.Admin.Enabled there is no admin object.
    let plain = Communicator::with_properties(Properties::new()).unwrap();
    assert!(plain.get_admin().await.unwrap().is_none());

    let server = communicator(&[("Ice.Admin.Facets", "Properties, TestFacet")]);
    server
        .add_admin_facet(Arc::new(HelloDispatcher(Arc::default())), "TestFacet")
        .unwrap();
    assert!(matches!(
        server.add_admin_facet(Arc::new(HelloDispatcher(Arc::default())), "TestFacet"),
        Err(Error::AlreadyRegistered { .. })
    ));
    assert!(server.find_admin_facet("TestFacet").is_some());
    assert!(server.find_admin_facet("Bogus").is_none());
    let admin = server.get_admin().await.unwrap().unwrap();
    let mut names = server.admin_facet_names();
    names.sort();
    assert_eq!(names, ["Process", "Properties", "TestFacet"]);

    let client = client_communicator(&[]);
    let admin = client.string_to_proxy(&admin.to_string()).unwrap().unwrap();
    let hello = HelloPrx(admin.ice_facet("TestFacet"));
    assert_eq!(hello.say_hello("admin").await.unwrap(), "Hello, admin!");
    assert!(
        get_property(&admin, "Ice.Admin.InstanceName")
            .await
            .unwrap()
            == "Test"
    );
    // Process exists but the filter hides it.
    match admin.ice_facet("Process").ice_ping().await {
        Err(Error::FacetNotExist(_)) => {}
        other => panic!("a filtered-out facet answered {other:?}"),
    }
    // Another identity in the admin category is not the admin object.
    match admin
        .ice_identity(floe::Identity::new("other", "Test"))
        .ice_ping()
        .await
    {
        Err(Error::ObjectNotExist(_)) => {}
        other => panic!("Test/other answered {other:?}"),
    }
    server.remove_admin_facet("TestFacet").unwrap();
    assert!(matches!(
        hello.say_hello("gone").await,
        Err(Error::FacetNotExist(_))
    ));
    assert!(server.remove_admin_facet("TestFacet").is_err());
}
