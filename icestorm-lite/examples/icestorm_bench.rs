//! Benchmark client for IceStorm brokers (icestorm-lite or ZeroC's IceStorm): one Floe process
//! that publishes `Demo::Clock::tick` events and receives them on N oneway subscribers.
//!
//! ```text
//! icestorm_bench TOPIC_MANAGER_PROXY SUBSCRIBERS EVENTS LATENCY_SAMPLES [IN_FLIGHT]
//! ```
//!
//! Prints one line: `events_per_s=... deliveries_per_s=... publish_per_s=... p50_us=...
//! p99_us=...`.
//! - throughput: EVENTS published oneway as fast as the publisher can, with up to IN_FLIGHT
//!   (default 1) oneway calls not yet written at a time; the time runs until every subscriber has
//!   every event; events/s = EVENTS / time; publish/s = EVENTS / time until the last was written
//!   (when it equals events/s, the publisher, not the broker, set the pace).
//! - latency: LATENCY_SAMPLES events published twoway one at a time (the next once every
//!   subscriber has the previous one); latency = receipt time - send time (same clock).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use floe::codegen::{Current, Error};
use futures_util::StreamExt;
use icestorm_lite::slice::ice_storm::TopicManagerPrx;
use parking_lot::Mutex;
use tokio::sync::Notify;

mod clock {
    include!(concat!(env!("OUT_DIR"), "/Clock.rs"));
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

#[derive(Default)]
struct Sub {
    count: AtomicUsize,
    latencies: Mutex<Vec<i64>>,
    record: std::sync::atomic::AtomicBool,
    changed: Notify,
}

impl clock::demo::Clock for Sub {
    async fn tick(&self, _source: String, _seq: i32, sent: i64, _c: &Current) -> Result<(), Error> {
        if self.record.load(Ordering::Relaxed) {
            self.latencies.lock().push(now_micros() - sent);
        }
        self.count.fetch_add(1, Ordering::Release);
        self.changed.notify_waiters();
        Ok(())
    }
}

async fn wait_all(subs: &[Arc<Sub>], n: usize, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    for s in subs {
        loop {
            let notified = s.changed.notified();
            if s.count.load(Ordering::Acquire) >= n {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                anyhow::bail!(
                    "a subscriber received {} of {n} events",
                    s.count.load(Ordering::Acquire)
                );
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(50)), notified).await;
        }
    }
    Ok(())
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() == 5 || args.len() == 6,
        "usage: icestorm_bench TOPIC_MANAGER_PROXY SUBSCRIBERS EVENTS LATENCY_SAMPLES [IN_FLIGHT]"
    );
    let (n_subs, events, samples): (usize, usize, usize) =
        (args[2].parse()?, args[3].parse()?, args[4].parse()?);
    let in_flight: usize = match args.get(5) {
        Some(w) => w.parse()?,
        None => 1,
    };
    anyhow::ensure!(in_flight >= 1, "IN_FLIGHT must be at least 1");
    let props = floe::Properties::new();
    props.set_property("Subs.ThreadPool.Serialize", "1");
    let comm = floe::Communicator::with_properties(props)?;
    let adapter = comm
        .create_object_adapter_with_endpoints("Subs", "tcp -h 127.0.0.1 -p 0")
        .await?;
    adapter.activate()?;
    let tm = TopicManagerPrx::unchecked_cast(
        comm.string_to_proxy(&args[1])?
            .ok_or_else(|| anyhow::anyhow!("null proxy"))?,
    );
    let name = format!("bench-{}-{}", std::process::id(), now_micros());
    let topic = tm
        .create(&name)
        .await
        .map_err(|e| anyhow::anyhow!("create: {e}"))?
        .ok_or_else(|| anyhow::anyhow!("null topic"))?;
    let mut subs = Vec::new();
    for i in 0..n_subs {
        let s = Arc::new(Sub::default());
        let prx = adapter.add(
            Arc::new(clock::demo::ClockDispatcher(s.clone())),
            floe::Identity::new(format!("sub{i}"), "bench"),
        )?;
        topic
            .subscribe_and_get_publisher(&HashMap::new(), Some(prx.ice_oneway()))
            .await
            .map_err(|e| anyhow::anyhow!("subscribe: {e}"))?;
        subs.push(s);
    }
    let publisher = topic
        .get_publisher()
        .await?
        .ok_or_else(|| anyhow::anyhow!("null publisher"))?;
    let oneway = clock::demo::ClockPrx::unchecked_cast(publisher.ice_oneway());
    let twoway = clock::demo::ClockPrx::unchecked_cast(publisher.ice_twoway());

    // Warm-up: connections opened everywhere.
    twoway.tick("warm", 0, now_micros()).await?;
    wait_all(&subs, 1, Duration::from_secs(10)).await?;

    let started = Instant::now();
    let mut sends = futures_util::stream::iter(0..events)
        .map(|i| oneway.tick("bench", i as i32, now_micros()))
        .buffered(in_flight);
    while let Some(sent) = sends.next().await {
        sent?;
    }
    drop(sends);
    let published = started.elapsed().as_secs_f64();
    wait_all(&subs, 1 + events, Duration::from_secs(300)).await?;
    let elapsed = started.elapsed().as_secs_f64();

    for s in &subs {
        s.record.store(true, Ordering::Relaxed);
    }
    for i in 0..samples {
        twoway.tick("latency", i as i32, now_micros()).await?;
        wait_all(&subs, 1 + events + i + 1, Duration::from_secs(10)).await?;
    }
    let mut lat: Vec<i64> = subs
        .iter()
        .flat_map(|s| s.latencies.lock().clone())
        .collect();
    lat.sort_unstable();
    println!(
        "events_per_s={:.0} deliveries_per_s={:.0} publish_per_s={:.0} p50_us={} p99_us={}",
        events as f64 / elapsed,
        (events * n_subs) as f64 / elapsed,
        events as f64 / published,
        percentile(&lat, 0.50),
        percentile(&lat, 0.99)
    );
    let _ = topic.destroy().await;
    comm.destroy().await;
    Ok(())
}
