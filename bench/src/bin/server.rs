//! `floe-bench-server [--Ice.X=...] [--IceSSL.X=...] [--Bench.Endpoints=...]`: serves `bench` (a
//! `::Bench::Service`) on `tcp -h 127.0.0.1 -p 0` (or `Bench.Endpoints`, e.g. `ssl -h 127.0.0.1
//! -p 0`) and prints `PROXY <proxy>` once ready; stops on `shutdown()` or when its standard
//! input closes.

use std::sync::Arc;

use floe::Identity;
use floe_bench::{BenchI, bench::ServiceDispatcher};

#[tokio::main]
async fn main() -> Result<(), floe::Error> {
    let mut args: Vec<String> = std::env::args().collect();
    let communicator = floe::initialize(&mut args)?;
    let props = communicator.properties();
    props.parse_command_line_options("Bench", &mut args);
    if props.get_property("Bench.Endpoints").is_empty() {
        props.set_property("Bench.Endpoints", "tcp -h 127.0.0.1 -p 0");
    }
    let adapter = communicator.create_object_adapter("Bench").await?;
    let prx = adapter.add(
        Arc::new(ServiceDispatcher(Arc::new(BenchI::default()))),
        Identity::new("bench", ""),
    )?;
    adapter.activate()?;
    println!("PROXY {prx}");
    let watcher = communicator.clone();
    std::thread::spawn(move || {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
        watcher.shutdown();
    });
    communicator.wait_for_shutdown().await;
    communicator.destroy().await;
    Ok(())
}
