//! Several nodes of one service in one process, on loopback ports the system picks: what a
//! service's `cluster --nodes N` command runs. Node 1 forms the cluster alone and the others
//! join through it, so no port needs to be known in advance; node `i` keeps its data in
//! `DIR/node-<i>`.

use std::path::Path;
use std::time::Duration;

use floe::Properties;

use crate::machine::StateMachine;
use crate::node::RaftNode;
use crate::{Config, RaftError};

/// Starts `n` nodes of state machine `S` (made by `make`), with `properties` (their
/// `<prefix>.*` settings apply to every node; ids, endpoints, data directories and the join
/// target are set here). `prepare` runs on each node once it has started (to add a service's
/// servants to its adapter, say) and gives what the caller keeps of it. Waits until node 1
/// sees a leader; on any failure the started nodes are shut down.
pub async fn start_nodes<S, T, F, Fut>(
    n: usize,
    properties: &Properties,
    prefix: &str,
    data_dir: &Path,
    make: impl Fn() -> S,
    prepare: F,
) -> Result<Vec<(RaftNode<S>, T)>, RaftError>
where
    S: StateMachine,
    F: Fn(RaftNode<S>) -> Fut,
    Fut: std::future::Future<Output = Result<T, RaftError>>,
{
    start_nodes_with(n, properties, prefix, data_dir, make, |_, _| {}, prepare).await
}

/// [`start_nodes`], with `configure` adding each node's own properties (node `i`, 1-based)
/// before it starts.
pub async fn start_nodes_with<S, T, F, Fut>(
    n: usize,
    properties: &Properties,
    prefix: &str,
    data_dir: &Path,
    make: impl Fn() -> S,
    configure: impl Fn(usize, &Properties),
    prepare: F,
) -> Result<Vec<(RaftNode<S>, T)>, RaftError>
where
    S: StateMachine,
    F: Fn(RaftNode<S>) -> Fut,
    Fut: std::future::Future<Output = Result<T, RaftError>>,
{
    let mut nodes: Vec<(RaftNode<S>, T)> = Vec::new();
    let result = async {
        for id in 1..=n.max(1) {
            let props = properties.deep_clone();
            props.set_property(&format!("{prefix}.NodeId"), &id.to_string());
            props.set_property(
                &format!("{prefix}.DataDir"),
                &data_dir.join(format!("node-{id}")).display().to_string(),
            );
            if props
                .get_property(&format!("{prefix}.Endpoints"))
                .is_empty()
            {
                props.set_property(&format!("{prefix}.Endpoints"), "tcp -h 127.0.0.1 -p 0");
            }
            let join = nodes
                .first()
                .map(|(first, _)| format!("raft:{}", first.address().endpoints))
                .unwrap_or_default();
            props.set_property(&format!("{prefix}.Join"), &join);
            configure(id, &props);
            let node = RaftNode::start(Config::from_properties(props, prefix)?, make()).await?;
            let kept = match prepare(node.clone()).await {
                Ok(k) => k,
                Err(e) => {
                    node.shutdown().await;
                    return Err(e);
                }
            };
            nodes.push((node, kept));
        }
        nodes[0].0.wait_for_leader(Duration::from_secs(10)).await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Ok(nodes),
        Err(e) => {
            for (node, _) in &nodes {
                node.shutdown().await;
            }
            Err(e)
        }
    }
}

/// Waits until every node of `nodes` is a voter, as node 1 sees it.
pub async fn wait_for_voters<S: StateMachine>(
    nodes: &[RaftNode<S>],
    limit: Duration,
) -> Result<(), RaftError> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let (_, voters) = nodes[0].members();
        if voters.len() == nodes.len() {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(RaftError::Failed(format!(
                "{} of {} nodes are voters",
                voters.len(),
                nodes.len()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
