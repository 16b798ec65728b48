//! `telegraph`: the identity managers and the clients of Telegraph (see `docs/telegraph.md`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use floe::Properties;
use floe_raft::signal::interrupted;
use telegraph::client::{Client, ClientConfig, Event};
use telegraph::cluster::{Cluster, run_broker};
use telegraph::manager::{Manager, ManagerConfig};
use telegraph::store::State;

/// Peer-to-peer messaging on Floe. Settings are Ice properties (`--Telegraph.Managers=PROXY`,
/// `--Ice.Config=FILE`); see docs/telegraph.md.
#[derive(Debug, Parser)]
#[command(name = "telegraph", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct User {
    /// The user's name.
    #[arg(long)]
    name: String,
    /// The user's password (or the environment variable TELEGRAPH_PASSWORD).
    #[arg(long, env = "TELEGRAPH_PASSWORD", hide_env_values = true)]
    password: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs one identity manager (`Telegraph.Raft.*` for its Raft node); prints its proxy.
    Manager,
    /// Runs a broker and N managers on loopback in this process; prints the managers' proxy and
    /// the broker's topic manager.
    Cluster {
        /// How many managers (2k+1 tolerate k failures).
        #[arg(long, default_value_t = 5)]
        managers: usize,
        /// Where manager i keeps its data (`DIR/node-i`).
        #[arg(long, default_value = "telegraph-managers")]
        data_dir: PathBuf,
    },
    /// Runs an IceStorm-compatible broker for presence (`IceStorm.TopicManager.Endpoints`);
    /// prints its topic manager.
    Broker,
    /// Creates an account (and the user's keys, in the client's data directory).
    Register {
        #[command(flatten)]
        user: User,
    },
    /// Sends a message; waits up to --wait seconds for its delivery (it stays queued
    /// otherwise, and is retried by the next command that runs the client).
    Send {
        #[command(flatten)]
        user: User,
        /// Recipient.
        to: String,
        /// Text.
        text: String,
        /// Seconds to wait for the delivery.
        #[arg(long, default_value_t = 5)]
        wait: u64,
    },
    /// Receives for --wait seconds, prints the conversations and marks them read.
    Inbox {
        #[command(flatten)]
        user: User,
        /// Seconds to stay online receiving (and delivering what waits).
        #[arg(long, default_value_t = 2)]
        wait: u64,
    },
    /// Lists the users and their presence.
    Users {
        #[command(flatten)]
        user: User,
    },
    /// Accepts the new keys of a contact whose keys changed.
    Trust {
        #[command(flatten)]
        user: User,
        /// The contact.
        contact: String,
    },
    /// Stays online, printing what arrives (one line per event) and marking it read.
    Listen {
        #[command(flatten)]
        user: User,
    },
    /// The interactive terminal client.
    Chat {
        #[command(flatten)]
        user: User,
    },
}

fn state_word(s: State) -> &'static str {
    match s {
        State::Pending => "pending",
        State::Delivered => "delivered",
        State::Read => "read",
        State::Unread => "unread",
    }
}

async fn start_client(
    properties: Properties,
    user: &User,
    register: bool,
) -> Result<Client, String> {
    let config = ClientConfig::from_properties(properties, &user.name, &user.password)
        .map_err(|e| e.to_string())?;
    Client::start(config, register)
        .await
        .map_err(|e| e.to_string())
}

async fn run(cli: Cli, properties: Properties) -> Result<(), String> {
    match cli.command {
        Command::Manager => {
            let manager = Manager::start(ManagerConfig::from_properties(properties)?).await?;
            println!("{}", manager.proxy());
            interrupted().await;
            manager.shutdown().await;
        }
        Command::Cluster { managers, data_dir } => {
            let cluster = Cluster::start(managers, &properties, &data_dir).await?;
            println!("{}", cluster.managers_proxy());
            println!("{}", cluster.topic_manager());
            interrupted().await;
            cluster.shutdown().await;
        }
        Command::Broker => run_broker(properties, interrupted()).await?,
        Command::Register { user } => {
            let client = start_client(properties, &user, true).await?;
            println!("registered {}", user.name);
            client.shutdown().await;
        }
        Command::Send {
            user,
            to,
            text,
            wait,
        } => {
            let client = start_client(properties, &user, false).await?;
            let mut events = client.events();
            let sent = client.send(&to, &text).await;
            let result = match sent {
                Err(e) => Err(e.to_string()),
                Ok(m) => {
                    let deadline = Instant::now() + Duration::from_secs(wait);
                    let mut state = m.state;
                    while state == State::Pending && Instant::now() < deadline {
                        match tokio::time::timeout(deadline - Instant::now(), events.recv()).await {
                            Ok(Ok(Event::Updated(u))) if u.id == m.id => state = u.state,
                            Ok(Ok(_)) => {}
                            _ => break,
                        }
                    }
                    println!(
                        "{} {}",
                        m.id,
                        if state == State::Pending {
                            "queued"
                        } else {
                            state_word(state)
                        }
                    );
                    Ok(())
                }
            };
            client.shutdown().await;
            result?;
        }
        Command::Inbox { user, wait } => {
            let client = start_client(properties, &user, false).await?;
            client.retry_now();
            tokio::time::sleep(Duration::from_secs(wait)).await;
            for peer in client.store().peers().map_err(|e| e.to_string())? {
                println!("== {peer}");
                for m in client
                    .store()
                    .conversation(&peer)
                    .map_err(|e| e.to_string())?
                {
                    let who = if m.outgoing {
                        user.name.as_str()
                    } else {
                        peer.as_str()
                    };
                    println!("#{} {who}: {} [{}]", m.counter, m.text, state_word(m.state));
                }
                client.mark_read(&peer).await.map_err(|e| e.to_string())?;
            }
            // Give the read receipts a moment to leave.
            let deadline = Instant::now() + Duration::from_secs(2);
            while client.outbox_len() > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            client.shutdown().await;
        }
        Command::Users { user } => {
            let client = start_client(properties, &user, false).await?;
            let users = client.users().await.map_err(|e| e.to_string());
            client.shutdown().await;
            for u in users? {
                println!("{} {}", u.name, if u.online { "online" } else { "offline" });
            }
        }
        Command::Trust { user, contact } => {
            let client = start_client(properties, &user, false).await?;
            let r = client.trust(&contact).map_err(|e| e.to_string());
            client.shutdown().await;
            println!(
                "{}",
                if r? {
                    format!("{contact}'s new keys are trusted")
                } else {
                    format!("{contact}'s keys did not change")
                }
            );
        }
        Command::Listen { user } => {
            let client = start_client(properties, &user, false).await?;
            let mut events = client.events();
            println!("listening as {}", user.name);
            loop {
                tokio::select! {
                    _ = interrupted() => break,
                    e = events.recv() => match e {
                        Ok(Event::Received(m)) => {
                            println!("message {} from {} #{}: {}", m.id, m.peer, m.counter, m.text);
                            let _ = client.mark_read(&m.peer).await;
                        }
                        Ok(Event::Updated(m)) => println!("{} {} {}", state_word(m.state), m.id, m.peer),
                        Ok(Event::Presence(u)) => println!("presence {} {}", u.name, if u.online { "online" } else { "offline" }),
                        Ok(Event::KeyChanged(n)) => println!("keys changed {n}"),
                        Err(_) => {}
                    },
                }
            }
            client.shutdown().await;
        }
        Command::Chat { user } => {
            let client = start_client(properties, &user, false).await?;
            let r = telegraph::chat::run(client.clone())
                .await
                .map_err(|e| e.to_string());
            client.shutdown().await;
            r?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    let properties = match Properties::from_args(&mut args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("telegraph: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for prefix in ["Telegraph", "IceStorm"] {
        properties.parse_command_line_options(prefix, &mut args);
    }
    let cli = Cli::parse_from(args);
    // The terminal client draws on the terminal: its log goes to a file, if anywhere.
    let log_to_file = matches!(cli.command, Command::Chat { .. });
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=error"));
    if log_to_file {
        let path = properties.get_property_with_default("Telegraph.Chat.Log", "telegraph-chat.log");
        if let Ok(file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            tracing_subscriber::fmt()
                .with_writer(std::sync::Mutex::new(file))
                .with_ansi(false)
                .with_env_filter(filter)
                .init();
        }
    } else {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .with_env_filter(filter)
            .init();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("telegraph: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, properties)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("telegraph: error: {e}");
            ExitCode::FAILURE
        }
    }
}
