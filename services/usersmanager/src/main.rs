//! `usersmanager --Ice.Config=FILE`: one instance of the users manager; prints the Manager's
//! proxy on stdout when ready and serves until interrupted.

use std::process::ExitCode;

use clap::Parser;
use floe::Properties;
use usersmanager::{Config, run};

/// The users manager service (see the README's "usersmanager" section for its properties).
#[derive(Debug, Parser)]
#[command(name = "usersmanager", version)]
struct Cli {}

/// Completes on Ctrl-C or SIGTERM.
async fn interrupted() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    let properties = match Properties::from_args(&mut args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("usersmanager: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for prefix in [
        "UsersManager",
        "IceStorm",
        usersmanager::config::ADAPTER_NAME,
    ] {
        properties.parse_command_line_options(prefix, &mut args);
    }
    let _cli = Cli::parse_from(args);
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("usersmanager: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let config = Config::from_properties(properties)?;
        run(config, interrupted()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("usersmanager: error: {e}");
            ExitCode::FAILURE
        }
    }
}
