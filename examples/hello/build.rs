//! Generates the Rust code for `Hello.ice`.

fn main() {
    if let Err(e) = floe_slice::Builder::new().compile(&["Hello.ice"]) {
        panic!("Hello.ice does not compile:\n{e}");
    }
}
