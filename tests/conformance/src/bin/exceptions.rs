//! Server of ZeroC's `Ice/exceptions` test: `thrower` (a `::Test::Thrower`) on three adapters,
//! at `Test.BasePort` (`Ice.MessageSizeMax` = 10 KiB), `+1` (`MessageSizeMax` 0: no limit) and
//! `+2` (`MessageSizeMax` 1 KiB).

use std::process::ExitCode;
use std::sync::Arc;

use floe::codegen::{Current, Error};
use floe_conformance::TestHelper;

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/exceptions/Server.rs"));
}

use generated::test::{self, A, B, C, D, thrower};

type Res<T> = Result<T, Error>;

#[derive(Debug)]
struct ThrowerI;

fn b(a: i32, b: i32) -> B {
    B { a_mem: a, b_mem: b }
}

fn c(a: i32, b: i32, c: i32) -> C {
    C {
        a_mem: a,
        b_mem: b,
        c_mem: c,
    }
}

/// An exception the operation does not declare: the client sees UnknownUserException.
fn undeclared(type_id: &str) -> Error {
    Error::UnknownUserException(type_id.to_string())
}

impl test::Thrower for ThrowerI {
    async fn shutdown(&self, current: &Current) -> Res<()> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
    async fn supports_undeclared_exceptions(&self, _: &Current) -> Res<bool> {
        Ok(true)
    }
    async fn supports_assert_exception(&self, _: &Current) -> Res<bool> {
        Ok(false)
    }
    async fn throw_aas_a(&self, a: i32, _: &Current) -> Result<(), thrower::ThrowAasAError> {
        Err(A { a_mem: a }.into())
    }
    async fn throw_aor_das_aor_d(
        &self,
        a: i32,
        _: &Current,
    ) -> Result<(), thrower::ThrowAorDasAorDError> {
        if a > 0 {
            Err(A { a_mem: a }.into())
        } else {
            Err(D { d_mem: a }.into())
        }
    }
    async fn throw_bas_a(
        &self,
        a: i32,
        bm: i32,
        _: &Current,
    ) -> Result<(), thrower::ThrowBasAError> {
        Err(b(a, bm).into())
    }
    async fn throw_cas_a(
        &self,
        a: i32,
        bm: i32,
        cm: i32,
        _: &Current,
    ) -> Result<(), thrower::ThrowCasAError> {
        Err(c(a, bm, cm).into())
    }
    async fn throw_bas_b(
        &self,
        a: i32,
        bm: i32,
        _: &Current,
    ) -> Result<(), thrower::ThrowBasBError> {
        Err(b(a, bm).into())
    }
    async fn throw_cas_b(
        &self,
        a: i32,
        bm: i32,
        cm: i32,
        _: &Current,
    ) -> Result<(), thrower::ThrowCasBError> {
        Err(c(a, bm, cm).into())
    }
    async fn throw_cas_c(
        &self,
        a: i32,
        bm: i32,
        cm: i32,
        _: &Current,
    ) -> Result<(), thrower::ThrowCasCError> {
        Err(c(a, bm, cm).into())
    }
    async fn throw_mod_a(
        &self,
        a: i32,
        a2: i32,
        _: &Current,
    ) -> Result<(), thrower::ThrowModAError> {
        Err(test::r#mod::A {
            a_mem: a,
            a2_mem: a2,
        }
        .into())
    }
    async fn throw_undeclared_a(&self, _a: i32, _: &Current) -> Res<()> {
        Err(undeclared("::Test::A"))
    }
    async fn throw_undeclared_b(&self, _a: i32, _b: i32, _: &Current) -> Res<()> {
        Err(undeclared("::Test::B"))
    }
    async fn throw_undeclared_c(&self, _a: i32, _b: i32, _c: i32, _: &Current) -> Res<()> {
        Err(undeclared("::Test::C"))
    }
    async fn throw_local_exception(&self, _: &Current) -> Res<()> {
        Err(Error::ConnectionTimeout)
    }
    async fn throw_non_ice_exception(&self, _: &Current) -> Res<()> {
        Err(Error::UnknownException("12345".into()))
    }
    async fn throw_assert_exception(&self, _: &Current) -> Res<()> {
        Err(Error::FeatureNotSupported(
            "operation `throwAssertException' not supported".into(),
        ))
    }
    async fn throw_memory_limit_exception(&self, _seq: Vec<u8>, _: &Current) -> Res<Vec<u8>> {
        Ok(vec![0; 20 * 1024])
    }
    async fn throw_local_exception_idempotent(&self, _: &Current) -> Res<()> {
        Err(Error::ConnectionTimeout)
    }
    async fn throw_after_response(&self, _: &Current) -> Res<()> {
        Ok(())
    }
    async fn throw_after_exception(
        &self,
        _: &Current,
    ) -> Result<(), thrower::ThrowAfterExceptionError> {
        Err(A::default().into())
    }
    async fn throw_marshal_exception(
        &self,
        _: &Current,
    ) -> Res<thrower::ThrowMarshalExceptionResult> {
        Err(Error::marshal(
            "throwMarshalException: the result cannot be marshaled",
        ))
    }
}

fn main() -> ExitCode {
    floe_conformance::run(|| async {
        let helper = TestHelper::new(&[
            ("Ice.Warn.Dispatch", "0"),
            ("Ice.Warn.Connections", "0"),
            ("Ice.MessageSizeMax", "10"),
        ])?;
        let p = helper.properties();
        p.set_property("TestAdapter2.MessageSizeMax", "0");
        p.set_property("TestAdapter3.MessageSizeMax", "1");
        let servant = Arc::new(test::ThrowerDispatcher(Arc::new(ThrowerI)));
        for (name, num) in [("TestAdapter", 0), ("TestAdapter2", 1), ("TestAdapter3", 2)] {
            let adapter = helper.adapter(name, num).await?;
            adapter.add(servant.clone(), "thrower".parse()?)?;
            adapter.activate()?;
        }
        helper.ready("exceptions");
        helper.wait_and_destroy().await;
        Ok(())
    })
}
