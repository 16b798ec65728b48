//! Server of ZeroC's `Ice/facets` test: identity `d` with the default facet and `facetABCD` (a
//! `::Test::D`), `facetEF` (a `::Test::F`) and `facetGH` (a `::Test::H`) on `TestAdapter` at
//! `Test.BasePort`.

use std::process::ExitCode;
use std::sync::Arc;

use floe::codegen::{Current, Error};

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/facets/Server.rs"));
}

use generated::test;

type Res<T> = Result<T, Error>;

#[derive(Debug)]
struct DI;

impl test::A for DI {
    async fn call_a(&self, _: &Current) -> Res<String> {
        Ok("A".into())
    }
}
impl test::B for DI {
    async fn call_b(&self, _: &Current) -> Res<String> {
        Ok("B".into())
    }
}
impl test::C for DI {
    async fn call_c(&self, _: &Current) -> Res<String> {
        Ok("C".into())
    }
}
impl test::D for DI {
    async fn call_d(&self, _: &Current) -> Res<String> {
        Ok("D".into())
    }
}

#[derive(Debug)]
struct FI;

impl test::E for FI {
    async fn call_e(&self, _: &Current) -> Res<String> {
        Ok("E".into())
    }
}
impl test::F for FI {
    async fn call_f(&self, _: &Current) -> Res<String> {
        Ok("F".into())
    }
}

#[derive(Debug)]
struct HI;

impl test::G for HI {
    async fn shutdown(&self, current: &Current) -> Res<()> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
    async fn call_g(&self, _: &Current) -> Res<String> {
        Ok("G".into())
    }
}
impl test::H for HI {
    async fn call_h(&self, _: &Current) -> Res<String> {
        Ok("H".into())
    }
}

fn main() -> ExitCode {
    floe_conformance::serve("facets", &[], |_, adapter| {
        let d: floe::Identity = "d".parse()?;
        adapter.add(Arc::new(test::DDispatcher(Arc::new(DI))), d.clone())?;
        adapter.add_facet(
            Arc::new(test::DDispatcher(Arc::new(DI))),
            d.clone(),
            "facetABCD",
        )?;
        adapter.add_facet(
            Arc::new(test::FDispatcher(Arc::new(FI))),
            d.clone(),
            "facetEF",
        )?;
        adapter.add_facet(Arc::new(test::HDispatcher(Arc::new(HI))), d, "facetGH")?;
        Ok(())
    })
}
