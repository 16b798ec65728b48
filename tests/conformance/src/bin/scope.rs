//! Server of ZeroC's `Ice/scope` test: `i1` (`::Test::I`), `i2` (`::Test::Inner::Inner2::I`),
//! `i3` (`::Test::Inner::I`) and `i4` (`::Inner::Test::Inner2::I`) on `TestAdapter` at
//! `Test.BasePort`; every operation returns its argument (twice where it has an out-parameter).

use std::process::ExitCode;
use std::sync::Arc;

use floe::codegen::{Current, Error, ValueRef};

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/scope/Server.rs"));
}

use generated::{inner, test};
use std::collections::HashMap;

type Res<T> = Result<T, Error>;

/// A servant of one of the test's `I` with no operations but the six every `I` shares, each
/// returning its argument as both the result and the out-parameter.
macro_rules! echo_servant {
    ($servant:ident, $trait:path, $res:ident, $s:ty) => {
        #[derive(Debug)]
        struct $servant;

        impl $trait for $servant {
            floe_conformance::echo! {
                op_s($s) -> $res::OpSResult { s2 };
                op_s_seq(Vec<$s>) -> $res::OpSSeqResult { s2 };
                op_s_map(HashMap<String, $s>) -> $res::OpSMapResult { s2 };
                op_c(Option<ValueRef>) -> $res::OpCResult { c2 };
                op_c_seq(Vec<Option<ValueRef>>) -> $res::OpCSeqResult { c2 };
                op_c_map(HashMap<String, Option<ValueRef>>) -> $res::OpCMapResult { c2 };
            }
            async fn shutdown(&self, current: &Current) -> Res<()> {
                current.adapter.communicator().shutdown();
                Ok(())
            }
        }
    };
}

#[derive(Debug)]
struct I1;

impl test::I for I1 {
    floe_conformance::echo! {
        op_s(test::S) -> test::i::OpSResult { s2 };
        op_s_seq(Vec<test::S>) -> test::i::OpSSeqResult { s2 };
        op_s_map(HashMap<String, test::S>) -> test::i::OpSMapResult { s2 };
        op_c(Option<ValueRef>) -> test::i::OpCResult { c2 };
        op_c_seq(Vec<Option<ValueRef>>) -> test::i::OpCSeqResult { s2 };
        op_c_map(HashMap<String, Option<ValueRef>>) -> test::i::OpCMapResult { c2 };
    }
    async fn op_e1(&self, e1: test::E1, _: &Current) -> Res<test::E1> {
        Ok(e1)
    }
    async fn op_s1(&self, s1: test::S1, _: &Current) -> Res<test::S1> {
        Ok(s1)
    }
    async fn op_c1(&self, c1: Option<ValueRef>, _: &Current) -> Res<Option<ValueRef>> {
        Ok(c1)
    }
    async fn shutdown(&self, current: &Current) -> Res<()> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
}

use inner::test::inner2::i as i4;
use test::inner::i as i3;
use test::inner::inner2::i as i2;

echo_servant!(I2, test::inner::inner2::I, i2, test::inner::inner2::S);
echo_servant!(I3, test::inner::I, i3, test::inner::inner2::S);
echo_servant!(I4, inner::test::inner2::I, i4, test::S);

fn main() -> ExitCode {
    floe_conformance::serve("scope", &[], |_, adapter| {
        adapter.add(Arc::new(test::IDispatcher(Arc::new(I1))), "i1".parse()?)?;
        adapter.add(
            Arc::new(test::inner::inner2::IDispatcher(Arc::new(I2))),
            "i2".parse()?,
        )?;
        adapter.add(
            Arc::new(test::inner::IDispatcher(Arc::new(I3))),
            "i3".parse()?,
        )?;
        adapter.add(
            Arc::new(inner::test::inner2::IDispatcher(Arc::new(I4))),
            "i4".parse()?,
        )?;
        Ok(())
    })
}
