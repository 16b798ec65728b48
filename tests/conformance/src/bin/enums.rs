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
    floe_conformance::echo! {
        op_byte(ByteEnum) -> r::OpByteResult { b2 };
        op_short(ShortEnum) -> r::OpShortResult { s2 };
        op_int(IntEnum) -> r::OpIntResult { i2 };
        op_simple(SimpleEnum) -> r::OpSimpleResult { s2 };
        op_byte_seq(Vec<ByteEnum>) -> r::OpByteSeqResult { b2 };
        op_short_seq(Vec<ShortEnum>) -> r::OpShortSeqResult { s2 };
        op_int_seq(Vec<IntEnum>) -> r::OpIntSeqResult { i2 };
        op_simple_seq(Vec<SimpleEnum>) -> r::OpSimpleSeqResult { s2 };
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
