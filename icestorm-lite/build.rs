//! Generates the Rust code for the IceStorm interfaces (`slice/IceStorm/*.ice` at the root of the
//! repository): the public `IceStorm` module and the federation interfaces topics use between
//! themselves.

fn main() {
    let slice = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../slice");
    if let Err(e) = floe_slice::Builder::new()
        .include(&slice)
        .compile(&[slice.join("IceStorm/IceStormInternal.ice")])
    {
        panic!("slice/IceStorm/IceStormInternal.ice does not compile:\n{e}");
    }
    // The events of the tests and the benchmark.
    if let Err(e) = floe_slice::Builder::new().compile(&["tests/slice/Clock.ice"]) {
        panic!("tests/slice/Clock.ice does not compile:\n{e}");
    }
}
