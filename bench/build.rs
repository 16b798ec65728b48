//! Generates the Rust code for `slice/Bench.ice`.

fn main() {
    if let Err(e) = floe_slice::Builder::new().compile(&["slice/Bench.ice"]) {
        panic!("slice/Bench.ice does not compile:\n{e}");
    }
}
