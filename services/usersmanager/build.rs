//! Generates the Rust code for `slice/UsersManager.ice` and for IceStorm's interface.

fn main() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../slice");
    if let Err(e) = floe_slice::Builder::new()
        .include(root)
        .compile(&[format!("{root}/UsersManager.ice")])
    {
        panic!("slice/UsersManager.ice does not compile:\n{e}");
    }
    let ice_slice = "/usr/share/ice/slice";
    if let Err(e) = floe_slice::Builder::new()
        .include(ice_slice)
        .compile(&[format!("{ice_slice}/IceStorm/IceStorm.ice")])
    {
        panic!("IceStorm/IceStorm.ice does not compile (install zeroc-ice-slice):\n{e}");
    }
}
