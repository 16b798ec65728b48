//! `floe-bench-certs DIR`: writes the certificates of the `ssl` runs of `run.sh` into DIR (made
//! afresh each run, never committed): ZeroC's test-suite names and password, from
//! `floe-test-support`'s `certs` feature, the files the interop tests already use with both
//! ZeroC's IceSSL and Floe's. `cacert.pem` (the CA), `server.p12` (`CN=127.0.0.1`) and
//! `client.p12` (`CN=client`), password `password`, ECDSA P-256 keys.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: floe-bench-certs DIR");
        return ExitCode::from(2);
    };
    match floe_test_support::certs::write_test_certs(&dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floe-bench-certs: cannot write {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}
