//! `dispotify`: the nodes and the command-line client of Dispotify (see `docs/dispotify.md`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dispotify::client::{download, upload_file};
use dispotify::cluster::Cluster;
use dispotify::node::{Node, NodeConfig};
use dispotify::slice::dispotify::{CatalogPrx, Overrides};
use floe::Properties;
use floe_raft::signal::interrupted;

/// Distributed music on Floe. Settings are Ice properties (`--Dispotify.Raft.NodeId=1`,
/// `--Ice.Config=FILE`); see docs/dispotify.md.
#[derive(Debug, Parser)]
#[command(name = "dispotify", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct Target {
    /// A node's catalog proxy (as `node` and `cluster` print it).
    #[arg(long, env = "DISPOTIFY_NODE")]
    node: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs one node (`Dispotify.*` and `Dispotify.Raft.*` properties); prints its catalog
    /// proxy and HTTP address.
    Node,
    /// Runs a users manager and N nodes on loopback in this process; prints each node's catalog
    /// proxy and web player address, and the users manager's proxy.
    Cluster {
        /// How many nodes.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Where node i keeps its data (`DIR/node-i`).
        #[arg(long, default_value = "dispotify-data")]
        data_dir: PathBuf,
        /// An account created in the users manager at start, as USER:PASSWORD.
        #[arg(long, default_value = "demo:demo")]
        account: String,
    },
    /// Uploads audio files (with a users manager session: --user, --password, --users).
    Upload {
        #[command(flatten)]
        target: Target,
        /// The users manager's proxy.
        #[arg(long, env = "DISPOTIFY_USERS")]
        users: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long, env = "DISPOTIFY_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Overrides of the files' tags.
        #[arg(long, default_value = "")]
        title: String,
        #[arg(long, default_value = "")]
        artist: String,
        #[arg(long, default_value = "")]
        album: String,
        files: Vec<PathBuf>,
    },
    /// Searches titles, artists and albums.
    Search {
        #[command(flatten)]
        target: Target,
        query: String,
        #[arg(long, default_value_t = 20)]
        limit: i32,
    },
    /// Shows a song.
    Info {
        #[command(flatten)]
        target: Target,
        id: String,
    },
    /// Streams a song to a file (or stdout).
    Play {
        #[command(flatten)]
        target: Target,
        id: String,
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Shows the nodes, the leader and each file's replicas.
    Status {
        #[command(flatten)]
        target: Target,
    },
}

fn catalog(communicator: &floe::Communicator, proxy: &str) -> Result<CatalogPrx, String> {
    let prx = communicator
        .string_to_proxy(proxy)
        .map_err(|e| format!("--node: {e}"))?
        .ok_or("--node is a null proxy")?;
    Ok(CatalogPrx::unchecked_cast(
        prx.ice_invocation_timeout(60_000),
    ))
}

fn print_song(s: &dispotify::slice::dispotify::Song) {
    println!(
        "{}  {} — {} ({}) #{} {}s {} bytes {}",
        s.id,
        s.artist,
        s.title,
        s.album,
        s.track,
        s.duration_ms / 1000,
        s.size,
        s.mime
    );
}

async fn client_command(command: Command, properties: Properties) -> Result<(), String> {
    let communicator =
        floe::Communicator::with_properties(properties).map_err(|e| e.to_string())?;
    let result = async {
        match command {
            Command::Upload {
                target,
                users,
                user,
                password,
                title,
                artist,
                album,
                files,
            } => {
                let catalog = catalog(&communicator, &target.node)?;
                let session = match (users, user, password) {
                    (Some(users), Some(user), Some(password)) => {
                        let m = communicator
                            .string_to_proxy(&users)
                            .map_err(|e| format!("--users: {e}"))?
                            .ok_or("--users is null")?;
                        let m = usersmanager::slice::users_manager::ManagerPrx::unchecked_cast(m);
                        let s = m
                            .login(&user, &password)
                            .await
                            .map_err(|e| format!("login: {e:?}"))?
                            .ok_or("login gave no session")?;
                        floe::Proxy::as_object(&s).to_string()
                    }
                    _ => String::new(),
                };
                for f in files {
                    let overrides = Overrides {
                        title: title.clone(),
                        artist: artist.clone(),
                        album: album.clone(),
                        track: 0,
                    };
                    let song = upload_file(&catalog, &session, &f, overrides)
                        .await
                        .map_err(|e| format!("{}: {e}", f.display()))?;
                    print_song(&song);
                }
                Ok(())
            }
            Command::Search {
                target,
                query,
                limit,
            } => {
                let r = catalog(&communicator, &target.node)?
                    .search(&query, 0, limit)
                    .await
                    .map_err(|e| format!("{e:?}"))?;
                for s in &r.songs {
                    print_song(s);
                }
                println!("{} of {} matches", r.songs.len(), r.total);
                Ok(())
            }
            Command::Info { target, id } => {
                print_song(
                    &catalog(&communicator, &target.node)?
                        .info(&id)
                        .await
                        .map_err(|e| format!("{e:?}"))?,
                );
                Ok(())
            }
            Command::Play { target, id, output } => {
                let c = catalog(&communicator, &target.node)?;
                let n = match output {
                    Some(path) => {
                        let mut f = std::fs::File::create(&path)
                            .map_err(|e| format!("{}: {e}", path.display()))?;
                        download(&c, &id, &mut f).await?
                    }
                    None => download(&c, &id, &mut std::io::stdout().lock()).await?,
                };
                eprintln!("{n} bytes");
                Ok(())
            }
            Command::Status { target } => {
                let s = catalog(&communicator, &target.node)?
                    .status()
                    .await
                    .map_err(|e| e.to_string())?;
                println!("leader {} replication {}", s.leader, s.replication);
                for n in &s.nodes {
                    println!(
                        "node {} {} {} files {} http {}",
                        n.id,
                        if n.up { "up" } else { "down" },
                        if n.leader { "leader" } else { "" },
                        n.files,
                        n.http
                    );
                }
                for f in &s.files {
                    println!(
                        "{} placement [{}] verified [{}]",
                        f.id,
                        f.placement.join(","),
                        f.verified.join(",")
                    );
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    .await;
    communicator.destroy().await;
    result
}

async fn run(cli: Cli, properties: Properties) -> Result<(), String> {
    match cli.command {
        Command::Node => {
            let config = NodeConfig::from_properties(properties)?;
            let http = config.http.clone();
            let node = Node::start(config).await?;
            println!("{}", node.catalog_proxy());
            let gateway = match http {
                Some(addr) => {
                    let listener = dispotify::gateway::bind(&addr)
                        .await
                        .map_err(|e| format!("Dispotify.Http={addr}: {e}"))?;
                    println!(
                        "http://{}/",
                        listener.local_addr().map_err(|e| e.to_string())?
                    );
                    let n = node.clone();
                    Some(tokio::spawn(async move {
                        dispotify::gateway::serve(listener, n).await
                    }))
                }
                None => None,
            };
            interrupted().await;
            if let Some(g) = gateway {
                g.abort();
            }
            node.shutdown().await;
            Ok(())
        }
        Command::Cluster {
            nodes,
            data_dir,
            account,
        } => {
            let (user, password) = account
                .split_once(':')
                .ok_or("--account is USER:PASSWORD")?;
            let cluster =
                Cluster::start(nodes, &properties, &data_dir, Some((user, password))).await?;
            for (node, http) in cluster.nodes() {
                println!("{}  http://{http}/", node.catalog_proxy());
            }
            println!("users {}", cluster.users_proxy());
            interrupted().await;
            cluster.shutdown().await;
            Ok(())
        }
        other => client_command(other, properties).await,
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    let properties = match Properties::from_args(&mut args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("dispotify: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for prefix in ["Dispotify", "UsersManager", "usersmanageradapter"] {
        properties.parse_command_line_options(prefix, &mut args);
    }
    let cli = Cli::parse_from(args);
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=error")),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dispotify: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, properties)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dispotify: error: {e}");
            ExitCode::FAILURE
        }
    }
}
