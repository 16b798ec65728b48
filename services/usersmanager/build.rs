//! Generates the Rust code for `slice/UsersManager.ice` (IceStorm's proxies come from
//! icestorm-lite, generated from the repository's own `slice/IceStorm/IceStorm.ice`).

fn main() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../slice");
    if let Err(e) = floe_slice::Builder::new()
        .include(root)
        .compile(&[format!("{root}/UsersManager.ice")])
    {
        panic!("slice/UsersManager.ice does not compile:\n{e}");
    }
}
