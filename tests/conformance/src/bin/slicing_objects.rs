//! Server of ZeroC's `Ice/slicing/objects` test (Slice: `Test.ice`, `ServerPrivate.ice`):
//! `Test` (a `::Test::TestIntf`, sliced format) on `TestAdapter` at `Test.BasePort`. It sends
//! class graphs (with cycles) whose types the client does not know, so the client slices them,
//! and takes back the client's values with unknown slices: `["preserve-slice"]` classes keep
//! them and send them back unchanged (`exchangePBase`, `exchangePNode`, `checkPBSUnknown…`).

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;

use floe::EncodingVersion;
use floe::codegen::{Current, Error, Value, ValueRef};

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/slicing_objects/Server.rs"));
}

use generated::test::{self, B, D1, D2, PNode, PSUnknown, PSUnknown2, test_intf as r};

type Res<T> = Result<T, Error>;

fn cell<T: Value>(v: T) -> ValueRef {
    ValueRef::new(v)
}

fn check(ok: bool, what: &str) -> Res<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::marshal(format!("check failed: {what}")))
    }
}

/// Checks what the 1.0 encoding makes of the client's `T` (unknown to the client, whose
/// preserved slices 1.0 does not keep): a `Preserved` with the client's members.
fn sliced_to_preserved<T: Value>(p: &ValueRef, name: &str) -> Res<()> {
    check(!p.is::<T>(), &format!("1.0: not a {name}"))?;
    let v = p.read_as::<test::Preserved>();
    check(
        v.is_some_and(|v| v.pi == 5 && v.ps == "preserved"),
        "a Preserved",
    )
}

fn s_base() -> ValueRef {
    cell(test::SBase {
        sb: "SBase.sb".into(),
    })
}

fn sbs_known_derived() -> ValueRef {
    cell(test::SBSKnownDerived {
        sb: "SBSKnownDerived.sb".into(),
        sbskd: "SBSKnownDerived.sbskd".into(),
    })
}

fn sbs_unknown_derived() -> ValueRef {
    cell(test::SBSUnknownDerived {
        sb: "SBSUnknownDerived.sb".into(),
        sbsud: "SBSUnknownDerived.sbsud".into(),
    })
}

/// A `B` whose `pb` is itself.
fn b_cycle(sb: &str) -> ValueRef {
    let b = cell(B {
        sb: sb.into(),
        pb: None,
    });
    if let Some(mut v) = b.write_as::<B>() {
        v.pb = Some(b.clone());
    }
    b
}

/// A `PSUnknown2` (unknown to the client) whose `pb` is itself.
fn ps_unknown2_cycle() -> ValueRef {
    let p = cell(PSUnknown2 {
        pi: 5,
        ps: "preserved".into(),
        ..Default::default()
    });
    if let Some(mut v) = p.write_as::<PSUnknown2>() {
        v.pb = Some(p.clone());
    }
    p
}

/// d1 (a D1) and d2 (a D2, unknown to the client) pointing at each other twice.
fn d1_d2() -> (ValueRef, ValueRef) {
    let d1 = cell(D1 {
        sb: "D1.sb".into(),
        sd1: "D1.sd1".into(),
        ..Default::default()
    });
    let d2 = cell(D2 {
        sb: "D2.sb".into(),
        sd2: "D2.sd2".into(),
        pb: Some(d1.clone()),
        pd2: Some(d1.clone()),
    });
    if let Some(mut d) = d1.write_as::<D1>() {
        d.pb = Some(d2.clone());
        d.pd1 = Some(d2.clone());
    }
    (d1, d2)
}

/// The members `sb` and `pb` of a `B` or of any class derived from it (Rust structs repeat
/// their bases' members).
fn b_members(v: &ValueRef) -> Option<(String, Option<ValueRef>)> {
    if let Some(b) = v.read_as::<B>() {
        return Some((b.sb.clone(), b.pb.clone()));
    }
    if let Some(b) = v.read_as::<D1>() {
        return Some((b.sb.clone(), b.pb.clone()));
    }
    if let Some(b) = v.read_as::<D2>() {
        return Some((b.sb.clone(), b.pb.clone()));
    }
    v.read_as::<test::D4>()
        .map(|b| (b.sb.clone(), b.pb.clone()))
}

#[derive(Debug)]
struct TestI;

impl test::TestIntf for TestI {
    async fn s_base_as_object(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(s_base()))
    }
    async fn s_base_as_s_base(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(s_base()))
    }
    async fn sbs_known_derived_as_s_base(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(sbs_known_derived()))
    }
    async fn sbs_known_derived_as_sbs_known_derived(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(sbs_known_derived()))
    }
    async fn sbs_unknown_derived_as_s_base(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(sbs_unknown_derived()))
    }
    async fn sbs_unknown_derived_as_s_base_compact(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(sbs_unknown_derived()))
    }
    async fn s_unknown_as_object(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(cell(test::SUnknown {
            su: "SUnknown.su".into(),
            cycle: None,
        })))
    }
    async fn check_s_unknown(&self, o: Option<ValueRef>, current: &Current) -> Res<()> {
        let o = o.ok_or_else(|| Error::marshal("checkSUnknown: null"))?;
        let su = o.read_as::<test::SUnknown>();
        if current.encoding == EncodingVersion::V1_0 {
            check(su.is_none(), "1.0: not an SUnknown")
        } else {
            check(su.is_some_and(|s| s.su == "SUnknown.su"), "an SUnknown")
        }
    }
    async fn one_element_cycle(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(b_cycle("B1.sb")))
    }
    async fn two_element_cycle(&self, _: &Current) -> Res<Option<ValueRef>> {
        let b1 = cell(B {
            sb: "B1.sb".into(),
            pb: None,
        });
        let b2 = cell(B {
            sb: "B2.sb".into(),
            pb: Some(b1.clone()),
        });
        if let Some(mut v) = b1.write_as::<B>() {
            v.pb = Some(b2);
        }
        Ok(Some(b1))
    }
    async fn d1_as_b(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(d1_d2().0))
    }
    async fn d1_as_d1(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(d1_d2().0))
    }
    async fn d2_as_b(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(d1_d2().1))
    }
    async fn param_test1(&self, _: &Current) -> Res<r::ParamTest1Result> {
        let (d1, d2) = d1_d2();
        Ok(r::ParamTest1Result {
            p1: Some(d1),
            p2: Some(d2),
        })
    }
    async fn param_test2(&self, _: &Current) -> Res<r::ParamTest2Result> {
        let (d1, d2) = d1_d2();
        Ok(r::ParamTest2Result {
            p2: Some(d2),
            p1: Some(d1),
        })
    }
    async fn param_test3(&self, _: &Current) -> Res<r::ParamTest3Result> {
        let d1 = cell(D1 {
            sb: "D1.sb (p1 2)".into(),
            sd1: "D1.sd2 (p1 2)".into(),
            ..Default::default()
        });
        let d2 = cell(D2 {
            sb: "D2.sb (p1 1)".into(),
            sd2: "D2.sd2 (p1 1)".into(),
            pb: None,
            pd2: Some(d1),
        });
        let d3 = cell(D1 {
            sb: "D1.sb (p2 2)".into(),
            sd1: "D1.sd2 (p2 2)".into(),
            ..Default::default()
        });
        let d4 = cell(D2 {
            sb: "D2.sb (p2 1)".into(),
            sd2: "D2.sd2 (p2 1)".into(),
            pb: None,
            pd2: Some(d3.clone()),
        });
        Ok(r::ParamTest3Result {
            return_value: Some(d3),
            p1: Some(d2),
            p2: Some(d4),
        })
    }
    async fn param_test4(&self, _: &Current) -> Res<r::ParamTest4Result> {
        let p1 = cell(B {
            sb: "B.sb (1)".into(),
            pb: None,
        });
        let p2 = cell(B {
            sb: "B.sb (2)".into(),
            pb: None,
        });
        let d4 = cell(test::D4 {
            sb: "D4.sb (1)".into(),
            pb: None,
            p1: Some(p1),
            p2: Some(p2.clone()),
        });
        Ok(r::ParamTest4Result {
            return_value: Some(p2),
            p: Some(d4),
        })
    }
    async fn return_test1(&self, _: &Current) -> Res<r::ReturnTest1Result> {
        let (d1, d2) = d1_d2();
        Ok(r::ReturnTest1Result {
            return_value: Some(d1.clone()),
            p1: Some(d1),
            p2: Some(d2),
        })
    }
    async fn return_test2(&self, _: &Current) -> Res<r::ReturnTest2Result> {
        // The unknown D2 first: it is both the result and `p2` (the first out-parameter).
        let (d1, d2) = d1_d2();
        Ok(r::ReturnTest2Result {
            return_value: Some(d2.clone()),
            p2: Some(d2),
            p1: Some(d1),
        })
    }
    async fn return_test3(
        &self,
        p1: Option<ValueRef>,
        _p2: Option<ValueRef>,
        _: &Current,
    ) -> Res<Option<ValueRef>> {
        Ok(p1)
    }
    async fn sequence_test(
        &self,
        p1: Option<ValueRef>,
        p2: Option<ValueRef>,
        _: &Current,
    ) -> Res<test::SS3> {
        Ok(test::SS3 { c1: p1, c2: p2 })
    }
    async fn dictionary_test(
        &self,
        bin: HashMap<i32, Option<ValueRef>>,
        _: &Current,
    ) -> Res<r::DictionaryTestResult> {
        let mut bout = HashMap::new();
        for i in 0..10 {
            let b = bin
                .get(&i)
                .cloned()
                .flatten()
                .ok_or_else(|| Error::marshal(format!("dictionaryTest: no entry {i}")))?;
            let (sb, pb) =
                b_members(&b).ok_or_else(|| Error::marshal("dictionaryTest: not a B"))?;
            let d2 = cell(D2 {
                sb,
                pb,
                sd2: "D2".into(),
                pd2: None,
            });
            if let Some(mut v) = d2.write_as::<D2>() {
                v.pd2 = Some(d2.clone());
            }
            bout.insert(i * 10, Some(d2));
        }
        let mut ret: HashMap<i32, Option<ValueRef>> = HashMap::new();
        for i in 0..10 {
            let s = format!("D1.{}", i * 20);
            let pb = if i == 0 {
                None
            } else {
                ret.get(&((i - 1) * 20)).cloned().flatten()
            };
            let d1 = cell(D1 {
                sb: s.clone(),
                pb,
                sd1: s,
                pd1: None,
            });
            if let Some(mut v) = d1.write_as::<D1>() {
                v.pd1 = Some(d1.clone());
            }
            ret.insert(i * 20, Some(d1));
        }
        Ok(r::DictionaryTestResult {
            return_value: ret,
            bout,
        })
    }
    async fn exchange_p_base(&self, pb: Option<ValueRef>, _: &Current) -> Res<Option<ValueRef>> {
        Ok(pb)
    }
    async fn pbs_unknown_as_preserved(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(cell(PSUnknown {
            pi: 5,
            ps: "preserved".into(),
            psu: "unknown".into(),
            ..Default::default()
        })))
    }
    async fn check_pbs_unknown(&self, p: Option<ValueRef>, current: &Current) -> Res<()> {
        let p = p.ok_or_else(|| Error::marshal("checkPBSUnknown: null"))?;
        if current.encoding == EncodingVersion::V1_0 {
            sliced_to_preserved::<PSUnknown>(&p, "PSUnknown")
        } else {
            let v = p.read_as::<PSUnknown>();
            check(
                v.is_some_and(|v| {
                    v.pi == 5 && v.ps == "preserved" && v.psu == "unknown" && v.graph.is_none()
                }),
                "a PSUnknown",
            )
        }
    }
    async fn pbs_unknown_as_preserved_with_graph(&self, _: &Current) -> Res<Option<ValueRef>> {
        let n1 = cell(PNode::default());
        let n2 = cell(PNode::default());
        let n3 = cell(PNode {
            next: Some(n1.clone()),
            ..Default::default()
        });
        if let Some(mut v) = n2.write_as::<PNode>() {
            v.next = Some(n3);
        }
        if let Some(mut v) = n1.write_as::<PNode>() {
            v.next = Some(n2);
        }
        Ok(Some(cell(PSUnknown {
            pi: 5,
            ps: "preserved".into(),
            psu: "unknown".into(),
            graph: Some(n1),
            ..Default::default()
        })))
    }
    async fn check_pbs_unknown_with_graph(
        &self,
        p: Option<ValueRef>,
        current: &Current,
    ) -> Res<()> {
        let p = p.ok_or_else(|| Error::marshal("checkPBSUnknownWithGraph: null"))?;
        if current.encoding == EncodingVersion::V1_0 {
            return sliced_to_preserved::<PSUnknown>(&p, "PSUnknown");
        }
        let graph = {
            let v = p
                .read_as::<PSUnknown>()
                .ok_or_else(|| Error::marshal("not a PSUnknown"))?;
            check(
                v.pi == 5 && v.ps == "preserved" && v.psu == "unknown",
                "PSUnknown members",
            )?;
            v.graph.clone().ok_or_else(|| Error::marshal("no graph"))?
        };
        let next = |n: &ValueRef| n.read_as::<PNode>().and_then(|v| v.next.clone());
        let n2 = next(&graph).ok_or_else(|| Error::marshal("graph.next"))?;
        let n3 = next(&n2).ok_or_else(|| Error::marshal("graph.next.next"))?;
        let n4 = next(&n3).ok_or_else(|| Error::marshal("graph.next.next.next"))?;
        check(
            !graph.ptr_eq(&n2) && !n2.ptr_eq(&n3) && n4.ptr_eq(&graph),
            "a three-node cycle",
        )?;
        // Break the cycle so the graph can be freed.
        if let Some(mut v) = n3.write_as::<PNode>() {
            v.next = None;
        }
        Ok(())
    }
    async fn pbs_unknown2_as_preserved_with_graph(&self, _: &Current) -> Res<Option<ValueRef>> {
        Ok(Some(ps_unknown2_cycle()))
    }
    async fn check_pbs_unknown2_with_graph(
        &self,
        p: Option<ValueRef>,
        current: &Current,
    ) -> Res<()> {
        let p = p.ok_or_else(|| Error::marshal("checkPBSUnknown2WithGraph: null"))?;
        if current.encoding == EncodingVersion::V1_0 {
            return sliced_to_preserved::<PSUnknown2>(&p, "PSUnknown2");
        }
        let mut v = p
            .write_as::<PSUnknown2>()
            .ok_or_else(|| Error::marshal("not a PSUnknown2"))?;
        check(v.pi == 5 && v.ps == "preserved", "PSUnknown2 members")?;
        check(
            v.pb.as_ref().is_some_and(|pb| pb.ptr_eq(&p)),
            "pb is itself",
        )?;
        v.pb = None;
        Ok(())
    }
    async fn exchange_p_node(&self, pn: Option<ValueRef>, _: &Current) -> Res<Option<ValueRef>> {
        Ok(pn)
    }
    async fn throw_base_as_base(&self, _: &Current) -> Result<(), r::ThrowBaseAsBaseError> {
        Err(test::BaseException {
            sbe: "sbe".into(),
            pb: Some(b_cycle("sb")),
        }
        .into())
    }
    async fn throw_derived_as_base(&self, _: &Current) -> Result<(), r::ThrowDerivedAsBaseError> {
        Err(derived_exception().into())
    }
    async fn throw_derived_as_derived(
        &self,
        _: &Current,
    ) -> Result<(), r::ThrowDerivedAsDerivedError> {
        Err(derived_exception().into())
    }
    async fn throw_unknown_derived_as_base(
        &self,
        _: &Current,
    ) -> Result<(), r::ThrowUnknownDerivedAsBaseError> {
        let d2 = cell(D2 {
            sb: "sb d2".into(),
            sd2: "sd2 d2".into(),
            pb: None,
            pd2: None,
        });
        if let Some(mut v) = d2.write_as::<D2>() {
            v.pb = Some(d2.clone());
            v.pd2 = Some(d2.clone());
        }
        Err(test::UnknownDerivedException {
            sbe: "sbe".into(),
            pb: Some(d2.clone()),
            sude: "sude".into(),
            pd2: Some(d2),
        }
        .into())
    }
    async fn throw_preserved_exception(
        &self,
        _: &Current,
    ) -> Result<(), r::ThrowPreservedExceptionError> {
        Err(test::PSUnknownException {
            p: Some(ps_unknown2_cycle()),
            ..Default::default()
        }
        .into())
    }
    async fn use_forward(&self, _: &Current) -> Res<r::UseForwardResult> {
        let f = cell(test::Forward { h: None });
        let h = cell(test::Hidden { f: Some(f.clone()) });
        if let Some(mut v) = f.write_as::<test::Forward>() {
            v.h = Some(h);
        }
        Ok(r::UseForwardResult { f: Some(f) })
    }
    async fn shutdown(&self, current: &Current) -> Res<()> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
}

fn derived_exception() -> test::DerivedException {
    let d1 = cell(D1 {
        sb: "sb2".into(),
        sd1: "sd2".into(),
        ..Default::default()
    });
    if let Some(mut v) = d1.write_as::<D1>() {
        v.pb = Some(d1.clone());
        v.pd1 = Some(d1.clone());
    }
    test::DerivedException {
        sbe: "sbe".into(),
        pb: Some(b_cycle("sb1")),
        sde: "sde1".into(),
        pd1: Some(d1),
    }
}

fn main() -> ExitCode {
    floe_conformance::serve_at(
        "slicing/objects",
        // As ZeroC's server: the client sends graphs with cycles.
        &[("Ice.Warn.Dispatch", "0"), ("Ice.AcceptClassCycles", "1")],
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
