//! Local deployments: `telegraph cluster --managers N` (a broker and N managers in one
//! process, on loopback ports the system picks) and `telegraph broker`.

use std::future::Future;
use std::path::Path;

use floe::{ObjectPrx, Properties};

use crate::accounts::Accounts;
use crate::manager::{MANAGER_IDENTITY, Manager, ManagerConfig, RAFT_PREFIX};

/// Starts icestorm-lite in this process (in memory unless `IceStorm.LMDB.Path` is set).
pub async fn start_broker(properties: &Properties) -> Result<icestorm_lite::Broker, String> {
    let props = properties.deep_clone();
    if props.get_property("IceStorm.LMDB.Path").is_empty() {
        props.set_property("IceStorm.Transient", "1");
    }
    icestorm_lite::Broker::start(props)
        .await
        .map_err(|e| format!("broker: {e}"))
}

/// Runs a broker until `shutdown` completes, printing its topic manager.
pub async fn run_broker(
    properties: Properties,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let broker = start_broker(&properties).await?;
    println!("{}", broker.topic_manager());
    shutdown.await;
    broker.shutdown().await;
    Ok(())
}

/// A broker and managers in one process.
pub struct Cluster {
    broker: icestorm_lite::Broker,
    managers: Vec<Manager>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("managers", &self.managers.len())
            .finish()
    }
}

impl Cluster {
    /// Starts a broker and `n` managers (manager i keeps its data in `DIR/node-i`).
    pub async fn start(
        n: usize,
        properties: &Properties,
        data_dir: &Path,
    ) -> Result<Cluster, String> {
        let broker = start_broker(properties).await?;
        let props = properties.deep_clone();
        props.set_property(
            "IceStorm.TopicManager.Proxy",
            &broker.topic_manager().to_string(),
        );
        let config = ManagerConfig::from_properties(props.clone())?;
        let started = floe_raft::local::start_nodes(
            n,
            &props,
            RAFT_PREFIX,
            data_dir,
            Accounts::default,
            |node| {
                let config = config.clone();
                async move {
                    Manager::serve(node, config)
                        .await
                        .map_err(floe_raft::RaftError::Failed)
                }
            },
        )
        .await;
        match started {
            Ok(nodes) => Ok(Cluster {
                broker,
                managers: nodes.into_iter().map(|(_, m)| m).collect(),
            }),
            Err(e) => {
                broker.shutdown().await;
                Err(e.to_string())
            }
        }
    }

    /// One proxy with every manager's endpoints.
    pub fn managers_proxy(&self) -> String {
        let endpoints: Vec<String> = self
            .managers
            .iter()
            .map(|m| m.node().address().endpoints.clone())
            .collect();
        format!("{MANAGER_IDENTITY}:{}", endpoints.join(":"))
    }

    /// The broker's topic manager.
    pub fn topic_manager(&self) -> ObjectPrx {
        self.broker.topic_manager()
    }

    /// The managers.
    pub fn managers(&self) -> &[Manager] {
        &self.managers
    }

    /// Stops the managers and the broker.
    pub async fn shutdown(self) {
        for m in &self.managers {
            m.shutdown().await;
        }
        self.broker.shutdown().await;
    }
}
