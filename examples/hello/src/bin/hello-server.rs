//! `hello-server --Ice.Config=config.server`: serves `hello` on the adapter `Hello` until a client
//! calls `shutdown`.

use std::sync::Arc;

use floe::Identity;
use hello_example::{HelloI, demo::HelloDispatcher};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().collect();
    let communicator = floe::initialize(&mut args)?;
    let adapter = communicator.create_object_adapter("Hello").await?;
    adapter.add(
        Arc::new(HelloDispatcher(Arc::new(HelloI))),
        Identity::new("hello", ""),
    )?;
    adapter.activate()?;
    println!(
        "ready: {}",
        adapter
            .endpoints()
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(":")
    );
    communicator.wait_for_shutdown().await;
    communicator.destroy().await;
    Ok(())
}
