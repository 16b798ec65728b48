//! `floe-raft-kv`: the replicated key-value store of floe-raft's worked example.
//!
//! - `floe-raft-kv node --Raft.NodeId=1 --Raft.Endpoints="tcp -h 127.0.0.1 -p 4061" ...`: one
//!   node (every `Raft.*` property of `docs/raft.md`); prints `ready <kv proxy>` on stdout and
//!   serves until interrupted.
//! - `floe-raft-kv cluster --nodes 3`: a local cluster in one process; prints each node's store
//!   proxy.
//! - `floe-raft-kv put|get|status --proxy PROXY ...`: a client.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use floe::Properties;
use floe_raft::kv::{Cluster, slice::raft_kv::StorePrx, start_node};
use floe_raft::signal::interrupted;
use floe_raft::slice::floe_raft::NodePrx;
use floe_raft::{Config, config::DEFAULT_PREFIX};

/// A replicated key-value store on floe-raft.
#[derive(Debug, Parser)]
#[command(name = "floe-raft-kv", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs one node, configured by `Raft.*` properties (`--Raft.NodeId=1`, `--Ice.Config=FILE`).
    Node,
    /// Runs a cluster of several nodes on loopback in this process.
    Cluster {
        /// How many nodes.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Where node i keeps its data (`DIR/node-i`).
        #[arg(long, default_value = "raft-kv-data")]
        data_dir: PathBuf,
    },
    /// Sets a key.
    Put {
        /// A store proxy (as `node` or `cluster` print it).
        #[arg(long)]
        proxy: String,
        key: String,
        value: String,
    },
    /// Reads a key (linearizable unless --stale).
    Get {
        /// A store proxy.
        #[arg(long)]
        proxy: String,
        key: String,
        /// Answer from the node's own state, without checking with the leader.
        #[arg(long)]
        stale: bool,
    },
    /// Prints a node's view of the cluster.
    Status {
        /// A store proxy (the node's Raft object is asked).
        #[arg(long)]
        proxy: String,
    },
}

async fn client(
    properties: Properties,
    proxy: &str,
) -> Result<(floe::Communicator, StorePrx), String> {
    let communicator =
        floe::Communicator::with_properties(properties).map_err(|e| e.to_string())?;
    let prx = communicator
        .string_to_proxy(proxy)
        .map_err(|e| format!("--proxy: {e}"))?
        .ok_or("--proxy is a null proxy")?;
    Ok((communicator, StorePrx::unchecked_cast(prx)))
}

async fn run(cli: Cli, properties: Properties) -> Result<(), String> {
    match cli.command {
        Command::Node => {
            let config =
                Config::from_properties(properties, DEFAULT_PREFIX).map_err(|e| e.to_string())?;
            let (node, proxy) = start_node(config).await.map_err(|e| e.to_string())?;
            println!("ready {proxy}");
            interrupted().await;
            node.shutdown().await;
            Ok(())
        }
        Command::Cluster { nodes, data_dir } => {
            let cluster = Cluster::start(nodes, &properties, &data_dir)
                .await
                .map_err(|e| e.to_string())?;
            for (_, proxy) in &cluster.nodes {
                println!("{proxy}");
            }
            interrupted().await;
            cluster.shutdown().await;
            Ok(())
        }
        Command::Put { proxy, key, value } => {
            let (communicator, store) = client(properties, &proxy).await?;
            let client_id = rand::random::<u64>() as i64 | 1;
            let r = store
                .put(&key, &value, client_id, 1, 1)
                .await
                .map_err(|e| e.to_string());
            communicator.destroy().await;
            r
        }
        Command::Get { proxy, key, stale } => {
            let (communicator, store) = client(properties, &proxy).await?;
            let r = store.get(&key, stale).await.map_err(|e| e.to_string());
            communicator.destroy().await;
            let r = r?;
            if r.return_value {
                println!("{}", r.value);
                Ok(())
            } else {
                Err(format!("{key}: no such key"))
            }
        }
        Command::Status { proxy } => {
            let (communicator, store) = client(properties, &proxy).await?;
            let node = NodePrx::unchecked_cast(
                store.ice_identity("raft".parse().map_err(|e: floe::Error| e.to_string())?),
            );
            let r = node.status().await.map_err(|e| e.to_string());
            communicator.destroy().await;
            let s = r?;
            println!(
                "node {} {} term {} leader {} log {} committed {} applied {} snapshot {}",
                s.id,
                s.role,
                s.term,
                s.leader,
                s.last_log_index,
                s.committed_index,
                s.applied_index,
                s.snapshot_index
            );
            for (id, info) in &s.membership.nodes {
                let voter = s.membership.configs.iter().any(|c| c.contains(id));
                println!(
                    "  node {id} {} {}",
                    if voter { "voter" } else { "learner" },
                    info.endpoints
                );
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    let properties = match Properties::from_args(&mut args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("floe-raft-kv: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    properties.parse_command_line_options(DEFAULT_PREFIX, &mut args);
    let cli = Cli::parse_from(args);
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("floe-raft-kv: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, properties)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floe-raft-kv: error: {e}");
            ExitCode::FAILURE
        }
    }
}
