//! `usersmanager --Ice.Config=FILE`: one instance of the users manager; prints the Manager's
//! proxy on stdout when ready and serves until interrupted (Ctrl-C, SIGTERM).
//!
//! `usersmanager cluster --instances N`: an icestorm-lite broker and N instances on loopback;
//! prints the N Manager proxies, one a line.
//!
//! `usersmanager demo PROXY...`: walks through the service on running instances.

use std::process::ExitCode;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use floe::Properties;
use usersmanager::cluster::{Cluster, demo};
use usersmanager::{Config, ServiceError, run};

/// The users manager service (see the README's "usersmanager" section for its properties).
#[derive(Debug, Parser)]
#[command(name = "usersmanager", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a broker and several instances on loopback, for trying the service.
    Cluster {
        /// How many instances.
        #[arg(long, default_value_t = 3)]
        instances: usize,
        /// Where instance i keeps its users (`DIR/instance-i`); default UsersManager.DataDir.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Creates a user on the first Manager, logs in through the second, verifies through the
    /// third, refreshes and removes the user.
    Demo {
        /// Manager proxies (as `usersmanager` prints them).
        #[arg(required = true)]
        proxies: Vec<String>,
    },
}

async fn run_cluster(
    properties: Properties,
    instances: usize,
    data_dir: Option<PathBuf>,
) -> Result<(), ServiceError> {
    let data_dir = data_dir.unwrap_or_else(|| usersmanager::config::data_dir(&properties));
    let cluster = Cluster::start(instances, &properties, &data_dir).await?;
    for m in cluster.managers() {
        println!("{m}");
    }
    interrupted().await;
    cluster.shutdown().await;
    Ok(())
}

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
    let cli = Cli::parse_from(args);
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
    let result: Result<(), String> = runtime.block_on(async move {
        match cli.command {
            None => {
                let config = Config::from_properties(properties).map_err(|e| e.to_string())?;
                run(config, interrupted()).await.map_err(|e| e.to_string())
            }
            Some(Command::Cluster {
                instances,
                data_dir,
            }) => run_cluster(properties, instances, data_dir)
                .await
                .map_err(|e| e.to_string()),
            Some(Command::Demo { proxies }) => {
                let communicator =
                    floe::Communicator::with_properties(properties).map_err(|e| e.to_string())?;
                let steps = demo(&communicator, &proxies).await;
                communicator.destroy().await;
                for line in steps.map_err(|e| e.to_string())? {
                    println!("{line}");
                }
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("usersmanager: error: {e}");
            ExitCode::FAILURE
        }
    }
}
