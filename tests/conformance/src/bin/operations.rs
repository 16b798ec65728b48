//! Server of ZeroC's `Ice/operations` test: `test` (a `::Test::MyDerivedClass`) and `b` (an
//! `::M::B`) on `TestAdapter` at `Test.BasePort`.

use std::collections::HashMap;
use std::hash::Hash;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use floe::codegen::{Current, Error, ValueRef};

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/operations/Server.rs"));
}

use generated::m;
use generated::test::{self, MyClassPrx, MyEnum, MyStruct, MyStruct1, Structure, my_class};

type Res<T> = Result<T, Error>;

/// `p1` with `p2`'s entries added (Python's `r = p1.copy(); r.update(p2)`).
fn merged<K: Eq + Hash, V>(mut p1: HashMap<K, V>, p2: HashMap<K, V>) -> HashMap<K, V> {
    p1.extend(p2);
    p1
}

fn reversed<T>(mut v: Vec<T>) -> Vec<T> {
    v.reverse();
    v
}

fn concat<T: Clone>(a: &[T], b: &[T]) -> Vec<T> {
    let mut v = a.to_vec();
    v.extend_from_slice(b);
    v
}

#[derive(Debug, Default)]
struct MyDerivedClassI {
    oneway_count: AtomicI32,
}

fn check_mode(current: &Current, expected: floe::OperationMode) -> Res<()> {
    if current.mode == expected {
        Ok(())
    } else {
        Err(Error::marshal(format!(
            "{}: dispatched with mode {:?}, expected {:?}",
            current.operation, current.mode, expected
        )))
    }
}

impl test::MyClass for MyDerivedClassI {
    async fn shutdown(&self, current: &Current) -> Res<()> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
    async fn supports_compress(&self, _: &Current) -> Res<bool> {
        Ok(true)
    }
    async fn op_void(&self, current: &Current) -> Res<()> {
        check_mode(current, floe::OperationMode::Normal)
    }
    async fn op_byte(&self, p1: u8, p2: u8, _: &Current) -> Res<my_class::OpByteResult> {
        Ok(my_class::OpByteResult {
            return_value: p1,
            p3: p1 ^ p2,
        })
    }
    async fn op_bool(&self, p1: bool, p2: bool, _: &Current) -> Res<my_class::OpBoolResult> {
        Ok(my_class::OpBoolResult {
            return_value: p2,
            p3: p1,
        })
    }
    async fn op_short_int_long(
        &self,
        p1: i16,
        p2: i32,
        p3: i64,
        _: &Current,
    ) -> Res<my_class::OpShortIntLongResult> {
        Ok(my_class::OpShortIntLongResult {
            return_value: p3,
            p4: p1,
            p5: p2,
            p6: p3,
        })
    }
    async fn op_float_double(
        &self,
        p1: f32,
        p2: f64,
        _: &Current,
    ) -> Res<my_class::OpFloatDoubleResult> {
        Ok(my_class::OpFloatDoubleResult {
            return_value: p2,
            p3: p1,
            p4: p2,
        })
    }
    async fn op_string(
        &self,
        p1: String,
        p2: String,
        _: &Current,
    ) -> Res<my_class::OpStringResult> {
        Ok(my_class::OpStringResult {
            return_value: format!("{p1} {p2}"),
            p3: format!("{p2} {p1}"),
        })
    }
    async fn op_my_enum(&self, p1: MyEnum, _: &Current) -> Res<my_class::OpMyEnumResult> {
        Ok(my_class::OpMyEnumResult {
            return_value: MyEnum::enum3,
            p2: p1,
        })
    }
    async fn op_my_class(
        &self,
        p1: Option<MyClassPrx>,
        current: &Current,
    ) -> Res<my_class::OpMyClassResult> {
        let this = current.adapter.create_proxy(current.id.clone());
        let none = current.adapter.create_proxy("noSuchIdentity".parse()?);
        Ok(my_class::OpMyClassResult {
            return_value: Some(MyClassPrx::unchecked_cast(this)),
            p2: p1,
            p3: Some(MyClassPrx::unchecked_cast(none)),
        })
    }
    async fn op_struct(
        &self,
        mut p1: Structure,
        p2: Structure,
        _: &Current,
    ) -> Res<my_class::OpStructResult> {
        p1.s.s = "a new string".into();
        Ok(my_class::OpStructResult {
            return_value: p2,
            p3: p1,
        })
    }
    async fn op_byte_s(
        &self,
        p1: Vec<u8>,
        p2: Vec<u8>,
        _: &Current,
    ) -> Res<my_class::OpByteSResult> {
        Ok(my_class::OpByteSResult {
            return_value: concat(&p1, &p2),
            p3: reversed(p1),
        })
    }
    async fn op_bool_s(
        &self,
        p1: Vec<bool>,
        p2: Vec<bool>,
        _: &Current,
    ) -> Res<my_class::OpBoolSResult> {
        Ok(my_class::OpBoolSResult {
            p3: concat(&p1, &p2),
            return_value: reversed(p1),
        })
    }
    async fn op_short_int_long_s(
        &self,
        p1: Vec<i16>,
        p2: Vec<i32>,
        p3: Vec<i64>,
        _: &Current,
    ) -> Res<my_class::OpShortIntLongSResult> {
        Ok(my_class::OpShortIntLongSResult {
            p6: concat(&p3, &p3),
            return_value: p3,
            p4: p1,
            p5: reversed(p2),
        })
    }
    async fn op_float_double_s(
        &self,
        p1: Vec<f32>,
        p2: Vec<f64>,
        _: &Current,
    ) -> Res<my_class::OpFloatDoubleSResult> {
        let mut r = p2.clone();
        r.extend(p1.iter().map(|&f| f as f64));
        Ok(my_class::OpFloatDoubleSResult {
            return_value: r,
            p3: p1,
            p4: reversed(p2),
        })
    }
    async fn op_string_s(
        &self,
        p1: Vec<String>,
        p2: Vec<String>,
        _: &Current,
    ) -> Res<my_class::OpStringSResult> {
        Ok(my_class::OpStringSResult {
            p3: concat(&p1, &p2),
            return_value: reversed(p1),
        })
    }
    async fn op_byte_ss(
        &self,
        p1: Vec<Vec<u8>>,
        p2: Vec<Vec<u8>>,
        _: &Current,
    ) -> Res<my_class::OpByteSSResult> {
        Ok(my_class::OpByteSSResult {
            return_value: concat(&p1, &p2),
            p3: reversed(p1),
        })
    }
    async fn op_bool_ss(
        &self,
        p1: Vec<Vec<bool>>,
        p2: Vec<Vec<bool>>,
        _: &Current,
    ) -> Res<my_class::OpBoolSSResult> {
        Ok(my_class::OpBoolSSResult {
            p3: concat(&p1, &p2),
            return_value: reversed(p1),
        })
    }
    async fn op_short_int_long_ss(
        &self,
        p1: Vec<Vec<i16>>,
        p2: Vec<Vec<i32>>,
        p3: Vec<Vec<i64>>,
        _: &Current,
    ) -> Res<my_class::OpShortIntLongSSResult> {
        Ok(my_class::OpShortIntLongSSResult {
            p6: concat(&p3, &p3),
            return_value: p3,
            p4: p1,
            p5: reversed(p2),
        })
    }
    async fn op_float_double_ss(
        &self,
        p1: Vec<Vec<f32>>,
        p2: Vec<Vec<f64>>,
        _: &Current,
    ) -> Res<my_class::OpFloatDoubleSSResult> {
        Ok(my_class::OpFloatDoubleSSResult {
            return_value: concat(&p2, &p2),
            p3: p1,
            p4: reversed(p2),
        })
    }
    async fn op_string_ss(
        &self,
        p1: Vec<Vec<String>>,
        p2: Vec<Vec<String>>,
        _: &Current,
    ) -> Res<my_class::OpStringSSResult> {
        Ok(my_class::OpStringSSResult {
            p3: concat(&p1, &p2),
            return_value: reversed(p2),
        })
    }
    async fn op_string_sss(
        &self,
        p1: Vec<Vec<Vec<String>>>,
        p2: Vec<Vec<Vec<String>>>,
        _: &Current,
    ) -> Res<my_class::OpStringSSSResult> {
        Ok(my_class::OpStringSSSResult {
            p3: concat(&p1, &p2),
            return_value: reversed(p2),
        })
    }
    async fn op_byte_bool_d(
        &self,
        p1: HashMap<u8, bool>,
        p2: HashMap<u8, bool>,
        _: &Current,
    ) -> Res<my_class::OpByteBoolDResult> {
        Ok(my_class::OpByteBoolDResult {
            p3: p1.clone(),
            return_value: merged(p1, p2),
        })
    }
    async fn op_short_int_d(
        &self,
        p1: HashMap<i16, i32>,
        p2: HashMap<i16, i32>,
        _: &Current,
    ) -> Res<my_class::OpShortIntDResult> {
        Ok(my_class::OpShortIntDResult {
            p3: p1.clone(),
            return_value: merged(p1, p2),
        })
    }
    async fn op_long_float_d(
        &self,
        p1: HashMap<i64, f32>,
        p2: HashMap<i64, f32>,
        _: &Current,
    ) -> Res<my_class::OpLongFloatDResult> {
        Ok(my_class::OpLongFloatDResult {
            p3: p1.clone(),
            return_value: merged(p1, p2),
        })
    }
    async fn op_string_string_d(
        &self,
        p1: HashMap<String, String>,
        p2: HashMap<String, String>,
        _: &Current,
    ) -> Res<my_class::OpStringStringDResult> {
        Ok(my_class::OpStringStringDResult {
            p3: p1.clone(),
            return_value: merged(p1, p2),
        })
    }
    async fn op_string_my_enum_d(
        &self,
        p1: HashMap<String, MyEnum>,
        p2: HashMap<String, MyEnum>,
        _: &Current,
    ) -> Res<my_class::OpStringMyEnumDResult> {
        Ok(my_class::OpStringMyEnumDResult {
            p3: p1.clone(),
            return_value: merged(p1, p2),
        })
    }
    async fn op_my_enum_string_d(
        &self,
        p1: HashMap<MyEnum, String>,
        p2: HashMap<MyEnum, String>,
        _: &Current,
    ) -> Res<my_class::OpMyEnumStringDResult> {
        Ok(my_class::OpMyEnumStringDResult {
            p3: p1.clone(),
            return_value: merged(p1, p2),
        })
    }
    async fn op_my_struct_my_enum_d(
        &self,
        p1: HashMap<MyStruct, MyEnum>,
        p2: HashMap<MyStruct, MyEnum>,
        _: &Current,
    ) -> Res<my_class::OpMyStructMyEnumDResult> {
        Ok(my_class::OpMyStructMyEnumDResult {
            p3: p1.clone(),
            return_value: merged(p1, p2),
        })
    }
    async fn op_byte_bool_ds(
        &self,
        p1: Vec<HashMap<u8, bool>>,
        p2: Vec<HashMap<u8, bool>>,
        _: &Current,
    ) -> Res<my_class::OpByteBoolDSResult> {
        Ok(my_class::OpByteBoolDSResult {
            p3: concat(&p2, &p1),
            return_value: reversed(p1),
        })
    }
    async fn op_short_int_ds(
        &self,
        p1: Vec<HashMap<i16, i32>>,
        p2: Vec<HashMap<i16, i32>>,
        _: &Current,
    ) -> Res<my_class::OpShortIntDSResult> {
        Ok(my_class::OpShortIntDSResult {
            p3: concat(&p2, &p1),
            return_value: reversed(p1),
        })
    }
    async fn op_long_float_ds(
        &self,
        p1: Vec<HashMap<i64, f32>>,
        p2: Vec<HashMap<i64, f32>>,
        _: &Current,
    ) -> Res<my_class::OpLongFloatDSResult> {
        Ok(my_class::OpLongFloatDSResult {
            p3: concat(&p2, &p1),
            return_value: reversed(p1),
        })
    }
    async fn op_string_string_ds(
        &self,
        p1: Vec<HashMap<String, String>>,
        p2: Vec<HashMap<String, String>>,
        _: &Current,
    ) -> Res<my_class::OpStringStringDSResult> {
        Ok(my_class::OpStringStringDSResult {
            p3: concat(&p2, &p1),
            return_value: reversed(p1),
        })
    }
    async fn op_string_my_enum_ds(
        &self,
        p1: Vec<HashMap<String, MyEnum>>,
        p2: Vec<HashMap<String, MyEnum>>,
        _: &Current,
    ) -> Res<my_class::OpStringMyEnumDSResult> {
        Ok(my_class::OpStringMyEnumDSResult {
            p3: concat(&p2, &p1),
            return_value: reversed(p1),
        })
    }
    async fn op_my_enum_string_ds(
        &self,
        p1: Vec<HashMap<MyEnum, String>>,
        p2: Vec<HashMap<MyEnum, String>>,
        _: &Current,
    ) -> Res<my_class::OpMyEnumStringDSResult> {
        Ok(my_class::OpMyEnumStringDSResult {
            p3: concat(&p2, &p1),
            return_value: reversed(p1),
        })
    }
    async fn op_my_struct_my_enum_ds(
        &self,
        p1: Vec<HashMap<MyStruct, MyEnum>>,
        p2: Vec<HashMap<MyStruct, MyEnum>>,
        _: &Current,
    ) -> Res<my_class::OpMyStructMyEnumDSResult> {
        Ok(my_class::OpMyStructMyEnumDSResult {
            p3: concat(&p2, &p1),
            return_value: reversed(p1),
        })
    }
    async fn op_byte_byte_sd(
        &self,
        p1: HashMap<u8, Vec<u8>>,
        p2: HashMap<u8, Vec<u8>>,
        _: &Current,
    ) -> Res<my_class::OpByteByteSDResult> {
        Ok(my_class::OpByteByteSDResult {
            p3: p2.clone(),
            return_value: merged(p1, p2),
        })
    }
    async fn op_bool_bool_sd(
        &self,
        p1: HashMap<bool, Vec<bool>>,
        p2: HashMap<bool, Vec<bool>>,
        _: &Current,
    ) -> Res<my_class::OpBoolBoolSDResult> {
        Ok(my_class::OpBoolBoolSDResult {
            p3: p2.clone(),
            return_value: merged(p1, p2),
        })
    }
    async fn op_short_short_sd(
        &self,
        p1: HashMap<i16, Vec<i16>>,
        p2: HashMap<i16, Vec<i16>>,
        _: &Current,
    ) -> Res<my_class::OpShortShortSDResult> {
        Ok(my_class::OpShortShortSDResult {
            p3: p2.clone(),
            return_value: merged(p1, p2),
        })
    }
    async fn op_int_int_sd(
        &self,
        p1: HashMap<i32, Vec<i32>>,
        p2: HashMap<i32, Vec<i32>>,
        _: &Current,
    ) -> Res<my_class::OpIntIntSDResult> {
        Ok(my_class::OpIntIntSDResult {
            p3: p2.clone(),
            return_value: merged(p1, p2),
        })
    }
    async fn op_long_long_sd(
        &self,
        p1: HashMap<i64, Vec<i64>>,
        p2: HashMap<i64, Vec<i64>>,
        _: &Current,
    ) -> Res<my_class::OpLongLongSDResult> {
        Ok(my_class::OpLongLongSDResult {
            p3: p2.clone(),
            return_value: merged(p1, p2),
        })
    }
    async fn op_string_float_sd(
        &self,
        p1: HashMap<String, Vec<f32>>,
        p2: HashMap<String, Vec<f32>>,
        _: &Current,
    ) -> Res<my_class::OpStringFloatSDResult> {
        Ok(my_class::OpStringFloatSDResult {
            p3: p2.clone(),
            return_value: merged(p1, p2),
        })
    }
    async fn op_string_double_sd(
        &self,
        p1: HashMap<String, Vec<f64>>,
        p2: HashMap<String, Vec<f64>>,
        _: &Current,
    ) -> Res<my_class::OpStringDoubleSDResult> {
        Ok(my_class::OpStringDoubleSDResult {
            p3: p2.clone(),
            return_value: merged(p1, p2),
        })
    }
    async fn op_string_string_sd(
        &self,
        p1: HashMap<String, Vec<String>>,
        p2: HashMap<String, Vec<String>>,
        _: &Current,
    ) -> Res<my_class::OpStringStringSDResult> {
        Ok(my_class::OpStringStringSDResult {
            p3: p2.clone(),
            return_value: merged(p1, p2),
        })
    }
    async fn op_my_enum_my_enum_sd(
        &self,
        p1: HashMap<MyEnum, Vec<MyEnum>>,
        p2: HashMap<MyEnum, Vec<MyEnum>>,
        _: &Current,
    ) -> Res<my_class::OpMyEnumMyEnumSDResult> {
        Ok(my_class::OpMyEnumMyEnumSDResult {
            p3: p2.clone(),
            return_value: merged(p1, p2),
        })
    }
    async fn op_int_s(&self, s: Vec<i32>, _: &Current) -> Res<Vec<i32>> {
        Ok(s.into_iter().map(i32::wrapping_neg).collect())
    }
    async fn op_byte_s_oneway(&self, _s: Vec<u8>, _: &Current) -> Res<()> {
        self.oneway_count.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn op_byte_s_oneway_call_count(&self, _: &Current) -> Res<i32> {
        Ok(self.oneway_count.swap(0, Ordering::SeqCst))
    }
    async fn op_context(&self, current: &Current) -> Res<HashMap<String, String>> {
        Ok(current.ctx.clone())
    }
    async fn op_double_marshaling(&self, p1: f64, p2: Vec<f64>, _: &Current) -> Res<()> {
        let d = 1278312346.0 / 13.0;
        if p1 != d || p2.iter().any(|&x| x != d) {
            return Err(Error::marshal("opDoubleMarshaling: unexpected values"));
        }
        Ok(())
    }
    async fn op_idempotent(&self, current: &Current) -> Res<()> {
        check_mode(current, floe::OperationMode::Idempotent)
    }
    async fn op_nonmutating(&self, current: &Current) -> Res<()> {
        check_mode(current, floe::OperationMode::Nonmutating)
    }
    async fn op_byte1(&self, v: u8, _: &Current) -> Res<u8> {
        Ok(v)
    }
    async fn op_short1(&self, v: i16, _: &Current) -> Res<i16> {
        Ok(v)
    }
    async fn op_int1(&self, v: i32, _: &Current) -> Res<i32> {
        Ok(v)
    }
    async fn op_long1(&self, v: i64, _: &Current) -> Res<i64> {
        Ok(v)
    }
    async fn op_float1(&self, v: f32, _: &Current) -> Res<f32> {
        Ok(v)
    }
    async fn op_double1(&self, v: f64, _: &Current) -> Res<f64> {
        Ok(v)
    }
    async fn op_string1(&self, v: String, _: &Current) -> Res<String> {
        Ok(v)
    }
    async fn op_string_s1(&self, v: Vec<String>, _: &Current) -> Res<Vec<String>> {
        Ok(v)
    }
    async fn op_byte_bool_d1(&self, v: HashMap<u8, bool>, _: &Current) -> Res<HashMap<u8, bool>> {
        Ok(v)
    }
    async fn op_string_s2(&self, v: Vec<String>, _: &Current) -> Res<Vec<String>> {
        Ok(v)
    }
    async fn op_byte_bool_d2(&self, v: HashMap<u8, bool>, _: &Current) -> Res<HashMap<u8, bool>> {
        Ok(v)
    }
    async fn op_string_literals(&self, _: &Current) -> Res<Vec<String>> {
        Ok(string_literals())
    }
    async fn op_w_string_literals(&self, _: &Current) -> Res<Vec<String>> {
        Ok(string_literals())
    }
    async fn op_m_struct1(&self, _: &Current) -> Res<Structure> {
        Ok(Structure::default())
    }
    floe_conformance::echo! {
        op_m_struct2(Structure) -> my_class::OpMStruct2Result { p2 };
        op_m_seq2(Vec<String>) -> my_class::OpMSeq2Result { p2 };
        op_m_dict2(HashMap<String, String>) -> my_class::OpMDict2Result { p2 };
    }
    async fn op_m_seq1(&self, _: &Current) -> Res<Vec<String>> {
        Ok(Vec::new())
    }
    async fn op_m_dict1(&self, _: &Current) -> Res<HashMap<String, String>> {
        Ok(HashMap::new())
    }
}

fn string_literals() -> Vec<String> {
    use generated::test::*;
    [
        s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, sw0, sw1, sw2, sw3, sw4, sw5, sw6, sw7, sw8,
        sw9, sw10, ss0, ss1, ss2, ss3, ss4, ss5, su0, su1, su2,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

impl test::MyDerivedClass for MyDerivedClassI {
    async fn op_derived(&self, _: &Current) -> Res<()> {
        Ok(())
    }
    async fn op_my_class1(&self, v: Option<ValueRef>, _: &Current) -> Res<Option<ValueRef>> {
        Ok(v)
    }
    async fn op_my_struct1(&self, v: MyStruct1, _: &Current) -> Res<MyStruct1> {
        Ok(v)
    }
}

#[derive(Debug)]
struct BI;

impl m::Intf for BI {
    async fn op_intf(&self, _: &Current) -> Res<()> {
        Ok(())
    }
}

impl m::BServant for BI {
    async fn op_b(&self, _: &Current) -> Res<()> {
        Ok(())
    }
}

fn main() -> ExitCode {
    // Batch oneways may still be dispatched while the adapter deactivates.
    floe_conformance::serve("operations", &[("Ice.Warn.Dispatch", "0")], |_, adapter| {
        let servant = Arc::new(MyDerivedClassI::default());
        adapter.add(
            Arc::new(test::MyDerivedClassDispatcher(servant)),
            "test".parse()?,
        )?;
        adapter.add(Arc::new(m::BDispatcher(Arc::new(BI))), "b".parse()?)?;
        Ok(())
    })
}
