//! `dispotify cluster --nodes N`: a users manager and N nodes in one process, on loopback
//! ports the system picks, each node with its HTTP gateway.

use std::path::Path;
use std::time::Duration;

use floe::Properties;

use crate::catalog::Catalog;
use crate::node::{Node, NodeConfig, RAFT_PREFIX};

/// A local cluster.
pub struct Cluster {
    users: usersmanager::Service,
    nodes: Vec<(Node, String)>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

impl Cluster {
    /// Starts the users manager (with an account `user`/`password` when given) and `n` nodes;
    /// node i keeps its data in `DIR/node-i`.
    pub async fn start(
        n: usize,
        properties: &Properties,
        data_dir: &Path,
        account: Option<(&str, &str)>,
    ) -> Result<Cluster, String> {
        let uprops = properties.deep_clone();
        uprops.set_property("usersmanageradapter.Endpoints", "tcp -h 127.0.0.1 -p 0");
        uprops.set_property(
            "UsersManager.DataDir",
            &data_dir.join("users").display().to_string(),
        );
        if uprops.get_property("UsersManager.QueryTimeout").is_empty() {
            // One instance alone: nobody else can object to a new name.
            uprops.set_property("UsersManager.QueryTimeout", "200");
        }
        let users = usersmanager::Service::start(
            usersmanager::Config::from_properties(uprops).map_err(|e| e.to_string())?,
        )
        .await
        .map_err(|e| format!("users manager: {e}"))?;
        if let Some((user, password)) = account {
            let manager = usersmanager::slice::users_manager::ManagerPrx::unchecked_cast(
                users.manager_proxy().clone(),
            );
            if let Err(e) = manager.create_user(user, password).await {
                tracing::info!(target: "dispotify::cluster", user, error = ?e, "account not created (it may exist)");
            }
        }
        let props = properties.deep_clone();
        props.set_property(
            "Dispotify.UsersManager.Proxy",
            &users.manager_proxy().to_string(),
        );
        let mut listeners = Vec::new();
        for _ in 0..n.max(1) {
            let l = crate::gateway::bind(
                &props.get_property_with_default("Dispotify.Http", "127.0.0.1:0"),
            )
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
            listeners.push(l);
        }
        let addrs: Vec<String> = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| a.to_string()).unwrap_or_default())
            .collect();
        let dir = data_dir.to_path_buf();
        let started = floe_raft::local::start_nodes_with(
            n,
            &props,
            RAFT_PREFIX,
            &data_dir.join("raft"),
            Catalog::default,
            |i, p| p.set_property(&format!("{RAFT_PREFIX}.Attribute.http"), &addrs[i - 1]),
            |raft| {
                let props = props.deep_clone();
                let dir = dir.clone();
                async move {
                    props.set_property(
                        "Dispotify.DataDir",
                        &dir.join(format!("node-{}", raft.id()))
                            .display()
                            .to_string(),
                    );
                    let config =
                        NodeConfig::from_properties(props).map_err(floe_raft::RaftError::Config)?;
                    Node::serve(raft, config)
                        .await
                        .map_err(floe_raft::RaftError::Failed)
                }
            },
        )
        .await;
        let nodes = match started {
            Ok(n) => n,
            Err(e) => {
                users.shutdown().await;
                return Err(e.to_string());
            }
        };
        let mut tasks = Vec::new();
        let mut out = Vec::new();
        for ((_, node), (listener, addr)) in nodes.into_iter().zip(listeners.into_iter().zip(addrs))
        {
            let n = node.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = crate::gateway::serve(listener, n).await {
                    tracing::warn!(target: "dispotify::cluster", error = %e, "HTTP gateway stopped");
                }
            }));
            out.push((node, addr));
        }
        let cluster = Cluster {
            users,
            nodes: out,
            tasks,
        };
        let rafts: Vec<_> = cluster
            .nodes
            .iter()
            .map(|(n, _)| n.raft().clone())
            .collect();
        floe_raft::local::wait_for_voters(&rafts, Duration::from_secs(20))
            .await
            .map_err(|e| e.to_string())?;
        Ok(cluster)
    }

    /// The nodes and their HTTP addresses.
    pub fn nodes(&self) -> &[(Node, String)] {
        &self.nodes
    }

    /// The users manager's proxy.
    pub fn users_proxy(&self) -> String {
        self.users.manager_proxy().to_string()
    }

    /// Stops everything.
    pub async fn shutdown(self) {
        for t in &self.tasks {
            t.abort();
        }
        for (n, _) in &self.nodes {
            n.shutdown().await;
        }
        self.users.shutdown().await;
    }
}
