//! Servant locators (Ice's `ServantLocator`): the servant map and default servants come first,
//! then the locator of the identity's category, then the one of `""`; `locate` gives a
//! servant and a cookie that `finished` gets back; errors of either (user exceptions
//! included) become the reply, one from `finished` replacing the dispatch's outcome; `None`
//! means ObjectNotExist; destroying the adapter deactivates the locators.

mod vectors_common;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use floe::codegen::{BoxFuture, DispatchError, Dispatcher};
use floe::encoding::{EncodingVersion, InputStream};
use floe::{
    Blobject, BlobjectDispatcher, Communicator, Cookie, Current, Error, Located, ObjectPrx,
    OperationMode, Properties, ServantLocator,
};
use vectors_common::BaseErr;

/// Answers with its name as a string.
#[derive(Debug)]
struct Named(&'static str);

impl Blobject for Named {
    fn ice_invoke<'a>(
        &'a self,
        _in_encaps: Bytes,
        _current: &'a Current,
    ) -> BoxFuture<'a, floe::Result<(bool, Bytes)>> {
        Box::pin(async move {
            let mut v = vec![0, 0, 0, 0, 1, 1, self.0.len() as u8];
            v.extend_from_slice(self.0.as_bytes());
            let size = (v.len() as i32).to_le_bytes();
            v[..4].copy_from_slice(&size);
            Ok((true, Bytes::from(v)))
        })
    }
}

fn named(name: &'static str) -> Arc<dyn Dispatcher> {
    Arc::new(BlobjectDispatcher(Arc::new(Named(name))))
}

#[derive(Default)]
struct Locator {
    name: &'static str,
    /// (identity name, cookie seen by finished)
    finished: Mutex<Vec<(String, Option<u32>)>>,
    deactivated: Mutex<Vec<String>>,
}

impl ServantLocator for Locator {
    fn locate<'a>(
        &'a self,
        current: &'a Current,
    ) -> BoxFuture<'a, Result<Option<Located>, DispatchError>> {
        Box::pin(async move {
            match current.id.name.as_str() {
                "missing" => Ok(None),
                "locate-fails" => Err(DispatchError::User(Box::new(BaseErr { code: 1 }))),
                "locate-local" => Err(DispatchError::Runtime(Error::ObjectNotExist(
                    Default::default(),
                ))),
                _ => Ok(Some(Located::with_cookie(named(self.name), 42u32))),
            }
        })
    }
    fn finished<'a>(
        &'a self,
        current: &'a Current,
        _servant: Arc<dyn Dispatcher>,
        cookie: Cookie,
    ) -> BoxFuture<'a, Result<(), DispatchError>> {
        Box::pin(async move {
            let c = cookie.and_then(|c| c.downcast_ref::<u32>().copied());
            self.finished
                .lock()
                .unwrap()
                .push((current.id.name.clone(), c));
            if current.id.name == "finished-fails" {
                return Err(DispatchError::User(Box::new(BaseErr { code: 2 })));
            }
            Ok(())
        })
    }
    fn deactivate(&self, category: &str) {
        self.deactivated.lock().unwrap().push(category.to_string());
    }
}

async fn call(prx: &ObjectPrx) -> floe::Result<(bool, Bytes)> {
    prx.ice_invoke(
        "op",
        OperationMode::Normal,
        Bytes::from_static(&[6, 0, 0, 0, 1, 1]),
        None,
    )
    .await
}

fn string_reply(out: &Bytes) -> String {
    let mut is = InputStream::new(out, EncodingVersion::V1_0);
    is.start_encapsulation().unwrap();
    is.read_string().unwrap()
}

/// The code of the `BaseErr` in a user-exception reply.
fn user_exception_code(out: &Bytes) -> i32 {
    let mut is = InputStream::new(out, EncodingVersion::V1_0);
    is.start_encapsulation().unwrap();
    match is.read_exception::<floe::encoding::AnyUserException>() {
        floe::encoding::AnyUserException::User(e) => {
            assert_eq!(e.ice_id(), "::Wire::BaseErr");
            format!("{e:?}")
                .trim_start_matches("BaseErr { code: ")
                .trim_end_matches(" }")
                .parse()
                .unwrap()
        }
        floe::encoding::AnyUserException::Runtime(e) => panic!("{e}"),
    }
}

floe::encoding::inventory::submit! {
    floe::encoding::ExceptionFactory { type_id: "::Wire::BaseErr", decode: |is| Ok(Box::new(BaseErr::decode_exception(is)?)) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locators_find_servants_per_request() {
    let server = Communicator::with_properties(Properties::new()).unwrap();
    let adapter = server
        .create_object_adapter_with_endpoints("", "tcp -h 127.0.0.1 -p 0")
        .await
        .unwrap();
    let by_category = Arc::new(Locator {
        name: "category",
        ..Default::default()
    });
    let fallback = Arc::new(Locator {
        name: "fallback",
        ..Default::default()
    });
    adapter
        .add_servant_locator(by_category.clone(), "cat")
        .unwrap();
    adapter.add_servant_locator(fallback.clone(), "").unwrap();
    assert!(matches!(
        adapter.add_servant_locator(fallback.clone(), ""),
        Err(Error::AlreadyRegistered { .. })
    ));
    adapter
        .add(named("map"), "cat/mapped".parse().unwrap())
        .unwrap();
    adapter.activate().unwrap();
    let client = Communicator::with_properties(Properties::new()).unwrap();
    let endpoint = adapter.endpoints()[0].to_string();
    let prx = |id: &str| {
        client
            .string_to_proxy(&format!("\"{id}\":{endpoint}"))
            .unwrap()
            .unwrap()
    };

    // The servant map first, then the category's locator, then the default one.
    assert_eq!(
        string_reply(&call(&prx("cat/mapped")).await.unwrap().1),
        "map"
    );
    assert_eq!(
        string_reply(&call(&prx("cat/x")).await.unwrap().1),
        "category"
    );
    assert_eq!(
        string_reply(&call(&prx("other/x")).await.unwrap().1),
        "fallback"
    );
    assert_eq!(string_reply(&call(&prx("x")).await.unwrap().1), "fallback");
    assert_eq!(
        by_category.finished.lock().unwrap().clone(),
        vec![("x".to_string(), Some(42))],
        "finished gets the cookie of locate"
    );

    // None: no such object.
    assert!(matches!(
        call(&prx("missing")).await,
        Err(Error::ObjectNotExist(f)) if f.name == "missing"
    ));
    // Errors of locate and finished are the reply, user exceptions included.
    let (ok, out) = call(&prx("locate-fails")).await.unwrap();
    assert!(!ok);
    assert_eq!(user_exception_code(&out), 1);
    assert!(matches!(
        call(&prx("locate-local")).await,
        Err(Error::ObjectNotExist(f)) if f.name == "locate-local" && f.operation == "op"
    ));
    let (ok, out) = call(&prx("finished-fails")).await.unwrap();
    assert!(!ok, "finished's exception replaces the servant's result");
    assert_eq!(user_exception_code(&out), 2);

    // Removed locators are no longer asked; destroying deactivates the others.
    let removed = adapter.remove_servant_locator("cat").unwrap();
    assert!(adapter.find_servant_locator("cat").is_none());
    assert_eq!(
        string_reply(&call(&prx("cat/y")).await.unwrap().1),
        "fallback"
    );
    client.destroy().await;
    adapter.destroy().await;
    assert!(by_category.deactivated.lock().unwrap().is_empty());
    assert_eq!(
        fallback.deactivated.lock().unwrap().clone(),
        vec![String::new()]
    );
    drop(removed);
    server.destroy().await;
}
