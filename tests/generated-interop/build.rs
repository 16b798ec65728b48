//! Generates the Rust code for `slice/Interop.ice` with the Builder, as a user's crate would.

fn main() {
    if let Err(e) = floe_slice::Builder::new().compile(&["slice/Interop.ice"]) {
        panic!("slice/Interop.ice does not compile:\n{e}");
    }
}
