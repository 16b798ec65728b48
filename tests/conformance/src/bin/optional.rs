//! Server of ZeroC's `Ice/optional` test: `initial` (a `::Test::Initial`) on `TestAdapter` at
//! `Test.BasePort`. Its operations return their optional parameters as result and
//! out-parameter, raise exceptions carrying them, and accept classes with optional members the
//! server does not know (the client's private derived classes).

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;

use floe::codegen::{Current, Error, ValueRef};

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/optional/Server.rs"));
}

use generated::test::{
    self, FixedStruct, MyEnum, OneOptionalPrx, SmallStruct, VarStruct, initial as r,
};

type Res<T> = Result<T, Error>;

#[derive(Debug)]
struct InitialI;

impl test::Initial for InitialI {
    floe_conformance::echo! {
        op_byte(Option<u8>) -> r::OpByteResult { p3 };
        op_bool(Option<bool>) -> r::OpBoolResult { p3 };
        op_short(Option<i16>) -> r::OpShortResult { p3 };
        op_int(Option<i32>) -> r::OpIntResult { p3 };
        op_long(Option<i64>) -> r::OpLongResult { p3 };
        op_float(Option<f32>) -> r::OpFloatResult { p3 };
        op_double(Option<f64>) -> r::OpDoubleResult { p3 };
        op_string(Option<String>) -> r::OpStringResult { p3 };
        op_my_enum(Option<MyEnum>) -> r::OpMyEnumResult { p3 };
        op_small_struct(Option<SmallStruct>) -> r::OpSmallStructResult { p3 };
        op_fixed_struct(Option<FixedStruct>) -> r::OpFixedStructResult { p3 };
        op_var_struct(Option<VarStruct>) -> r::OpVarStructResult { p3 };
        op_one_optional_proxy(Option<OneOptionalPrx>) -> r::OpOneOptionalProxyResult { p3 };
        op_byte_seq(Option<Vec<u8>>) -> r::OpByteSeqResult { p3 };
        op_bool_seq(Option<Vec<bool>>) -> r::OpBoolSeqResult { p3 };
        op_short_seq(Option<Vec<i16>>) -> r::OpShortSeqResult { p3 };
        op_int_seq(Option<Vec<i32>>) -> r::OpIntSeqResult { p3 };
        op_long_seq(Option<Vec<i64>>) -> r::OpLongSeqResult { p3 };
        op_float_seq(Option<Vec<f32>>) -> r::OpFloatSeqResult { p3 };
        op_double_seq(Option<Vec<f64>>) -> r::OpDoubleSeqResult { p3 };
        op_string_seq(Option<Vec<String>>) -> r::OpStringSeqResult { p3 };
        op_small_struct_seq(Option<Vec<SmallStruct>>) -> r::OpSmallStructSeqResult { p3 };
        op_small_struct_list(Option<Vec<SmallStruct>>) -> r::OpSmallStructListResult { p3 };
        op_fixed_struct_seq(Option<Vec<FixedStruct>>) -> r::OpFixedStructSeqResult { p3 };
        op_fixed_struct_list(Option<Vec<FixedStruct>>) -> r::OpFixedStructListResult { p3 };
        op_var_struct_seq(Option<Vec<VarStruct>>) -> r::OpVarStructSeqResult { p3 };
        op_serializable(Option<Vec<u8>>) -> r::OpSerializableResult { p3 };
        op_int_int_dict(Option<HashMap<i32, i32>>) -> r::OpIntIntDictResult { p3 };
        op_string_int_dict(Option<HashMap<String, i32>>) -> r::OpStringIntDictResult { p3 };
        op_int_one_optional_dict(Option<HashMap<i32, Option<ValueRef>>>)
            -> r::OpIntOneOptionalDictResult { p3 };
        op_one_optional(Option<ValueRef>) -> r::OpOneOptionalResult { p3 };
        op_m_struct2(Option<SmallStruct>) -> r::OpMStruct2Result { p2 };
        op_m_seq2(Option<Vec<String>>) -> r::OpMSeq2Result { p2 };
        op_m_dict2(Option<HashMap<String, i32>>) -> r::OpMDict2Result { p2 };
        op_mg2(Option<ValueRef>) -> r::OpMG2Result { p2 };
    }

    async fn shutdown(&self, current: &Current) -> Res<()> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
    async fn ping_pong(&self, o: Option<ValueRef>, _: &Current) -> Res<Option<ValueRef>> {
        Ok(o)
    }
    async fn op_optional_exception(
        &self,
        a: Option<i32>,
        b: Option<String>,
        o: Option<ValueRef>,
        _: &Current,
    ) -> Result<(), r::OpOptionalExceptionError> {
        Err(test::OptionalException {
            req: false,
            a,
            b,
            o,
        }
        .into())
    }
    async fn op_derived_exception(
        &self,
        a: Option<i32>,
        b: Option<String>,
        o: Option<ValueRef>,
        _: &Current,
    ) -> Result<(), r::OpDerivedExceptionError> {
        Err(test::DerivedException {
            req: false,
            a,
            b: b.clone(),
            o: o.clone(),
            d1: "d1".into(),
            ss: b,
            o2: o,
            d2: "d2".into(),
        }
        .into())
    }
    async fn op_required_exception(
        &self,
        a: Option<i32>,
        b: Option<String>,
        o: Option<ValueRef>,
        _: &Current,
    ) -> Result<(), r::OpRequiredExceptionError> {
        let mut e = test::RequiredException {
            a,
            b: b.clone(),
            o: o.clone(),
            ..Default::default()
        };
        if let Some(b) = b {
            e.ss = b;
        }
        if o.is_some() {
            e.o2 = o;
        }
        Err(e.into())
    }
    async fn op_class_and_unknown_optional(&self, _p: Option<ValueRef>, _: &Current) -> Res<()> {
        Ok(())
    }
    async fn op_required_after_optional(
        &self,
        p1: i32,
        p2: Option<i32>,
        p3: i32,
        _: &Current,
    ) -> Res<r::OpRequiredAfterOptionalResult> {
        Ok(r::OpRequiredAfterOptionalResult {
            p4: p1,
            p5: p2,
            p6: p3,
        })
    }
    async fn op_optional_after_required(
        &self,
        p1: i32,
        p2: Option<i32>,
        p3: Option<i32>,
        _: &Current,
    ) -> Res<r::OpOptionalAfterRequiredResult> {
        Ok(r::OpOptionalAfterRequiredResult {
            p4: p1,
            p5: p2,
            p6: p3,
        })
    }
    async fn send_optional_class(&self, _req: bool, _o: Option<ValueRef>, _: &Current) -> Res<()> {
        Ok(())
    }
    async fn return_optional_class(
        &self,
        _req: bool,
        _: &Current,
    ) -> Res<r::ReturnOptionalClassResult> {
        let o = ValueRef::new(test::OneOptional { a: Some(53) });
        Ok(r::ReturnOptionalClassResult { o: Some(o) })
    }
    async fn op_g(&self, g: Option<ValueRef>, _: &Current) -> Res<Option<ValueRef>> {
        Ok(g)
    }
    async fn op_void(&self, _: &Current) -> Res<()> {
        Ok(())
    }
    async fn op_m_struct1(&self, _: &Current) -> Res<Option<SmallStruct>> {
        Ok(Some(SmallStruct::default()))
    }
    async fn op_m_seq1(&self, _: &Current) -> Res<Option<Vec<String>>> {
        Ok(Some(Vec::new()))
    }
    async fn op_m_dict1(&self, _: &Current) -> Res<Option<HashMap<String, i32>>> {
        Ok(Some(HashMap::new()))
    }
    async fn op_mg1(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(ValueRef::new(test::G::default())))
    }
    async fn supports_required_params(&self, _: &Current) -> Res<bool> {
        Ok(false)
    }
    async fn supports_java_serializable(&self, _: &Current) -> Res<bool> {
        Ok(true)
    }
    async fn supports_csharp_serializable(&self, _: &Current) -> Res<bool> {
        Ok(true)
    }
    async fn supports_cpp_string_view(&self, _: &Current) -> Res<bool> {
        Ok(false)
    }
    /// Floe maps an optional class or proxy to one `Option`: a null value and an unset optional
    /// are both `None` (docs/codegen-surface.md), so a null sent as set comes back unset.
    async fn supports_null_optional(&self, _: &Current) -> Res<bool> {
        Ok(false)
    }
}

fn main() -> ExitCode {
    // As ZeroC's server: the client sends graphs with cycles.
    floe_conformance::serve(
        "optional",
        &[("Ice.AcceptClassCycles", "1")],
        |_, adapter| {
            adapter.add(
                Arc::new(test::InitialDispatcher(Arc::new(InitialI))),
                "initial".parse()?,
            )?;
            Ok(())
        },
    )
}
