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

/// Implements the six operations every `I` of the test shares, each returning its argument as
/// both the result and the out-parameter.
macro_rules! echo_servant {
    ($servant:ident, $trait:path, $res:ident, $s:ty) => {
        #[derive(Debug)]
        struct $servant;

        impl $trait for $servant {
            async fn op_s(&self, s1: $s, _: &Current) -> Res<$res::OpSResult> {
                Ok($res::OpSResult {
                    return_value: s1.clone(),
                    s2: s1,
                })
            }
            async fn op_s_seq(&self, s1: Vec<$s>, _: &Current) -> Res<$res::OpSSeqResult> {
                Ok($res::OpSSeqResult {
                    return_value: s1.clone(),
                    s2: s1,
                })
            }
            async fn op_s_map(
                &self,
                s1: HashMap<String, $s>,
                _: &Current,
            ) -> Res<$res::OpSMapResult> {
                Ok($res::OpSMapResult {
                    return_value: s1.clone(),
                    s2: s1,
                })
            }
            async fn op_c(&self, c1: Option<ValueRef>, _: &Current) -> Res<$res::OpCResult> {
                Ok($res::OpCResult {
                    return_value: c1.clone(),
                    c2: c1,
                })
            }
            async fn op_c_seq(
                &self,
                c1: Vec<Option<ValueRef>>,
                _: &Current,
            ) -> Res<$res::OpCSeqResult> {
                Ok($res::OpCSeqResult {
                    return_value: c1.clone(),
                    c2: c1,
                })
            }
            async fn op_c_map(
                &self,
                c1: HashMap<String, Option<ValueRef>>,
                _: &Current,
            ) -> Res<$res::OpCMapResult> {
                Ok($res::OpCMapResult {
                    return_value: c1.clone(),
                    c2: c1,
                })
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
    async fn op_s(&self, s1: test::S, _: &Current) -> Res<test::i::OpSResult> {
        Ok(test::i::OpSResult {
            return_value: s1.clone(),
            s2: s1,
        })
    }
    async fn op_s_seq(&self, s1: Vec<test::S>, _: &Current) -> Res<test::i::OpSSeqResult> {
        Ok(test::i::OpSSeqResult {
            return_value: s1.clone(),
            s2: s1,
        })
    }
    async fn op_s_map(
        &self,
        s1: HashMap<String, test::S>,
        _: &Current,
    ) -> Res<test::i::OpSMapResult> {
        Ok(test::i::OpSMapResult {
            return_value: s1.clone(),
            s2: s1,
        })
    }
    async fn op_c(&self, c1: Option<ValueRef>, _: &Current) -> Res<test::i::OpCResult> {
        Ok(test::i::OpCResult {
            return_value: c1.clone(),
            c2: c1,
        })
    }
    async fn op_c_seq(&self, s1: Vec<Option<ValueRef>>, _: &Current) -> Res<test::i::OpCSeqResult> {
        Ok(test::i::OpCSeqResult {
            return_value: s1.clone(),
            s2: s1,
        })
    }
    async fn op_c_map(
        &self,
        c1: HashMap<String, Option<ValueRef>>,
        _: &Current,
    ) -> Res<test::i::OpCMapResult> {
        Ok(test::i::OpCMapResult {
            return_value: c1.clone(),
            c2: c1,
        })
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
