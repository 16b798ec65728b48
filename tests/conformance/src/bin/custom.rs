//! Server of ZeroC's `Ice/custom` test: `test` (a `::Test::Custom`) on `TestAdapter` at
//! `Test.BasePort`. The test is about Python's sequence mappings (lists, tuples, `array.array`,
//! memoryview factories); on the wire they are plain sequences, which this server echoes. The
//! NumPy part runs only where the client has NumPy (`test.numpy`); it is not served here.

use std::process::ExitCode;
use std::sync::Arc;

use floe::codegen::{Current, Error, ValueRef};

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/custom/Server.rs"));
}

use generated::test::{self, custom as r};

type Res<T> = Result<T, Error>;

#[derive(Debug)]
struct CustomI;

/// What ZeroC's servant returns to the operations whose Python result factories are broken
/// on purpose (the client's unmarshaling is what fails).
fn bogus() -> Res<Vec<bool>> {
    Ok(vec![true, false, true, false])
}

impl test::Custom for CustomI {
    floe_conformance::echo! {
        op_byte_string1(Vec<u8>) -> r::OpByteString1Result { b2 };
        op_byte_string2(Vec<u8>) -> r::OpByteString2Result { b2 };
        op_byte_list1(Vec<u8>) -> r::OpByteList1Result { b2 };
        op_byte_list2(Vec<u8>) -> r::OpByteList2Result { b2 };
        op_string_list1(Vec<String>) -> r::OpStringList1Result { s2 };
        op_string_list2(Vec<String>) -> r::OpStringList2Result { s2 };
        op_string_tuple1(Vec<String>) -> r::OpStringTuple1Result { s2 };
        op_string_tuple2(Vec<String>) -> r::OpStringTuple2Result { s2 };
        op_bool_seq(Vec<bool>) -> r::OpBoolSeqResult { v2 };
        op_byte_seq(Vec<u8>) -> r::OpByteSeqResult { v2 };
        op_short_seq(Vec<i16>) -> r::OpShortSeqResult { v2 };
        op_int_seq(Vec<i32>) -> r::OpIntSeqResult { v2 };
        op_long_seq(Vec<i64>) -> r::OpLongSeqResult { v2 };
        op_float_seq(Vec<f32>) -> r::OpFloatSeqResult { v2 };
        op_double_seq(Vec<f64>) -> r::OpDoubleSeqResult { v2 };
    }
    async fn send_s(&self, _val: test::S, _: &Current) -> Res<()> {
        Ok(())
    }
    async fn send_c(&self, _val: Option<ValueRef>, _: &Current) -> Res<()> {
        Ok(())
    }
    async fn op_bogus_array_not_exists_factory(&self, _: &Current) -> Res<Vec<bool>> {
        bogus()
    }
    async fn op_bogus_array_throw_factory(&self, _: &Current) -> Res<Vec<bool>> {
        bogus()
    }
    async fn op_bogus_array_type(&self, _: &Current) -> Res<Vec<bool>> {
        bogus()
    }
    async fn op_bogus_array_none_factory(&self, _: &Current) -> Res<Vec<bool>> {
        bogus()
    }
    async fn op_bogus_array_signature_factory(&self, _: &Current) -> Res<Vec<bool>> {
        bogus()
    }
    async fn op_bogus_array_no_callable_factory(&self, _: &Current) -> Res<Vec<bool>> {
        bogus()
    }
    async fn op_d(&self, d: Option<ValueRef>, _: &Current) -> Res<Option<ValueRef>> {
        Ok(d)
    }
    async fn shutdown(&self, current: &Current) -> Res<()> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
}

fn main() -> ExitCode {
    floe_conformance::serve("custom", &[], |_, adapter| {
        adapter.add(
            Arc::new(test::CustomDispatcher(Arc::new(CustomI))),
            "test".parse()?,
        )?;
        Ok(())
    })
}
