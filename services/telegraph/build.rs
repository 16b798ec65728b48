//! Generates the Rust code for `slice/Telegraph.ice` (IceStorm's proxies come from
//! icestorm-lite).

fn main() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../slice");
    if let Err(e) = floe_slice::Builder::new()
        .include(root)
        .compile(&[format!("{root}/Telegraph.ice")])
    {
        panic!("slice/Telegraph.ice does not compile:\n{e}");
    }
}
