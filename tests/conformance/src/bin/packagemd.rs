//! Server of ZeroC's `Ice/packagemd` test (`Test.ice` with `Package.ice` and `NoPackage.ice`):
//! `initial` (a `::Test::Initial`) on `TestAdapter` at `Test.BasePort`, returning classes and
//! raising exceptions of three modules (`python:package` metadata only moves them in Python;
//! on the wire they are plain `::Test1`, `::Test2` and `::Test3` types).

use std::process::ExitCode;
use std::sync::Arc;

use floe::codegen::{Current, Error, ValueRef};

#[allow(clippy::all, non_upper_case_globals, non_camel_case_types, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/packagemd/Server.rs"));
}

use generated::test::{self, initial as r};
use generated::{test1, test2, test3};

type Res<T> = Result<T, Error>;

#[derive(Debug)]
struct InitialI;

impl test::Initial for InitialI {
    async fn get_test1_c2_as_c1(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(ValueRef::new(test1::C2::default())))
    }
    async fn get_test1_c2_as_c2(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(ValueRef::new(test1::C2::default())))
    }
    async fn throw_test1_e2_as_e1(&self, _: &Current) -> Result<(), r::ThrowTest1E2AsE1Error> {
        Err(test1::E2::default().into())
    }
    async fn throw_test1_e2_as_e2(&self, _: &Current) -> Result<(), r::ThrowTest1E2AsE2Error> {
        Err(test1::E2::default().into())
    }
    async fn throw_test1_def(&self, _: &Current) -> Result<(), r::ThrowTest1DefError> {
        Err(test1::def::default().into())
    }
    async fn get_test2_c2_as_c1(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(ValueRef::new(test2::C2::default())))
    }
    async fn get_test2_c2_as_c2(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(ValueRef::new(test2::C2::default())))
    }
    async fn throw_test2_e2_as_e1(&self, _: &Current) -> Result<(), r::ThrowTest2E2AsE1Error> {
        Err(test2::E2::default().into())
    }
    async fn throw_test2_e2_as_e2(&self, _: &Current) -> Result<(), r::ThrowTest2E2AsE2Error> {
        Err(test2::E2::default().into())
    }
    async fn get_test3_c2_as_c1(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(ValueRef::new(test3::C2::default())))
    }
    async fn get_test3_c2_as_c2(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(ValueRef::new(test3::C2::default())))
    }
    async fn throw_test3_e2_as_e1(&self, _: &Current) -> Result<(), r::ThrowTest3E2AsE1Error> {
        Err(test3::E2::default().into())
    }
    async fn throw_test3_e2_as_e2(&self, _: &Current) -> Result<(), r::ThrowTest3E2AsE2Error> {
        Err(test3::E2::default().into())
    }
    async fn shutdown(&self, current: &Current) -> Res<()> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
}

fn main() -> ExitCode {
    floe_conformance::serve("packagemd", &[], |_, adapter| {
        adapter.add(
            Arc::new(test::InitialDispatcher(Arc::new(InitialI))),
            "initial".parse()?,
        )?;
        Ok(())
    })
}
