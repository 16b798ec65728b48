//! Generates the Rust code for `slice/Dispotify.ice` (the users manager's proxies come from
//! the usersmanager crate).

fn main() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../slice");
    if let Err(e) = floe_slice::Builder::new()
        .include(root)
        .compile(&[format!("{root}/Dispotify.ice")])
    {
        panic!("slice/Dispotify.ice does not compile:\n{e}");
    }
}
