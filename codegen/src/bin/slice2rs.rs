//! `slice2rs`: compiles Slice files to Rust for the Floe runtime.

fn main() -> std::process::ExitCode {
    let args = std::env::args().skip(1).collect();
    // The parser recurses once per nesting level of Slice modules; give it room for the deepest
    // files slice2py accepts.
    std::thread::Builder::new()
        .stack_size(256 * 1024 * 1024)
        .spawn(move || floe_slice::cli::main(args))
        .expect("start the compiler thread")
        .join()
        .unwrap_or(std::process::ExitCode::FAILURE)
}
