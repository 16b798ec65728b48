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

/// Operations `optional(1) T op(optional(2) T p1, out optional(3) T p3)` answer `(p1, p1)`.
macro_rules! echo {
    ($($op:ident($t:ty) -> $res:ident;)*) => {
        $(
            async fn $op(&self, p1: Option<$t>, _: &Current) -> Res<r::$res> {
                Ok(r::$res { return_value: p1.clone(), p3: p1 })
            }
        )*
    };
}

impl test::Initial for InitialI {
    echo! {
        op_byte(u8) -> OpByteResult;
        op_bool(bool) -> OpBoolResult;
        op_short(i16) -> OpShortResult;
        op_int(i32) -> OpIntResult;
        op_long(i64) -> OpLongResult;
        op_float(f32) -> OpFloatResult;
        op_double(f64) -> OpDoubleResult;
        op_string(String) -> OpStringResult;
        op_my_enum(MyEnum) -> OpMyEnumResult;
        op_small_struct(SmallStruct) -> OpSmallStructResult;
        op_fixed_struct(FixedStruct) -> OpFixedStructResult;
        op_var_struct(VarStruct) -> OpVarStructResult;
        op_one_optional_proxy(OneOptionalPrx) -> OpOneOptionalProxyResult;
        op_byte_seq(Vec<u8>) -> OpByteSeqResult;
        op_bool_seq(Vec<bool>) -> OpBoolSeqResult;
        op_short_seq(Vec<i16>) -> OpShortSeqResult;
        op_int_seq(Vec<i32>) -> OpIntSeqResult;
        op_long_seq(Vec<i64>) -> OpLongSeqResult;
        op_float_seq(Vec<f32>) -> OpFloatSeqResult;
        op_double_seq(Vec<f64>) -> OpDoubleSeqResult;
        op_string_seq(Vec<String>) -> OpStringSeqResult;
        op_small_struct_seq(Vec<SmallStruct>) -> OpSmallStructSeqResult;
        op_small_struct_list(Vec<SmallStruct>) -> OpSmallStructListResult;
        op_fixed_struct_seq(Vec<FixedStruct>) -> OpFixedStructSeqResult;
        op_fixed_struct_list(Vec<FixedStruct>) -> OpFixedStructListResult;
        op_var_struct_seq(Vec<VarStruct>) -> OpVarStructSeqResult;
        op_serializable(Vec<u8>) -> OpSerializableResult;
        op_int_int_dict(HashMap<i32, i32>) -> OpIntIntDictResult;
        op_string_int_dict(HashMap<String, i32>) -> OpStringIntDictResult;
        op_int_one_optional_dict(HashMap<i32, Option<ValueRef>>) -> OpIntOneOptionalDictResult;
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
    async fn op_one_optional(
        &self,
        p1: Option<ValueRef>,
        _: &Current,
    ) -> Res<r::OpOneOptionalResult> {
        Ok(r::OpOneOptionalResult {
            return_value: p1.clone(),
            p3: p1,
        })
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
    async fn op_m_struct2(&self, p1: Option<SmallStruct>, _: &Current) -> Res<r::OpMStruct2Result> {
        Ok(r::OpMStruct2Result {
            return_value: p1.clone(),
            p2: p1,
        })
    }
    async fn op_m_seq1(&self, _: &Current) -> Res<Option<Vec<String>>> {
        Ok(Some(Vec::new()))
    }
    async fn op_m_seq2(&self, p1: Option<Vec<String>>, _: &Current) -> Res<r::OpMSeq2Result> {
        Ok(r::OpMSeq2Result {
            return_value: p1.clone(),
            p2: p1,
        })
    }
    async fn op_m_dict1(&self, _: &Current) -> Res<Option<HashMap<String, i32>>> {
        Ok(Some(HashMap::new()))
    }
    async fn op_m_dict2(
        &self,
        p1: Option<HashMap<String, i32>>,
        _: &Current,
    ) -> Res<r::OpMDict2Result> {
        Ok(r::OpMDict2Result {
            return_value: p1.clone(),
            p2: p1,
        })
    }
    async fn op_mg1(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(ValueRef::new(test::G::default())))
    }
    async fn op_mg2(&self, p1: Option<ValueRef>, _: &Current) -> Res<r::OpMG2Result> {
        Ok(r::OpMG2Result {
            return_value: p1.clone(),
            p2: p1,
        })
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
