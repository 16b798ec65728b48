//! `class Tracked { Tracked next; }` (module FloeCycles), written the way slice2rs generates a
//! class, counting its live instances: the class-graph tests use it to see what is freed.

use std::sync::atomic::{AtomicI64, Ordering};

use floe::codegen::{InputStream, OutputStream, ValueRef};

/// Live instances of [`Tracked`].
static LIVE: AtomicI64 = AtomicI64::new(0);

/// How many [`Tracked`] instances are alive.
pub fn live() -> i64 {
    LIVE.load(Ordering::SeqCst)
}

#[derive(Debug)]
pub struct Tracked {
    pub next: Option<ValueRef>,
}

impl Default for Tracked {
    fn default() -> Self {
        LIVE.fetch_add(1, Ordering::SeqCst);
        Tracked { next: None }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

impl floe::codegen::Value for Tracked {
    fn ice_id(&self) -> &'static str {
        "::FloeCycles::Tracked"
    }
    fn encode_value(&self, os: &mut OutputStream) {
        os.start_slice("::FloeCycles::Tracked", None, true);
        os.write_value(&self.next);
        os.end_slice();
    }
    fn decode_value(&mut self, is: &mut InputStream<'_>) -> floe::Result<()> {
        is.start_slice()?;
        self.next = is.read_value()?;
        is.end_slice()
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

floe::codegen::inventory::submit! {
    floe::codegen::ValueFactory {
        type_id: "::FloeCycles::Tracked",
        compact_id: None,
        create: || Box::new(Tracked::default()),
    }
}
