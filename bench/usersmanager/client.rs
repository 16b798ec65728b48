//! Load generator for `bench/usersmanager.sh`: CLIENTS concurrent clients, each with its own
//! user held by the instance under test, loop `login` + `verifySession` + `refresh` for
//! SECONDS and report calls per second (and each operation's mean latency) as one JSON line.
//!
//! usage: usersmanager-bench MANAGER_PROXY CLIENTS SECONDS PREFIX [MODE]
//!
//! Users `PREFIX-0` .. `PREFIX-(CLIENTS-1)` are created first (password = name). MODE `all`
//! (the default) logs in on every iteration; `session` logs in once per client and then loops
//! `verifySession` + `refresh` on that session, which measures the RPC path without the password
//! hash.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use usersmanager::slice::users_manager::ManagerPrx;

#[derive(Default)]
struct Totals {
    logins: AtomicU64,
    verifies: AtomicU64,
    refreshes: AtomicU64,
    login_ns: AtomicU64,
    verify_ns: AtomicU64,
    refresh_ns: AtomicU64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 && args.len() != 6 {
        bail!("usage: usersmanager-bench MANAGER_PROXY CLIENTS SECONDS PREFIX [all|session]");
    }
    let login_every_time = match args.get(5).map(String::as_str) {
        None | Some("all") => true,
        Some("session") => false,
        Some(other) => bail!("unknown MODE `{other}`: all or session"),
    };
    let clients: usize = args[2].parse().context("CLIENTS")?;
    let seconds: u64 = args[3].parse().context("SECONDS")?;
    let prefix = args[4].clone();
    let communicator = floe::Communicator::with_properties(floe::Properties::new())?;
    let manager = ManagerPrx::unchecked_cast(
        communicator
            .string_to_proxy(&args[1])?
            .context("null Manager proxy")?,
    );
    // One connection per client, as separate client programs would have.
    let managers: Vec<ManagerPrx> = (0..clients)
        .map(|i| ManagerPrx::unchecked_cast(manager.ice_timeout(60_000 + i as i32)))
        .collect();
    let mut creations = Vec::new();
    for (i, m) in managers.iter().enumerate() {
        let m = m.clone();
        let name = format!("{prefix}-{i}");
        creations.push(tokio::spawn(
            async move { m.create_user(&name, &name).await },
        ));
    }
    for c in creations {
        c.await?.context("createUser")?;
    }

    let totals = Arc::new(Totals::default());
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, m) in managers.into_iter().enumerate() {
        let (totals, stop) = (totals.clone(), stop.clone());
        let name = format!("{prefix}-{i}");
        tasks.push(tokio::spawn(async move {
            let mut session = None;
            while !stop.load(Ordering::Relaxed) {
                if login_every_time || session.is_none() {
                    let t = Instant::now();
                    session = Some(m.login(&name, &name).await?.context("null session")?);
                    totals
                        .login_ns
                        .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    totals.logins.fetch_add(1, Ordering::Relaxed);
                }
                let session = session.clone().context("no session")?;
                let t = Instant::now();
                if !m.verify_session(Some(session.clone())).await? {
                    bail!("a fresh session was not verified");
                }
                totals
                    .verify_ns
                    .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                totals.verifies.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                session.refresh().await?;
                totals
                    .refresh_ns
                    .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                totals.refreshes.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await??;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let (l, v, r) = (
        get(&totals.logins),
        get(&totals.verifies),
        get(&totals.refreshes),
    );
    let mean_ms = |ns: &AtomicU64, n: u64| {
        if n == 0 {
            0.0
        } else {
            get(ns) as f64 / n as f64 / 1e6
        }
    };
    println!(
        "{{\"clients\":{clients},\"seconds\":{elapsed:.2},\"calls_per_s\":{:.1},\"logins\":{l},\"verifies\":{v},\"refreshes\":{r},\"login_ms\":{:.3},\"verify_ms\":{:.3},\"refresh_ms\":{:.3}}}",
        (l + v + r) as f64 / elapsed,
        mean_ms(&totals.login_ns, l),
        mean_ms(&totals.verify_ns, v),
        mean_ms(&totals.refresh_ns, r),
    );
    communicator.destroy().await;
    Ok(())
}
