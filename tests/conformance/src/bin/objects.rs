//! Server of ZeroC's `Ice/objects` test (Slice: `Test.ice`, `Forward.ice`,
//! `ServerPrivate.ice`): `initial` (a `::Test::Initial`), `F21` (a `::Test::F2`) and `uoet` (a
//! `::Test::UnexpectedObjectExceptionTest`) on `TestAdapter` at `Test.BasePort`. The initial
//! object hands out class graphs with cycles, values of interfaces passed by value, compact
//! ids, classes inside exceptions, and echoes what it receives.

use std::any::Any;
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;

use floe::codegen::{Current, Error, InputStream, OutputStream, Value, ValueFactory, ValueRef};

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/objects/Server.rs"));
}

use generated::test::{self, A1, B, C, D, E, F, initial as r};

type Res<T> = Result<T, Error>;

/// A value of an interface type passed by value (`::Test::I`, `::Test::J`): an instance with a
/// type id and no data members, as ZeroC's `Ice.InterfaceByValue`.
#[derive(Debug)]
struct InterfaceByValue(&'static str);

impl Value for InterfaceByValue {
    fn ice_id(&self) -> &'static str {
        self.0
    }
    fn encode_value(&self, os: &mut OutputStream) {
        os.start_slice(self.0, None, true);
        os.end_slice();
    }
    fn decode_value(&mut self, is: &mut InputStream<'_>) -> Result<(), Error> {
        is.start_slice()?;
        is.end_slice()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

floe::codegen::inventory::submit! {
    ValueFactory { type_id: "::Test::I", compact_id: None, create: || Box::new(InterfaceByValue("::Test::I")) }
}
floe::codegen::inventory::submit! {
    ValueFactory { type_id: "::Test::J", compact_id: None, create: || Box::new(InterfaceByValue("::Test::J")) }
}

fn a1(name: &str) -> Option<ValueRef> {
    Some(ValueRef::new(A1 { name: name.into() }))
}

#[derive(Debug)]
struct InitialI {
    b1: ValueRef,
    b2: ValueRef,
    c: ValueRef,
    d: ValueRef,
    e: ValueRef,
    f: ValueRef,
}

impl InitialI {
    /// The graph of ZeroC's test: b1 → (b2, itself, null); b2 → (itself, b1, c); c → b2;
    /// d → (b1, b2, null); f → (e, e).
    fn new() -> InitialI {
        let b1 = ValueRef::new(B::default());
        let b2 = ValueRef::new(B::default());
        let c = ValueRef::new(C::default());
        let d = ValueRef::new(D::default());
        let e = ValueRef::new(E {
            i: 1,
            s: "hello".into(),
        });
        if let Some(mut b) = b1.write_as::<B>() {
            b.the_a = Some(b2.clone());
            b.the_b = Some(b1.clone());
            b.the_c = None;
        }
        if let Some(mut b) = b2.write_as::<B>() {
            b.the_a = Some(b2.clone());
            b.the_b = Some(b1.clone());
            b.the_c = Some(c.clone());
        }
        if let Some(mut cc) = c.write_as::<C>() {
            cc.the_b = Some(b2.clone());
        }
        if let Some(mut dd) = d.write_as::<D>() {
            dd.the_a = Some(b1.clone());
            dd.the_b = Some(b2.clone());
            dd.the_c = None;
        }
        let f = ValueRef::new(F {
            e1: Some(e.clone()),
            e2: Some(e.clone()),
        });
        InitialI { b1, b2, c, d, e, f }
    }

    /// What ZeroC's `ice_preMarshal` hooks of B, C and D do: mark the instances about to be
    /// sent.
    fn pre_marshal(&self) {
        for v in [&self.b1, &self.b2] {
            if let Some(mut b) = v.write_as::<B>() {
                b.pre_marshal_invoked = true;
            }
        }
        if let Some(mut c) = self.c.write_as::<C>() {
            c.pre_marshal_invoked = true;
        }
        if let Some(mut d) = self.d.write_as::<D>() {
            d.pre_marshal_invoked = true;
        }
    }
}

impl test::Initial for InitialI {
    async fn shutdown(&self, current: &Current) -> Res<()> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
    async fn get_b1(&self, _: &Current) -> Res<Option<ValueRef>> {
        self.pre_marshal();
        Ok(Some(self.b1.clone()))
    }
    async fn get_b2(&self, _: &Current) -> Res<Option<ValueRef>> {
        self.pre_marshal();
        Ok(Some(self.b2.clone()))
    }
    async fn get_c(&self, _: &Current) -> Res<Option<ValueRef>> {
        self.pre_marshal();
        Ok(Some(self.c.clone()))
    }
    async fn get_d(&self, _: &Current) -> Res<Option<ValueRef>> {
        self.pre_marshal();
        Ok(Some(self.d.clone()))
    }
    async fn get_e(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(self.e.clone()))
    }
    async fn get_f(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(self.f.clone()))
    }
    async fn set_recursive(&self, _p: Option<ValueRef>, _: &Current) -> Res<()> {
        Ok(())
    }
    async fn supports_class_graph_depth_max(&self, _: &Current) -> Res<bool> {
        Ok(true)
    }
    async fn set_cycle(&self, _r: Option<ValueRef>, _: &Current) -> Res<()> {
        Ok(())
    }
    /// Whether `set_cycle` can succeed: ZeroC's server leaves `Ice.AcceptClassCycles` unset,
    /// so the client's cycle is refused with the MarshalException it expects.
    async fn accepts_class_cycles(&self, current: &Current) -> Res<bool> {
        Ok(current
            .adapter
            .communicator()
            .properties()
            .get_property_as_int("Ice.AcceptClassCycles")
            > 0)
    }
    async fn get_mb(&self, _: &Current) -> Res<Option<ValueRef>> {
        self.pre_marshal();
        Ok(Some(self.b1.clone()))
    }
    async fn get_amdmb(&self, _: &Current) -> Res<Option<ValueRef>> {
        self.pre_marshal();
        Ok(Some(self.b1.clone()))
    }
    async fn get_all(&self, _: &Current) -> Res<r::GetAllResult> {
        self.pre_marshal();
        Ok(r::GetAllResult {
            b1: Some(self.b1.clone()),
            b2: Some(self.b2.clone()),
            the_c: Some(self.c.clone()),
            the_d: Some(self.d.clone()),
        })
    }
    async fn get_h(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(ValueRef::new(test::H::default())))
    }
    async fn get_i(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(ValueRef::new(InterfaceByValue("::Test::I"))))
    }
    async fn get_j(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(ValueRef::new(InterfaceByValue("::Test::J"))))
    }
    async fn get_k(&self, _: &Current) -> Res<Option<ValueRef>> {
        let l = ValueRef::new(test::L { data: "l".into() });
        Ok(Some(ValueRef::new(test::K { value: Some(l) })))
    }
    floe_conformance::echo! {
        op_value(Option<ValueRef>) -> r::OpValueResult { v2 };
        op_value_seq(Vec<Option<ValueRef>>) -> r::OpValueSeqResult { v2 };
        op_value_map(HashMap<String, Option<ValueRef>>) -> r::OpValueMapResult { v2 };
        op_base_seq(Vec<Option<ValueRef>>) -> r::OpBaseSeqResult { out_seq };
        op_m(Option<ValueRef>) -> r::OpMResult { v2 };
    }
    async fn get_d1(&self, d1: Option<ValueRef>, _: &Current) -> Res<Option<ValueRef>> {
        Ok(d1)
    }
    async fn throw_e_derived(&self, _: &Current) -> Result<(), r::ThrowEDerivedError> {
        Err(test::EDerived {
            a1: a1("a1"),
            a2: a1("a2"),
            a3: a1("a3"),
            a4: a1("a4"),
        }
        .into())
    }
    async fn set_g(&self, _g: Option<ValueRef>, _: &Current) -> Res<()> {
        Ok(())
    }
    async fn set_i(&self, _i: Option<ValueRef>, _: &Current) -> Res<()> {
        Ok(())
    }
    async fn get_compact(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(ValueRef::new(test::CompactExt::default())))
    }
    async fn get_inner_a(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(ValueRef::new(test::inner::A {
            the_a: Some(self.b1.clone()),
        })))
    }
    async fn get_inner_sub_a(&self, _: &Current) -> Res<Option<ValueRef>> {
        let inner = ValueRef::new(test::inner::A {
            the_a: Some(self.b1.clone()),
        });
        Ok(Some(ValueRef::new(test::inner::sub::A {
            the_a: Some(inner),
        })))
    }
    async fn throw_inner_ex(&self, _: &Current) -> Result<(), r::ThrowInnerExError> {
        Err(test::inner::Ex {
            reason: "Inner::Ex".into(),
        }
        .into())
    }
    async fn throw_inner_sub_ex(&self, _: &Current) -> Result<(), r::ThrowInnerSubExError> {
        Err(test::inner::sub::Ex {
            reason: "Inner::Sub::Ex".into(),
        }
        .into())
    }
    async fn op_f1(&self, f11: Option<ValueRef>, _: &Current) -> Res<r::OpF1Result> {
        Ok(r::OpF1Result {
            return_value: f11,
            f12: Some(ValueRef::new(test::F1 { name: "F12".into() })),
        })
    }
    async fn op_f2(&self, f21: Option<test::F2Prx>, current: &Current) -> Res<r::OpF2Result> {
        let f22 = current.adapter.communicator().string_to_proxy("F22")?;
        Ok(r::OpF2Result {
            return_value: f21,
            f22: f22.map(test::F2Prx::unchecked_cast),
        })
    }
    async fn op_f3(&self, f31: Option<ValueRef>, current: &Current) -> Res<r::OpF3Result> {
        let f22 = current.adapter.communicator().string_to_proxy("F22")?;
        let f32 = test::F3 {
            f1: Some(ValueRef::new(test::F1 { name: "F12".into() })),
            f2: f22.map(test::F2Prx::unchecked_cast),
        };
        Ok(r::OpF3Result {
            return_value: f31,
            f32: Some(ValueRef::new(f32)),
        })
    }
    async fn has_f3(&self, _: &Current) -> Res<bool> {
        Ok(true)
    }
    async fn op_n(&self, p1: Option<ValueRef>, _: &Current) -> Res<Option<ValueRef>> {
        Ok(p1)
    }
}

#[derive(Debug)]
struct UnexpectedObjectExceptionTestI;

impl test::UnexpectedObjectExceptionTest for UnexpectedObjectExceptionTestI {
    async fn op(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(ValueRef::new(test::AlsoEmpty::default())))
    }
}

#[derive(Debug)]
struct F2I;

impl test::F2 for F2I {
    async fn op(&self, _: &Current) -> Res<()> {
        Ok(())
    }
}

fn main() -> ExitCode {
    floe_conformance::serve("objects", &[("Ice.Warn.Dispatch", "0")], |_, adapter| {
        let initial = Arc::new(InitialI::new());
        adapter.add(
            Arc::new(test::InitialDispatcher(initial)),
            "initial".parse()?,
        )?;
        adapter.add(Arc::new(test::F2Dispatcher(Arc::new(F2I))), "F21".parse()?)?;
        let uoet = Arc::new(UnexpectedObjectExceptionTestI);
        adapter.add(
            Arc::new(test::UnexpectedObjectExceptionTestDispatcher(uoet)),
            "uoet".parse()?,
        )?;
        Ok(())
    })
}
