//! `icestorm-lite`: runs an IceStorm-compatible broker.
//!
//! ```text
//! icestorm-lite --Ice.Config=config.icestorm [--IceStorm.Key=value ...] [--Ice.Key=value ...]
//! ```

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;

/// An IceStorm 3.7 compatible event broker. It reads the same properties as ZeroC's IceStorm
/// service (IceStorm.TopicManager.Endpoints, IceStorm.Publish.Endpoints, IceStorm.LMDB.Path,
/// IceStorm.Transient, IceStorm.Send.Timeout, IceStorm.Discard.Interval, IceStorm.Trace.*, ...),
/// from the files named by --Ice.Config= (or ICE_CONFIG) and from --IceStorm.*/--Ice.* options.
#[derive(Debug, Parser)]
#[command(name = "icestorm-lite", version)]
struct Args {
    /// Property options: --Ice.Config=FILE, --IceStorm.Key=value, --Ice.Key=value.
    #[arg(
        allow_hyphen_values = true,
        trailing_var_arg = true,
        value_name = "PROPERTIES"
    )]
    properties: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut argv: Vec<String> = std::iter::once("icestorm-lite".to_string())
        .chain(args.properties)
        .collect();
    let props = floe::Properties::from_args(&mut argv).context("reading the configuration")?;
    props.parse_command_line_options("IceStorm", &mut argv);
    if let Some(unknown) = argv.get(1) {
        anyhow::bail!(
            "unknown option `{unknown}` (options are --Ice.Config=FILE, --IceStorm.Key=value and --Ice.Key=value)"
        );
    }
    let level = |key: &str| props.get_property_as_int(key);
    let verbosity = |n: i32| match n {
        i32::MIN..=0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = format!(
        "warn,icestorm::topic_manager={},icestorm::topic={},icestorm::subscriber={},floe::network={},floe::protocol={}",
        verbosity(level("IceStorm.Trace.TopicManager").max(1)),
        verbosity(level("IceStorm.Trace.Topic")),
        verbosity(level("IceStorm.Trace.Subscriber")),
        verbosity(level("Ice.Trace.Network")),
        verbosity(level("Ice.Trace.Protocol")),
    );
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let threads = match props.get_property("IceStorm.Threads").trim() {
        "" => 1,
        v => match v.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => {
                anyhow::bail!("IceStorm.Threads must be a number of threads (1 or more), not `{v}`")
            }
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async {
                    match term.as_mut() {
                        Some(t) => { t.recv().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => {}
            }
        };
        icestorm_lite::run(props, Some(PathBuf::from("IceStorm")), shutdown)
            .await
            .context("icestorm-lite")
    })
}
