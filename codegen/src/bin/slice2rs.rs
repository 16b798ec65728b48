//! `slice2rs`: compiles Slice files to Rust for the Floe runtime.

fn main() -> std::process::ExitCode {
    floe_slice::cli::main(std::env::args().skip(1).collect())
}
