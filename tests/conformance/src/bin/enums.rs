//! Server of ZeroC's `Ice/enums` test: `test` (a `::Test::TestIntf`, which echoes enumerators and
//! sequences of them) on `TestAdapter` at `Test.BasePort`.

use std::process::ExitCode;
use std::sync::Arc;

use floe::codegen::{Current, Error};

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/enums/Server.rs"));
}

use generated::test::{self, ByteEnum, IntEnum, ShortEnum, SimpleEnum, test_intf as r};

type Res<T> = Result<T, Error>;

#[derive(Debug)]
struct TestIntfI;

impl test::TestIntf for TestIntfI {
    async fn op_byte(&self, b1: ByteEnum, _: &Current) -> Res<r::OpByteResult> {
        Ok(r::OpByteResult {
            return_value: b1,
            b2: b1,
        })
    }
    async fn op_short(&self, s1: ShortEnum, _: &Current) -> Res<r::OpShortResult> {
        Ok(r::OpShortResult {
            return_value: s1,
            s2: s1,
        })
    }
    async fn op_int(&self, i1: IntEnum, _: &Current) -> Res<r::OpIntResult> {
        Ok(r::OpIntResult {
            return_value: i1,
            i2: i1,
        })
    }
    async fn op_simple(&self, s1: SimpleEnum, _: &Current) -> Res<r::OpSimpleResult> {
        Ok(r::OpSimpleResult {
            return_value: s1,
            s2: s1,
        })
    }
    async fn op_byte_seq(&self, b1: Vec<ByteEnum>, _: &Current) -> Res<r::OpByteSeqResult> {
        Ok(r::OpByteSeqResult {
            return_value: b1.clone(),
            b2: b1,
        })
    }
    async fn op_short_seq(&self, s1: Vec<ShortEnum>, _: &Current) -> Res<r::OpShortSeqResult> {
        Ok(r::OpShortSeqResult {
            return_value: s1.clone(),
            s2: s1,
        })
    }
    async fn op_int_seq(&self, i1: Vec<IntEnum>, _: &Current) -> Res<r::OpIntSeqResult> {
        Ok(r::OpIntSeqResult {
            return_value: i1.clone(),
            i2: i1,
        })
    }
    async fn op_simple_seq(&self, s1: Vec<SimpleEnum>, _: &Current) -> Res<r::OpSimpleSeqResult> {
        Ok(r::OpSimpleSeqResult {
            return_value: s1.clone(),
            s2: s1,
        })
    }
    async fn shutdown(&self, current: &Current) -> Res<()> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
}

fn main() -> ExitCode {
    floe_conformance::serve("enums", &[], |_, adapter| {
        adapter.add(
            Arc::new(test::TestIntfDispatcher(Arc::new(TestIntfI))),
            "test".parse()?,
        )?;
        Ok(())
    })
}
