//! Finding the managers without a configured proxy: a UDP lookup, as the seed's fallback scan.
//!
//! A manager with `Telegraph.Discovery.Endpoints` (a `udp` endpoint) serves the `discovery`
//! object there. A client sends `lookup(reply)` as a datagram to every port of
//! `Telegraph.Discovery.Ports` on every host of `Telegraph.Discovery.Hosts`, and every manager
//! reached calls the client's reply object back with its proxy; the client then talks to all
//! the managers that answered within `Telegraph.Discovery.Timeout` through one proxy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use floe::codegen::Current;
use floe::{Communicator, ObjectAdapter, Proxy};
use parking_lot::Mutex;
use tracing::{debug, info};

use crate::slice::telegraph::{self as api, DiscoveryPrx, DiscoveryReplyPrx, ManagerPrx};

/// The identity of the managers' discovery object.
pub const DISCOVERY_IDENTITY: &str = "discovery";
/// Most lookups a manager answers per second (a lookup makes it call back whoever the
/// datagram names, so answers are rate-limited).
pub const ANSWERS_PER_SECOND: u32 = 50;

/// Serves the discovery object of a manager whose proxy is `manager`.
pub(crate) struct DiscoveryI {
    pub(crate) manager: ManagerPrx,
    pub(crate) budget: Mutex<(Instant, u32)>,
}

impl api::Discovery for DiscoveryI {
    async fn lookup(
        &self,
        reply: Option<DiscoveryReplyPrx>,
        _: &Current,
    ) -> Result<(), floe::Error> {
        let Some(reply) = reply else { return Ok(()) };
        {
            let mut budget = self.budget.lock();
            if budget.0.elapsed() >= Duration::from_secs(1) {
                *budget = (Instant::now(), 0);
            }
            if budget.1 >= ANSWERS_PER_SECOND {
                return Ok(());
            }
            budget.1 += 1;
        }
        let reply = DiscoveryReplyPrx::unchecked_cast(reply.ice_invocation_timeout(2_000));
        if let Err(e) = reply.found(Some(self.manager.clone())).await {
            debug!(target: "telegraph::discovery", error = %e, "lookup not answered");
        }
        Ok(())
    }
}

struct ReplyI {
    found: Arc<Mutex<Vec<ManagerPrx>>>,
}

impl api::DiscoveryReply for ReplyI {
    async fn found(&self, manager: Option<ManagerPrx>, _: &Current) -> Result<(), floe::Error> {
        if let Some(m) = manager {
            let mut found = self.found.lock();
            if found.len() < 64 && !found.contains(&m) {
                found.push(m);
            }
        }
        Ok(())
    }
}

/// Expands `a.b.c.d-e` host ranges and `p-q` port ranges (at most 1,024 targets).
pub fn targets(hosts: &str, ports: &str) -> Result<Vec<(String, u16)>, String> {
    let mut host_list = Vec::new();
    for h in hosts.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        match h
            .rsplit_once('.')
            .and_then(|(prefix, last)| last.split_once('-').map(|(a, b)| (prefix, a, b)))
        {
            Some((prefix, a, b)) => {
                let (a, b) = (
                    a.parse::<u8>().map_err(|_| format!("bad host range {h}"))?,
                    b.parse::<u8>().map_err(|_| format!("bad host range {h}"))?,
                );
                host_list.extend((a..=b).map(|i| format!("{prefix}.{i}")));
            }
            None => host_list.push(h.to_string()),
        }
    }
    let mut port_list = Vec::new();
    for p in ports.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = p.split_once('-').unwrap_or((p, p));
        let (a, b) = (
            a.parse::<u16>().map_err(|_| format!("bad port {p}"))?,
            b.parse::<u16>().map_err(|_| format!("bad port {p}"))?,
        );
        port_list.extend(a..=b);
    }
    let out: Vec<(String, u16)> = host_list
        .iter()
        .flat_map(|h| port_list.iter().map(move |p| (h.clone(), *p)))
        .collect();
    if out.len() > 1024 {
        return Err(format!("{} discovery targets (at most 1024)", out.len()));
    }
    Ok(out)
}

/// Looks for managers from `adapter` (which must be active and reachable by them): returns
/// one proxy with the endpoints of every manager that answered.
pub async fn find_managers(
    communicator: &Communicator,
    adapter: &ObjectAdapter,
    targets: &[(String, u16)],
    wait: Duration,
) -> Result<Option<ManagerPrx>, floe::Error> {
    let found = Arc::new(Mutex::new(Vec::new()));
    let reply_id: floe::Identity =
        format!("discovery-reply/{:032x}", rand::random::<u128>()).parse()?;
    let reply = adapter.add(
        Arc::new(api::DiscoveryReplyDispatcher(Arc::new(ReplyI {
            found: found.clone(),
        }))),
        reply_id.clone(),
    )?;
    let reply = DiscoveryReplyPrx::unchecked_cast(reply);
    for (host, port) in targets {
        let Ok(Some(prx)) = communicator
            .string_to_proxy(&format!("{DISCOVERY_IDENTITY} -d:udp -h {host} -p {port}"))
        else {
            continue;
        };
        let _ = DiscoveryPrx::unchecked_cast(prx.ice_datagram())
            .lookup(Some(reply.clone()))
            .await;
    }
    tokio::time::sleep(wait).await;
    let _ = adapter.remove(&reply_id);
    let found = found.lock().clone();
    if found.is_empty() {
        return Ok(None);
    }
    let endpoints: Vec<_> = found
        .iter()
        .flat_map(|m| m.ice_get_endpoints().to_vec())
        .collect();
    info!(target: "telegraph::discovery", managers = found.len(), "managers found by UDP lookup");
    Ok(Some(ManagerPrx::unchecked_cast(
        found[0].as_object().ice_endpoints(endpoints),
    )))
}
