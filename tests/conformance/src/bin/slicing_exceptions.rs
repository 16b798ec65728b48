//! Server of ZeroC's `Ice/slicing/exceptions` test (Slice: `Test.ice`, `ServerPrivate.ice`):
//! `Test` (a `::Test::TestIntf`) on `TestAdapter` at `Test.BasePort` (endpoint timeout 10 s). It
//! raises exceptions of types the client does not know, so the client slices them down to the
//! ones it knows (sliced format, from the interface's `["format:sliced"]`), and relays the
//! client's own unknown preserved exceptions back to it through the client's bidirectional
//! connection: their unknown slices, and the classes in them, must survive the round trip.

use std::process::ExitCode;
use std::sync::Arc;

use floe::codegen::{Current, Error, ValueRef};

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/slicing_exceptions/Server.rs"));
}

use generated::test::{self, RelayPrx, test_intf as r};

type Res<T> = Result<T, Error>;

fn kmd() -> test::KnownMostDerived {
    test::KnownMostDerived {
        b: "KnownMostDerived.b".into(),
        ki: "KnownMostDerived.ki".into(),
        kmd: "KnownMostDerived.kmd".into(),
    }
}

fn ki() -> test::KnownIntermediate {
    test::KnownIntermediate {
        b: "KnownIntermediate.b".into(),
        ki: "KnownIntermediate.ki".into(),
    }
}

fn kd() -> test::KnownDerived {
    test::KnownDerived {
        b: "KnownDerived.b".into(),
        kd: "KnownDerived.kd".into(),
    }
}

fn umd1() -> test::UnknownMostDerived1 {
    test::UnknownMostDerived1 {
        b: "UnknownMostDerived1.b".into(),
        ki: "UnknownMostDerived1.ki".into(),
        umd1: "UnknownMostDerived1.umd1".into(),
    }
}

fn umd2() -> test::UnknownMostDerived2 {
    test::UnknownMostDerived2 {
        b: "UnknownMostDerived2.b".into(),
        ui: "UnknownMostDerived2.ui".into(),
        umd2: "UnknownMostDerived2.umd2".into(),
    }
}

fn kpd() -> test::KnownPreservedDerived {
    test::KnownPreservedDerived {
        b: "base".into(),
        kp: "preserved".into(),
        kpd: "derived".into(),
        ..Default::default()
    }
}

/// An `SPreserved2` whose two class members are one `SPreservedClass` instance.
fn spreserved2() -> test::SPreserved2 {
    let p = ValueRef::new(test::SPreservedClass {
        bc: "bc".into(),
        spc: "spc".into(),
        ..Default::default()
    });
    test::SPreserved2 {
        b: "base".into(),
        kp: "preserved".into(),
        kpd: "derived".into(),
        p1: Some(p.clone()),
        p2: Some(p),
        ..Default::default()
    }
}

/// The client's relay, called back over the connection the request came on.
fn relay(r: Option<RelayPrx>, current: &Current) -> Res<RelayPrx> {
    let r = r.ok_or_else(|| Error::marshal("relay proxy is null"))?;
    let con = current
        .con
        .as_ref()
        .ok_or_else(|| Error::marshal("the request came on no connection"))?;
    Ok(RelayPrx::unchecked_cast(
        con.create_proxy(r.ice_get_identity().clone())?,
    ))
}

/// Passes on the exception a relay operation raised (whatever it is, with its preserved
/// slices) as the error of this operation.
macro_rules! pass_on {
    ($result:expr, $from:ident; $($v:ident),*) => {
        match $result {
            Ok(()) => Err(Error::marshal("the relay raised no exception").into()),
            $(Err($from::$v(e)) => Err(e.into()),)*
            Err($from::Runtime(e)) => Err(e.into()),
        }
    };
}

#[derive(Debug)]
struct TestI;

impl test::TestIntf for TestI {
    async fn base_as_base(&self, _: &Current) -> Result<(), r::BaseAsBaseError> {
        Err(test::Base { b: "Base.b".into() }.into())
    }
    async fn unknown_derived_as_base(
        &self,
        _: &Current,
    ) -> Result<(), r::UnknownDerivedAsBaseError> {
        Err(test::UnknownDerived {
            b: "UnknownDerived.b".into(),
            ud: "UnknownDerived.ud".into(),
        }
        .into())
    }
    async fn known_derived_as_base(&self, _: &Current) -> Result<(), r::KnownDerivedAsBaseError> {
        Err(kd().into())
    }
    async fn known_derived_as_known_derived(
        &self,
        _: &Current,
    ) -> Result<(), r::KnownDerivedAsKnownDerivedError> {
        Err(kd().into())
    }
    async fn unknown_intermediate_as_base(
        &self,
        _: &Current,
    ) -> Result<(), r::UnknownIntermediateAsBaseError> {
        Err(test::UnknownIntermediate {
            b: "UnknownIntermediate.b".into(),
            ui: "UnknownIntermediate.ui".into(),
        }
        .into())
    }
    async fn known_intermediate_as_base(
        &self,
        _: &Current,
    ) -> Result<(), r::KnownIntermediateAsBaseError> {
        Err(ki().into())
    }
    async fn known_most_derived_as_base(
        &self,
        _: &Current,
    ) -> Result<(), r::KnownMostDerivedAsBaseError> {
        Err(kmd().into())
    }
    async fn known_intermediate_as_known_intermediate(
        &self,
        _: &Current,
    ) -> Result<(), r::KnownIntermediateAsKnownIntermediateError> {
        Err(ki().into())
    }
    async fn known_most_derived_as_known_intermediate(
        &self,
        _: &Current,
    ) -> Result<(), r::KnownMostDerivedAsKnownIntermediateError> {
        Err(kmd().into())
    }
    async fn known_most_derived_as_known_most_derived(
        &self,
        _: &Current,
    ) -> Result<(), r::KnownMostDerivedAsKnownMostDerivedError> {
        Err(kmd().into())
    }
    async fn unknown_most_derived1_as_base(
        &self,
        _: &Current,
    ) -> Result<(), r::UnknownMostDerived1AsBaseError> {
        Err(umd1().into())
    }
    async fn unknown_most_derived1_as_known_intermediate(
        &self,
        _: &Current,
    ) -> Result<(), r::UnknownMostDerived1AsKnownIntermediateError> {
        Err(umd1().into())
    }
    async fn unknown_most_derived2_as_base(
        &self,
        _: &Current,
    ) -> Result<(), r::UnknownMostDerived2AsBaseError> {
        Err(umd2().into())
    }
    async fn unknown_most_derived2_as_base_compact(
        &self,
        _: &Current,
    ) -> Result<(), r::UnknownMostDerived2AsBaseCompactError> {
        Err(umd2().into())
    }
    async fn known_preserved_as_base(
        &self,
        _: &Current,
    ) -> Result<(), r::KnownPreservedAsBaseError> {
        Err(kpd().into())
    }
    async fn known_preserved_as_known_preserved(
        &self,
        _: &Current,
    ) -> Result<(), r::KnownPreservedAsKnownPreservedError> {
        Err(kpd().into())
    }
    async fn relay_known_preserved_as_base(
        &self,
        r: Option<RelayPrx>,
        current: &Current,
    ) -> Result<(), r::RelayKnownPreservedAsBaseError> {
        use test::relay::KnownPreservedAsBaseError as E;
        pass_on!(relay(r, current)?.known_preserved_as_base().await, E;
            Base, KnownDerived, KnownIntermediate, KnownMostDerived, KnownPreserved,
            KnownPreservedDerived, UnknownDerived, UnknownIntermediate, UnknownMostDerived1,
            UnknownMostDerived2, SPreserved1, SPreserved2)
    }
    async fn relay_known_preserved_as_known_preserved(
        &self,
        r: Option<RelayPrx>,
        current: &Current,
    ) -> Result<(), r::RelayKnownPreservedAsKnownPreservedError> {
        use test::relay::KnownPreservedAsKnownPreservedError as E;
        pass_on!(relay(r, current)?.known_preserved_as_known_preserved().await, E;
            KnownPreserved, KnownPreservedDerived, SPreserved1, SPreserved2)
    }
    async fn unknown_preserved_as_base(
        &self,
        _: &Current,
    ) -> Result<(), r::UnknownPreservedAsBaseError> {
        Err(spreserved2().into())
    }
    async fn unknown_preserved_as_known_preserved(
        &self,
        _: &Current,
    ) -> Result<(), r::UnknownPreservedAsKnownPreservedError> {
        Err(spreserved2().into())
    }
    async fn relay_unknown_preserved_as_base(
        &self,
        r: Option<RelayPrx>,
        current: &Current,
    ) -> Result<(), r::RelayUnknownPreservedAsBaseError> {
        use test::relay::UnknownPreservedAsBaseError as E;
        pass_on!(relay(r, current)?.unknown_preserved_as_base().await, E;
            Base, KnownDerived, KnownIntermediate, KnownMostDerived, KnownPreserved,
            KnownPreservedDerived, UnknownDerived, UnknownIntermediate, UnknownMostDerived1,
            UnknownMostDerived2, SPreserved1, SPreserved2)
    }
    async fn relay_unknown_preserved_as_known_preserved(
        &self,
        r: Option<RelayPrx>,
        current: &Current,
    ) -> Result<(), r::RelayUnknownPreservedAsKnownPreservedError> {
        use test::relay::UnknownPreservedAsKnownPreservedError as E;
        pass_on!(relay(r, current)?.unknown_preserved_as_known_preserved().await, E;
            KnownPreserved, KnownPreservedDerived, SPreserved1, SPreserved2)
    }
    async fn shutdown(&self, current: &Current) -> Res<()> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
}

fn main() -> ExitCode {
    floe_conformance::serve_at(
        "slicing/exceptions",
        &[("Ice.Warn.Dispatch", "0")],
        |helper| format!("{} -t 10000", helper.endpoint(0)),
        |_, adapter| {
            adapter.add(
                Arc::new(test::TestIntfDispatcher(Arc::new(TestI))),
                "Test".parse()?,
            )?;
            Ok(())
        },
    )
}
