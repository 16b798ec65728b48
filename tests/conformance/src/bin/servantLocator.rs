//! Server of ZeroC's `Ice/servantLocator` test: on `TestAdapter` at `Test.BasePort`, `asm` (a
//! `::Test::TestIntf` in the servant map), `test/activation` (a `::Test::TestActivation`, which
//! removes and adds the locators), and servant locators for `category` and for every other
//! category that make a `TestIntf` servant for `locate` and `finished`, and raise from
//! `locate` (or `finished`) the exception the operation's name asks for. The server exits once
//! the client has the adapter deactivated.

use std::process::ExitCode;
use std::sync::Arc;

use floe::RequestFailed;
use floe::codegen::{BoxFuture, Current, DispatchError, Dispatcher, Error};
use floe::{Cookie, Located, ServantLocator};
use floe_conformance::TestHelper;

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/servantLocator/Server.rs"));
}

use generated::test::{self, TestImpossibleException, TestIntfUserException, test_intf as r};

type Res<T> = Result<T, Error>;

#[derive(Debug)]
struct TestI;

impl test::TestIntf for TestI {
    async fn request_failed_exception(&self, _: &Current) -> Res<()> {
        Ok(())
    }
    async fn unknown_user_exception(&self, _: &Current) -> Res<()> {
        Ok(())
    }
    async fn unknown_local_exception(&self, _: &Current) -> Res<()> {
        Ok(())
    }
    async fn unknown_exception(&self, _: &Current) -> Res<()> {
        Ok(())
    }
    async fn local_exception(&self, _: &Current) -> Res<()> {
        Ok(())
    }
    async fn user_exception(&self, _: &Current) -> Res<()> {
        Ok(())
    }
    async fn python_exception(&self, _: &Current) -> Res<()> {
        Ok(())
    }
    async fn unknown_exception_with_servant_exception(&self, _: &Current) -> Res<()> {
        Err(Error::ObjectNotExist(Box::default()))
    }
    async fn impossible_exception(
        &self,
        throw: bool,
        _: &Current,
    ) -> Result<String, r::ImpossibleExceptionError> {
        if throw {
            return Err(TestImpossibleException::default().into());
        }
        // A result, so that an exception from finished() must replace it.
        Ok("Hello".into())
    }
    async fn intf_user_exception(
        &self,
        throw: bool,
        _: &Current,
    ) -> Result<String, r::IntfUserExceptionError> {
        if throw {
            return Err(TestIntfUserException::default().into());
        }
        Ok("Hello".into())
    }
    async fn async_response(&self, _: &Current) -> Result<(), r::AsyncResponseError> {
        Ok(())
    }
    async fn async_exception(&self, _: &Current) -> Result<(), r::AsyncExceptionError> {
        Ok(())
    }
    async fn shutdown(&self, current: &Current) -> Res<()> {
        current.adapter.deactivate();
        Ok(())
    }
}

/// The cookie `locate` hands to `finished`.
#[derive(Debug)]
struct CookieI;

impl CookieI {
    fn message(&self) -> &'static str {
        "blahblah"
    }
}

fn user(e: impl floe::codegen::UserException) -> DispatchError {
    DispatchError::User(Box::new(e))
}

fn runtime(e: Error) -> DispatchError {
    DispatchError::Runtime(e)
}

#[derive(Debug)]
struct ServantLocatorI {
    category: &'static str,
}

impl ServantLocatorI {
    /// The exception ZeroC's locator raises for each operation.
    fn exception(current: &Current) -> Result<(), DispatchError> {
        Err(match current.operation.as_str() {
            "ice_ids" => user(TestIntfUserException::default()),
            "requestFailedException" => {
                runtime(Error::ObjectNotExist(Box::<RequestFailed>::default()))
            }
            "unknownUserException" => runtime(Error::UnknownUserException("reason".into())),
            "unknownLocalException" => runtime(Error::UnknownLocalException("reason".into())),
            "unknownException" => runtime(Error::UnknownException("reason".into())),
            "userException" => user(TestIntfUserException::default()),
            // ZeroC's locator raises Ice::SocketException; Floe has no such error, so the
            // locator gives the reply a server raising it sends.
            "localException" => runtime(Error::UnknownLocalException(
                "::Ice::SocketException:\nsocket exception: unknown error".into(),
            )),
            // ZeroC's Python locator raises RuntimeError("message"), a non-Ice error.
            "pythonException" => runtime(Error::UnknownException("RuntimeError: message".into())),
            "unknownExceptionWithServantException" => {
                runtime(Error::UnknownException("reason".into()))
            }
            "impossibleException" => user(TestIntfUserException::default()),
            "intfUserException" | "asyncResponse" | "asyncException" => {
                user(TestImpossibleException::default())
            }
            _ => return Ok(()),
        })
    }

    fn check_category(&self, current: &Current) -> Result<(), DispatchError> {
        if current.id.category == self.category || self.category.is_empty() {
            Ok(())
        } else {
            Err(runtime(Error::UnknownException(format!(
                "locator of `{}` asked for {}",
                self.category, current.id
            ))))
        }
    }
}

impl ServantLocator for ServantLocatorI {
    fn locate<'a>(
        &'a self,
        current: &'a Current,
    ) -> BoxFuture<'a, Result<Option<Located>, DispatchError>> {
        Box::pin(async move {
            self.check_category(current)?;
            match current.id.name.as_str() {
                "locate" => Self::exception(current)?,
                "finished" => {}
                // "unknown", and the invalid return values only a Python locator can make.
                _ => return Ok(None),
            }
            let servant: Arc<dyn Dispatcher> = Arc::new(test::TestIntfDispatcher(Arc::new(TestI)));
            Ok(Some(Located::with_cookie(servant, CookieI)))
        })
    }
    fn finished<'a>(
        &'a self,
        current: &'a Current,
        _servant: Arc<dyn Dispatcher>,
        cookie: Cookie,
    ) -> BoxFuture<'a, Result<(), DispatchError>> {
        Box::pin(async move {
            self.check_category(current)?;
            if current.id.name == "finished" {
                Self::exception(current)?;
            }
            match cookie.as_ref().and_then(|c| c.downcast_ref::<CookieI>()) {
                Some(c) if c.message() == "blahblah" => Ok(()),
                _ => Err(runtime(Error::UnknownException(
                    "finished without the cookie of locate".into(),
                ))),
            }
        })
    }
    fn deactivate(&self, _category: &str) {}
}

#[derive(Debug)]
struct TestActivationI;

impl test::TestActivation for TestActivationI {
    async fn activate_servant_locator(&self, activate: bool, current: &Current) -> Res<()> {
        let adapter = &current.adapter;
        if activate {
            adapter.add_servant_locator(Arc::new(ServantLocatorI { category: "" }), "")?;
            adapter.add_servant_locator(
                Arc::new(ServantLocatorI {
                    category: "category",
                }),
                "category",
            )?;
        } else {
            adapter.remove_servant_locator("")?.deactivate("");
            adapter
                .remove_servant_locator("category")?
                .deactivate("category");
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    floe_conformance::run(|| async {
        let helper = TestHelper::new(&[("Ice.Warn.Dispatch", "0")])?;
        let adapter = helper.adapter("TestAdapter", 0).await?;
        adapter.add_servant_locator(
            Arc::new(ServantLocatorI {
                category: "category",
            }),
            "category",
        )?;
        adapter.add_servant_locator(Arc::new(ServantLocatorI { category: "" }), "")?;
        adapter.add(
            Arc::new(test::TestIntfDispatcher(Arc::new(TestI))),
            "asm".parse()?,
        )?;
        adapter.add(
            Arc::new(test::TestActivationDispatcher(Arc::new(TestActivationI))),
            "test/activation".parse()?,
        )?;
        adapter.activate()?;
        helper.ready("servantLocator");
        adapter.wait_for_deactivate().await;
        helper.communicator().destroy().await;
        Ok(())
    })
}
