//! `raft-bench-load`: the load generator of `bench/raft.sh`, the same code path for floe-raft-kv
//! and etcd.
//!
//! - `raft-bench-load leader floe|etcd ENDPOINT...`: waits (up to 30 s) until one node reports
//!   itself leader, then prints `leader=<node id> endpoint=<its position in the list, from 0>
//!   term=<term>`.
//! - `raft-bench-load run floe|etcd CLIENTS SECONDS ENDPOINT...`: finds the leader the same
//!   way, then runs CLIENTS concurrent clients against it, each on a loopback connection of its
//!   own, each putting 100-byte values to keys of its own, one put after the other (one in
//!   flight per client): `WARMUP_MS` (default 1000) ms unmeasured, then SECONDS measured. Prints
//!   one line of `name=value` fields: writes/s, latency p50/p99/max in µs over the puts started
//!   in the measured window, the puts of the whole run, the load generator's CPU time per put,
//!   errors, and the leader (its position in the list, its id) and term before and after the
//!   run (a leader change shows there).
//!
//! A floe ENDPOINT is a `RaftKv::Store` proxy as `floe-raft-kv node` prints it (`ready
//! <proxy>`); the node's `FloeRaft::Node` object (identity `raft`, same endpoints) answers
//! `status()`. Each Floe client has a communicator of its own (one connection each), a random
//! client id and serials 1, 2, 3... with `floor = serial`. An etcd ENDPOINT is a client URL
//! (`http://127.0.0.1:2379`); the maintenance `Status` call says which member leads; each etcd
//! client is an `etcd_client::Client` of its own connected to the leader's URL only (one HTTP/2
//! connection each).

use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions};
use floe::{Communicator, ObjectPrx, Properties};
use floe_raft::kv::slice::raft_kv::StorePrx;
use floe_raft::slice::floe_raft::NodePrx;

/// Bytes of every value put.
const VALUE_SIZE: usize = 100;
/// Per-call limit on both sides, so that a stuck call shows as an error instead of a hang.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed put, so that an unavailable cluster is not hammered.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

#[derive(Clone, Copy, PartialEq, Eq)]
enum System {
    Floe,
    Etcd,
}

/// Who leads, as one round of status calls saw it.
#[derive(Debug, Clone, Copy)]
struct Leader {
    /// The leader's node id (etcd: its member id).
    id: u64,
    /// Its position in the endpoint list.
    index: usize,
    term: u64,
}

fn floe_proxy(communicator: &Communicator, text: &str) -> Result<ObjectPrx, String> {
    communicator
        .string_to_proxy(text)
        .map_err(|e| format!("`{text}`: {e}"))?
        .ok_or_else(|| format!("`{text}` is a null proxy"))
}

/// One round of `status()` on every floe node: the node that says it is leader, with the
/// highest term if several do.
async fn floe_leader(
    communicator: &Communicator,
    endpoints: &[String],
) -> Result<Option<Leader>, String> {
    let mut best: Option<Leader> = None;
    for (index, text) in endpoints.iter().enumerate() {
        let store = floe_proxy(communicator, text)?;
        let node = NodePrx::unchecked_cast(
            store
                .ice_identity("raft".parse().map_err(|e: floe::Error| e.to_string())?)
                .ice_invocation_timeout(2000),
        );
        let Ok(s) = node.status().await else { continue };
        if s.role == "Leader" && best.is_none_or(|b| (s.term as u64) > b.term) {
            best = Some(Leader {
                id: s.id as u64,
                index,
                term: s.term as u64,
            });
        }
    }
    Ok(best)
}

fn etcd_options() -> ConnectOptions {
    ConnectOptions::new()
        .with_timeout(CALL_TIMEOUT)
        .with_connect_timeout(Duration::from_secs(2))
}

/// One round of maintenance `Status` on every etcd member: the member whose id is the leader
/// id it reports.
async fn etcd_leader(endpoints: &[String]) -> Result<Option<Leader>, String> {
    let mut best: Option<Leader> = None;
    for (index, url) in endpoints.iter().enumerate() {
        let Ok(mut client) = Client::connect([url.as_str()], Some(etcd_options())).await else {
            continue;
        };
        let Ok(s) = client.status().await else {
            continue;
        };
        let member = s.header().map_or(0, |h| h.member_id());
        if member != 0 && s.leader() == member && best.is_none_or(|b| s.raft_term() > b.term) {
            best = Some(Leader {
                id: member,
                index,
                term: s.raft_term(),
            });
        }
    }
    Ok(best)
}

/// Polls until some node leads, for at most `limit`.
async fn wait_leader(
    system: System,
    endpoints: &[String],
    limit: Duration,
) -> Result<Leader, String> {
    let communicator =
        Communicator::with_properties(Properties::new()).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + limit;
    let found = loop {
        let found = match system {
            System::Floe => floe_leader(&communicator, endpoints).await?,
            System::Etcd => etcd_leader(endpoints).await?,
        };
        if found.is_some() || Instant::now() >= deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    communicator.destroy().await;
    found.ok_or_else(|| {
        format!(
            "no leader among {} nodes within {} s",
            endpoints.len(),
            limit.as_secs()
        )
    })
}

/// What one client measured.
#[derive(Default)]
struct Tally {
    /// Latencies (µs) of the successful puts started in the measured window.
    latencies: Vec<u32>,
    /// When the last of those ended.
    last_end: Option<Instant>,
    /// Puts sent over the whole run (warm-up included, errors included).
    total: u64,
    errors: u64,
    first_errors: Vec<String>,
}

impl Tally {
    fn record(&mut self, started: Instant, measure_from: Instant, result: Result<(), String>) {
        let ended = Instant::now();
        self.total += 1;
        match result {
            Ok(()) => {
                if started >= measure_from {
                    let us = ended
                        .duration_since(started)
                        .as_micros()
                        .min(u32::MAX as u128) as u32;
                    self.latencies.push(us);
                    self.last_end = Some(self.last_end.map_or(ended, |e| e.max(ended)));
                }
            }
            Err(e) => {
                self.errors += 1;
                if self.first_errors.len() < 3 {
                    let at = started.saturating_duration_since(measure_from).as_millis();
                    self.first_errors.push(format!(
                        "{e} (put started {at} ms into the measured window)"
                    ));
                }
            }
        }
    }
}

/// The value every put writes: 100 printable bytes (a Slice string on the Floe side).
fn value() -> String {
    (0..VALUE_SIZE)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}

async fn floe_client(
    proxy: String,
    measure_from: Instant,
    deadline: Instant,
) -> Result<Tally, String> {
    // A communicator of its own: one connection per client, as each etcd client has.
    let communicator =
        Communicator::with_properties(Properties::new()).map_err(|e| e.to_string())?;
    let store = StorePrx::unchecked_cast(
        floe_proxy(&communicator, &proxy)?.ice_invocation_timeout(CALL_TIMEOUT.as_millis() as i32),
    );
    let client = ((rand::random::<u64>() >> 1) | 1) as i64;
    let value = value();
    let mut tally = Tally::default();
    let mut serial = 0i64;
    while Instant::now() < deadline {
        serial += 1;
        let key = format!("f{client:016x}-{serial}");
        let started = Instant::now();
        let result = store
            .put(&key, &value, client, serial, serial)
            .await
            .map_err(|e| format!("{e:?}"));
        let failed = result.is_err();
        tally.record(started, measure_from, result);
        if failed {
            tokio::time::sleep(ERROR_PAUSE).await;
        }
    }
    communicator.destroy().await;
    Ok(tally)
}

async fn etcd_client(
    url: String,
    measure_from: Instant,
    deadline: Instant,
) -> Result<Tally, String> {
    let mut client = Client::connect([url.as_str()], Some(etcd_options()))
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let id = rand::random::<u64>() >> 1;
    let value = value().into_bytes();
    let mut tally = Tally::default();
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        let key = format!("e{id:016x}-{n}");
        let started = Instant::now();
        let result = client
            .put(key, value.clone(), None)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        let failed = result.is_err();
        tally.record(started, measure_from, result);
        if failed {
            tokio::time::sleep(ERROR_PAUSE).await;
        }
    }
    Ok(tally)
}

/// Clock ticks per second of /proc's CPU times (Linux's USER_HZ, 100 on every architecture
/// this runs on).
const CLOCK_TICKS: u64 = 100;

/// User + system CPU time of this process so far, in clock ticks (0 where /proc is missing).
fn own_cpu_ticks() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    // Fields after the command name (which is in parentheses and may hold spaces): utime and
    // stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// The value at rank `p` (0 to 1) of sorted `v` (nearest rank).
fn percentile(v: &[u32], p: f64) -> u32 {
    if v.is_empty() {
        return 0;
    }
    let rank = ((v.len() as f64) * p).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

async fn run(
    system: System,
    clients: usize,
    secs: f64,
    endpoints: &[String],
) -> Result<(), String> {
    let warmup = Duration::from_millis(
        std::env::var("WARMUP_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1000),
    );
    let before = wait_leader(system, endpoints, Duration::from_secs(30)).await?;
    let cpu_before = own_cpu_ticks();
    let target = endpoints[before.index].clone();
    let start = Instant::now();
    let measure_from = start + warmup;
    let deadline = measure_from + Duration::from_secs_f64(secs);
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            match system {
                System::Floe => floe_client(target, measure_from, deadline).await,
                System::Etcd => etcd_client(target, measure_from, deadline).await,
            }
        }));
    }
    let mut all = Tally::default();
    for t in tasks {
        let tally = t
            .await
            .map_err(|e| format!("a client task failed: {e}"))??;
        all.latencies.extend(tally.latencies);
        all.last_end = match (all.last_end, tally.last_end) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        all.total += tally.total;
        all.errors += tally.errors;
        for e in tally.first_errors {
            if all.first_errors.len() < 5 {
                all.first_errors.push(e);
            }
        }
    }
    let cpu_ticks = own_cpu_ticks().saturating_sub(cpu_before);
    let after = wait_leader(system, endpoints, Duration::from_secs(30)).await?;
    for e in &all.first_errors {
        eprintln!("raft-bench-load: put failed: {e}");
    }
    let window = all
        .last_end
        .map_or(0.0, |e| e.duration_since(measure_from).as_secs_f64());
    let measured = all.latencies.len();
    all.latencies.sort_unstable();
    let mean = if measured == 0 {
        0.0
    } else {
        all.latencies.iter().map(|&u| u as f64).sum::<f64>() / measured as f64
    };
    println!(
        "system={} clients={clients} seconds={secs} writes_per_s={:.0} p50_us={} p99_us={} max_us={} mean_us={:.0} puts={measured} puts_total={} client_cpu_us_per_write={:.1} errors={} leader_index={} leader_before={} term_before={} leader_after={} term_after={}",
        if system == System::Floe {
            "floe"
        } else {
            "etcd"
        },
        if window > 0.0 {
            measured as f64 / window
        } else {
            0.0
        },
        percentile(&all.latencies, 0.50),
        percentile(&all.latencies, 0.99),
        all.latencies.last().copied().unwrap_or(0),
        mean,
        all.total,
        if all.total == 0 {
            0.0
        } else {
            cpu_ticks as f64 * 1e6 / CLOCK_TICKS as f64 / all.total as f64
        },
        all.errors,
        before.index,
        before.id,
        before.term,
        after.id,
        after.term,
    );
    Ok(())
}

fn usage() -> String {
    "usage: raft-bench-load leader floe|etcd ENDPOINT...\n       raft-bench-load run floe|etcd CLIENTS SECONDS ENDPOINT...".into()
}

async fn main_inner(args: Vec<String>) -> Result<(), String> {
    let system = |s: Option<&String>| match s.map(String::as_str) {
        Some("floe") => Ok(System::Floe),
        Some("etcd") => Ok(System::Etcd),
        _ => Err(usage()),
    };
    match args.get(1).map(String::as_str) {
        Some("leader") if args.len() > 3 => {
            let sys = system(args.get(2))?;
            let l = wait_leader(sys, &args[3..], Duration::from_secs(30)).await?;
            println!("leader={} endpoint={} term={}", l.id, l.index, l.term);
            Ok(())
        }
        Some("run") if args.len() > 5 => {
            let sys = system(args.get(2))?;
            let clients: usize = args[3]
                .parse()
                .map_err(|_| format!("CLIENTS `{}` is not a number\n{}", args[3], usage()))?;
            let secs: f64 = args[4]
                .parse()
                .map_err(|_| format!("SECONDS `{}` is not a number\n{}", args[4], usage()))?;
            run(sys, clients.max(1), secs, &args[5..]).await
        }
        _ => Err(usage()),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match main_inner(std::env::args().collect()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raft-bench-load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
