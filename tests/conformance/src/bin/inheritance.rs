//! Server of ZeroC's `Ice/inheritance` test: `initial` (a `::Test::Initial`) on `TestAdapter` at
//! `Test.BasePort`, handing out proxies to servants (added with UUIDs) of interfaces and of
//! classes with operations along two inheritance hierarchies; every operation returns its
//! argument.

use std::process::ExitCode;
use std::sync::Arc;

use floe::codegen::{Current, Dispatcher, Error};

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/inheritance/Server.rs"));
}

use generated::test::{self, ma, mb};

type Res<T> = Result<T, Error>;

/// One servant type implements every interface; each is registered through the dispatcher of
/// the most-derived type it stands for.
#[derive(Debug)]
struct Servant;

impl ma::CAServant for Servant {
    async fn caop(&self, p: Option<ma::CAPrx>, _: &Current) -> Res<Option<ma::CAPrx>> {
        Ok(p)
    }
}
impl mb::CBServant for Servant {
    async fn cbop(&self, p: Option<mb::CBPrx>, _: &Current) -> Res<Option<mb::CBPrx>> {
        Ok(p)
    }
}
impl ma::CCServant for Servant {
    async fn ccop(&self, p: Option<ma::CCPrx>, _: &Current) -> Res<Option<ma::CCPrx>> {
        Ok(p)
    }
}
impl ma::CDServant for Servant {
    async fn cdop(&self, p: Option<ma::CDPrx>, _: &Current) -> Res<Option<ma::CDPrx>> {
        Ok(p)
    }
}
impl ma::IA for Servant {
    async fn iaop(&self, p: Option<ma::IAPrx>, _: &Current) -> Res<Option<ma::IAPrx>> {
        Ok(p)
    }
}
impl mb::IB1 for Servant {
    async fn ib1op(&self, p: Option<mb::IB1Prx>, _: &Current) -> Res<Option<mb::IB1Prx>> {
        Ok(p)
    }
}
impl mb::IB2 for Servant {
    async fn ib2op(&self, p: Option<mb::IB2Prx>, _: &Current) -> Res<Option<mb::IB2Prx>> {
        Ok(p)
    }
}
impl ma::IC for Servant {
    async fn icop(&self, p: Option<ma::ICPrx>, _: &Current) -> Res<Option<ma::ICPrx>> {
        Ok(p)
    }
}

#[derive(Debug)]
struct InitialI {
    ca: ma::CAPrx,
    cb: mb::CBPrx,
    cc: ma::CCPrx,
    cd: ma::CDPrx,
    ia: ma::IAPrx,
    ib1: mb::IB1Prx,
    ib2: mb::IB2Prx,
    ic: ma::ICPrx,
}

impl test::Initial for InitialI {
    async fn shutdown(&self, current: &Current) -> Res<()> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
    async fn caop(&self, _: &Current) -> Res<Option<ma::CAPrx>> {
        Ok(Some(self.ca.clone()))
    }
    async fn cbop(&self, _: &Current) -> Res<Option<mb::CBPrx>> {
        Ok(Some(self.cb.clone()))
    }
    async fn ccop(&self, _: &Current) -> Res<Option<ma::CCPrx>> {
        Ok(Some(self.cc.clone()))
    }
    async fn cdop(&self, _: &Current) -> Res<Option<ma::CDPrx>> {
        Ok(Some(self.cd.clone()))
    }
    async fn iaop(&self, _: &Current) -> Res<Option<ma::IAPrx>> {
        Ok(Some(self.ia.clone()))
    }
    async fn ib1op(&self, _: &Current) -> Res<Option<mb::IB1Prx>> {
        Ok(Some(self.ib1.clone()))
    }
    async fn ib2op(&self, _: &Current) -> Res<Option<mb::IB2Prx>> {
        Ok(Some(self.ib2.clone()))
    }
    async fn icop(&self, _: &Current) -> Res<Option<ma::ICPrx>> {
        Ok(Some(self.ic.clone()))
    }
}

fn main() -> ExitCode {
    floe_conformance::serve("inheritance", &[], |_, adapter| {
        let s = Arc::new(Servant);
        let add = |d: Arc<dyn Dispatcher>| adapter.add_with_uuid(d);
        let initial = InitialI {
            ca: ma::CAPrx::unchecked_cast(add(Arc::new(ma::CADispatcher(s.clone())))?),
            cb: mb::CBPrx::unchecked_cast(add(Arc::new(mb::CBDispatcher(s.clone())))?),
            cc: ma::CCPrx::unchecked_cast(add(Arc::new(ma::CCDispatcher(s.clone())))?),
            cd: ma::CDPrx::unchecked_cast(add(Arc::new(ma::CDDispatcher(s.clone())))?),
            ia: ma::IAPrx::unchecked_cast(add(Arc::new(ma::IADispatcher(s.clone())))?),
            ib1: mb::IB1Prx::unchecked_cast(add(Arc::new(mb::IB1Dispatcher(s.clone())))?),
            ib2: mb::IB2Prx::unchecked_cast(add(Arc::new(mb::IB2Dispatcher(s.clone())))?),
            ic: ma::ICPrx::unchecked_cast(add(Arc::new(ma::ICDispatcher(s)))?),
        };
        adapter.add(
            Arc::new(test::InitialDispatcher(Arc::new(initial))),
            "initial".parse()?,
        )?;
        Ok(())
    })
}
