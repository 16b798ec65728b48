//! Generates the Rust code for `slice/Interop.ice` and `slice/Decoding.ice` with the Builder, as a
//! user's crate would.

fn main() {
    if let Err(e) = floe_slice::Builder::new().compile(&["slice/Interop.ice", "slice/Decoding.ice"])
    {
        panic!("the Slice files do not compile:\n{e}");
    }
}
