//! `usersmanager cluster --instances N`: an icestorm-lite broker and N instances in one process,
//! all on loopback, for trying the service; and the walkthrough `usersmanager demo` runs
//! against such a cluster.

use std::path::Path;

use floe::{Communicator, ObjectPrx, Properties};
use tracing::info;

use crate::config::{self, Config};
use crate::slice::users_manager::ManagerPrx;
use crate::{Service, ServiceError};

/// A broker and the instances that use it.
#[derive(Debug)]
pub struct Cluster {
    broker: icestorm_lite::Broker,
    instances: Vec<Service>,
}

impl Cluster {
    /// Starts an in-memory broker on `tcp -h 127.0.0.1 -p 0` and `n` instances on loopback
    /// endpoints, instance `i` (from 1) keeping its users in `data_dir/instance-i`. Other
    /// settings (waits, lifetimes, tracing) come from `properties`.
    pub async fn start(
        n: usize,
        properties: &Properties,
        data_dir: &Path,
    ) -> Result<Cluster, ServiceError> {
        if n == 0 {
            return Err(ServiceError::Config(
                "a cluster needs at least one instance".into(),
            ));
        }
        let broker_props = Properties::new();
        broker_props.set_property("IceStorm.Transient", "1");
        broker_props.set_property("IceStorm.CheckClassGraphs", "1");
        let broker = icestorm_lite::Broker::start(broker_props)
            .await
            .map_err(|e| ServiceError::Broker(format!("icestorm-lite: {e}")))?;
        info!(target: "usersmanager", topic_manager = %broker.topic_manager(), "cluster broker started");
        let mut cluster = Cluster {
            broker,
            instances: Vec::new(),
        };
        for i in 1..=n {
            let props = properties.deep_clone();
            props.set_property(
                &format!("{}.Endpoints", config::ADAPTER_NAME),
                "tcp -h 127.0.0.1 -p 0",
            );
            props.set_property(
                config::DATA_DIR_PROPERTY,
                &data_dir.join(format!("instance-{i}")).display().to_string(),
            );
            props.set_property(
                config::TOPIC_MANAGER_PROPERTY,
                &cluster.broker.topic_manager().to_string(),
            );
            let started = match Config::from_properties(props) {
                Ok(c) => Service::start(c).await,
                Err(e) => Err(e),
            };
            match started {
                Ok(s) => cluster.instances.push(s),
                Err(e) => {
                    cluster.shutdown().await;
                    return Err(e);
                }
            }
        }
        Ok(cluster)
    }

    /// The Manager proxies, in instance order.
    pub fn managers(&self) -> Vec<ObjectPrx> {
        self.instances
            .iter()
            .map(|s| s.manager_proxy().clone())
            .collect()
    }

    /// The broker's topic manager.
    pub fn topic_manager(&self) -> ObjectPrx {
        self.broker.topic_manager()
    }

    /// Stops the instances, then the broker.
    pub async fn shutdown(self) {
        for s in self.instances {
            s.shutdown().await;
        }
        self.broker.shutdown().await;
    }
}

/// Why the walkthrough failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A proxy string is not a proxy.
    #[error("`{0}` is not a Manager proxy")]
    BadProxy(String),
    /// A call failed or answered something the spec does not allow.
    #[error("{0}")]
    Step(String),
}

/// Walks through the service on the Managers `proxies` (instances A, B and C; fewer proxies are
/// reused): creates a user on A, logs in through B, verifies through C, refreshes, and removes
/// the user through B. Returns one line per step.
pub async fn demo(
    communicator: &Communicator,
    proxies: &[String],
) -> Result<Vec<String>, DemoError> {
    let mut managers = Vec::new();
    for p in proxies {
        let prx = communicator
            .string_to_proxy(p)
            .ok()
            .flatten()
            .ok_or_else(|| DemoError::BadProxy(p.clone()))?;
        managers.push(ManagerPrx::unchecked_cast(prx));
    }
    if managers.is_empty() {
        return Err(DemoError::Step("no Manager proxy given".into()));
    }
    let pick = |i: usize| managers[i % managers.len()].clone();
    let (a, b, c) = (pick(0), pick(1), pick(2));
    let step = |what: &str, e: &dyn std::fmt::Display| DemoError::Step(format!("{what}: {e}"));
    let mut out = Vec::new();
    let user = format!("demo-{}", crate::core::random_hex(4));

    let session = a
        .create_user(&user, "a password")
        .await
        .map_err(|e| step("createUser on A", &e))?
        .ok_or_else(|| DemoError::Step("createUser returned a null session".into()))?;
    out.push(format!("created `{user}` on A; session {}", *session));
    let other = b
        .login(&user, "a password")
        .await
        .map_err(|e| step("login through B", &e))?
        .ok_or_else(|| DemoError::Step("login returned a null session".into()))?;
    out.push(format!(
        "logged in through B; A answered with session {}",
        *other
    ));
    let verified = c
        .verify_session(Some(other.clone()))
        .await
        .map_err(|e| step("verifySession through C", &e))?;
    if !verified {
        return Err(DemoError::Step("C did not verify a real session".into()));
    }
    out.push("C verified the session".into());
    other.refresh().await.map_err(|e| step("refresh", &e))?;
    let alive = other.is_alive().await.map_err(|e| step("isAlive", &e))?;
    out.push(format!(
        "refreshed the session; getUser = `{}`, isAlive = {alive}",
        other.get_user().await.map_err(|e| step("getUser", &e))?
    ));
    b.remove_user(Some(other))
        .await
        .map_err(|e| step("removeUser through B", &e))?;
    out.push(format!("removed `{user}` through B"));
    Ok(out)
}
