//! `floe-bench-load PROXY [SECONDS]`: the load generator. Measures, against the server at
//! PROXY, ping latency (p50, p99), `add` calls per second with 1, 16 and 64 calls in flight,
//! `send` throughput with 64 KiB and 1 MiB payloads, and oneway calls per second; prints one
//! `name value` line per figure. SECONDS (default 3) is the length of each timed phase.

use std::time::{Duration, Instant};

use floe::Error;
use floe_bench::bench::ServicePrx;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs `calls` in-flight loops of `add` for `secs`, returning calls per second.
async fn calls_per_second(prx: &ServicePrx, in_flight: usize, secs: f64) -> Result<f64, Error> {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..in_flight {
        let prx = prx.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let r = prx.add(t as i32, 1).await?;
                if r != t as i32 + 1 {
                    return Err(Error::marshal(format!("add returned {r}")));
                }
                n += 1;
            }
            Ok::<u64, Error>(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.map_err(|e| Error::marshal(e.to_string()))??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

/// Sends `size`-byte payloads one after the other for `secs`; returns MB/s (10^6 bytes).
async fn megabytes_per_second(prx: &ServicePrx, size: usize, secs: f64) -> Result<f64, Error> {
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    prx.send(&data).await?;
    let start = Instant::now();
    let mut sent = 0usize;
    while start.elapsed().as_secs_f64() < secs {
        prx.send(&data).await?;
        sent += size;
    }
    Ok(sent as f64 / start.elapsed().as_secs_f64() / 1e6)
}

/// Sends oneway pings for about `secs` and waits until the server has dispatched them all;
/// returns calls per second.
async fn oneways_per_second(prx: &ServicePrx, secs: f64) -> Result<f64, Error> {
    let oneway = ServicePrx::unchecked_cast(prx.ice_oneway());
    let before = prx.oneway_count().await?;
    let start = Instant::now();
    let mut sent = 0i32;
    while start.elapsed().as_secs_f64() < secs {
        for _ in 0..1000 {
            oneway.oneway_ping().await?;
        }
        sent += 1000;
    }
    loop {
        let got = prx.oneway_count().await?.wrapping_sub(before);
        if got >= sent {
            break;
        }
        if start.elapsed().as_secs_f64() > secs * 10.0 + 10.0 {
            return Err(Error::marshal(format!(
                "only {got} of {sent} oneway calls arrived"
            )));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(sent as f64 / start.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args: Vec<String> = std::env::args().collect();
    let communicator = floe::initialize(&mut args)?;
    let proxy = args
        .get(1)
        .ok_or_else(|| Error::IllegalArgument("usage: floe-bench-load PROXY [SECONDS]".into()))?;
    let secs: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let base = communicator
        .string_to_proxy(proxy)?
        .ok_or_else(|| Error::IllegalArgument("null proxy".into()))?;
    let prx = ServicePrx::checked_cast(&base)
        .await?
        .ok_or_else(|| Error::IllegalArgument(format!("{proxy} is not a ::Bench::Service")))?;

    // Warm-up: connection, allocator, caches.
    for _ in 0..2000 {
        prx.ping().await?;
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < secs || samples.len() < 1000 {
        let t = Instant::now();
        prx.ping().await?;
        samples.push(t.elapsed());
    }
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("ping_p50_us {:.1}", us(percentile(&samples, 0.50)));
    println!("ping_p99_us {:.1}", us(percentile(&samples, 0.99)));
    for in_flight in [1, 16, 64] {
        let rate = calls_per_second(&prx, in_flight, secs).await?;
        println!("calls_per_s_{in_flight} {rate:.0}");
    }
    for (name, size) in [("64k", 64 * 1024), ("1m", 1024 * 1024)] {
        let rate = megabytes_per_second(&prx, size, secs).await?;
        println!("send_mb_per_s_{name} {rate:.1}");
    }
    let rate = oneways_per_second(&prx, secs).await?;
    println!("oneway_per_s {rate:.0}");
    communicator.destroy().await;
    Ok(())
}
