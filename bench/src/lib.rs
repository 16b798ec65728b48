//! The generated code for `slice/Bench.ice` and the Floe servant of the benchmark.

use std::sync::atomic::{AtomicI32, Ordering};

use floe::codegen::{Current, Error};

floe::include_slice!("Bench");

/// The `Bench::Service` servant.
#[derive(Debug, Default)]
pub struct BenchI {
    oneways: AtomicI32,
}

impl bench::Service for BenchI {
    async fn ping(&self, _current: &Current) -> Result<(), Error> {
        Ok(())
    }

    async fn add(&self, a: i32, b: i32, _current: &Current) -> Result<i32, Error> {
        Ok(a.wrapping_add(b))
    }

    async fn echo(&self, data: Vec<u8>, _current: &Current) -> Result<Vec<u8>, Error> {
        Ok(data)
    }

    async fn send(&self, _data: Vec<u8>, _current: &Current) -> Result<(), Error> {
        Ok(())
    }

    async fn oneway_ping(&self, _current: &Current) -> Result<(), Error> {
        self.oneways.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn oneway_count(&self, _current: &Current) -> Result<i32, Error> {
        Ok(self.oneways.load(Ordering::Relaxed))
    }

    async fn shutdown(&self, current: &Current) -> Result<(), Error> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
}
