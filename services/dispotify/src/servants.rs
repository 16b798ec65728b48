//! The Ice servants of a node: `Dispotify::Catalog` (identity `catalog`, the public API) and
//! `Dispotify::Storage` (identity `storage`, replicas between nodes), on the node's adapter.

use std::sync::Arc;

use floe::codegen::Current;

use crate::node::{CATALOG_IDENTITY, Node, NodeError, STORAGE_IDENTITY};
use crate::slice::dispotify::{self as api, catalog as cops, storage as sops};
use crate::storage::{MAX_TRANSFER, StorageError};

/// Adds both servants to the node's adapter.
pub fn add_servants(node: &Node) -> Result<(), floe::Error> {
    let adapter = node.raft().adapter();
    adapter.add(
        Arc::new(api::CatalogDispatcher(Arc::new(CatalogI {
            node: node.clone(),
        }))),
        floe::Identity::new(CATALOG_IDENTITY, ""),
    )?;
    adapter.add(
        Arc::new(api::StorageDispatcher(Arc::new(StorageI {
            node: node.clone(),
        }))),
        floe::Identity::new(STORAGE_IDENTITY, ""),
    )?;
    Ok(())
}

/// Maps a node error onto the exceptions an operation declares: each kind listed to its own
/// exception, any other to the first listed.
macro_rules! node_error {
    ($e:expr, $first:ident $(, $kind:ident)*) => {{
        let e: NodeError = $e;
        match e {
            NodeError::$first(reason) => api::$first { reason }.into(),
            $(NodeError::$kind(reason) => api::$kind { reason }.into(),)*
            #[allow(unreachable_patterns)]
            other => api::$first { reason: other.to_string() }.into(),
        }
    }};
}

struct CatalogI {
    node: Node,
}

impl api::Catalog for CatalogI {
    async fn begin_upload(
        &self,
        session: String,
        name: String,
        size: i64,
        sha256: String,
        _: &Current,
    ) -> Result<api::UploadState, cops::BeginUploadError> {
        let user = self
            .node
            .authorize(&session)
            .await
            .map_err(|e| -> cops::BeginUploadError {
                node_error!(e, Unauthorized, InvalidArgument, Unavailable)
            })?;
        self.node
            .begin_upload(&user, &name, size, &sha256)
            .map_err(|e| node_error!(e, Unauthorized, InvalidArgument, Unavailable))
    }

    async fn put_chunk(
        &self,
        upload: String,
        offset: i64,
        data: Vec<u8>,
        chunk_sha256: String,
        _: &Current,
    ) -> Result<api::UploadState, cops::PutChunkError> {
        let node = self.node.clone();
        tokio::task::spawn_blocking(move || node.put_chunk(&upload, offset, &data, &chunk_sha256))
            .await
            .map_err(|e| api::NotFound {
                reason: e.to_string(),
            })?
            .map_err(|e| node_error!(e, NotFound, InvalidArgument, ChecksumMismatch))
    }

    async fn finish_upload(
        &self,
        upload: String,
        overrides: api::Overrides,
        _: &Current,
    ) -> Result<api::Song, cops::FinishUploadError> {
        self.node
            .finish_upload(&upload, overrides)
            .await
            .map(|s| s.to_slice())
            .map_err(|e| node_error!(e, NotFound, InvalidArgument, ChecksumMismatch, Unavailable))
    }

    async fn info(&self, id: String, _: &Current) -> Result<api::Song, cops::InfoError> {
        self.node
            .song(&id)
            .await
            .map(|s| s.to_slice())
            .map_err(|e| node_error!(e, NotFound, Unavailable))
    }

    async fn search(
        &self,
        query: String,
        offset: i32,
        limit: i32,
        _: &Current,
    ) -> Result<api::SearchResult, cops::SearchError> {
        if offset < 0 || limit < 0 {
            return Err(api::InvalidArgument {
                reason: "offset and limit cannot be negative".into(),
            }
            .into());
        }
        let (songs, total) = self
            .node
            .search(&query, offset as usize, limit as usize)
            .await
            .map_err(|e| -> cops::SearchError { node_error!(e, InvalidArgument, Unavailable) })?;
        Ok(api::SearchResult {
            songs,
            total: total.min(i32::MAX as usize) as i32,
        })
    }

    async fn read(
        &self,
        id: String,
        offset: i64,
        length: i32,
        _: &Current,
    ) -> Result<Vec<u8>, cops::ReadError> {
        if offset < 0 || length < 0 || length as usize > MAX_TRANSFER {
            return Err(api::InvalidArgument {
                reason: format!("read {length} bytes at {offset} (at most {MAX_TRANSFER} at once)"),
            }
            .into());
        }
        self.node
            .read(&id, offset as u64, length as usize)
            .await
            .map_err(|e| node_error!(e, NotFound, InvalidArgument, Unavailable))
    }

    async fn status(&self, _: &Current) -> Result<api::ClusterStatus, floe::Error> {
        Ok(self.node.status().await)
    }
}

struct StorageI {
    node: Node,
}

fn storage_error(e: StorageError) -> NodeError {
    e.into()
}

impl api::Storage for StorageI {
    async fn begin_replica(
        &self,
        id: String,
        size: i64,
        _: &Current,
    ) -> Result<i64, sops::BeginReplicaError> {
        if size < 0 {
            return Err(api::InvalidArgument {
                reason: "negative size".into(),
            }
            .into());
        }
        self.node
            .replicas()
            .begin(&id, size as u64)
            .map(|n| n as i64)
            .map_err(|e| node_error!(storage_error(e), InvalidArgument))
    }

    async fn put_replica_chunk(
        &self,
        id: String,
        offset: i64,
        data: Vec<u8>,
        chunk_sha256: String,
        _: &Current,
    ) -> Result<(), sops::PutReplicaChunkError> {
        let size = self
            .node
            .raft()
            .read_now(|c: &crate::catalog::Catalog| c.songs.get(&id).map(|s| s.size as u64));
        // A replica of a song not yet in the catalog (an upload in progress) may be as large as
        // an upload may be.
        let size = size.unwrap_or(self.node.config().max_upload);
        if offset < 0 {
            return Err(api::InvalidArgument {
                reason: "negative offset".into(),
            }
            .into());
        }
        let r = self.node.replicas().clone();
        tokio::task::spawn_blocking(move || r.put(&id, offset as u64, &data, &chunk_sha256, size))
            .await
            .map_err(|e| api::NotFound {
                reason: e.to_string(),
            })?
            .map_err(|e| {
                node_error!(
                    storage_error(e),
                    NotFound,
                    InvalidArgument,
                    ChecksumMismatch
                )
            })
    }

    async fn commit_replica(
        &self,
        id: String,
        _: &Current,
    ) -> Result<(), sops::CommitReplicaError> {
        let r = self.node.replicas().clone();
        tokio::task::spawn_blocking(move || r.commit(&id))
            .await
            .map_err(|e| api::NotFound {
                reason: e.to_string(),
            })?
            .map_err(|e| node_error!(storage_error(e), NotFound, ChecksumMismatch))
    }

    async fn read_replica(
        &self,
        id: String,
        offset: i64,
        length: i32,
        _: &Current,
    ) -> Result<Vec<u8>, sops::ReadReplicaError> {
        if offset < 0 || length < 0 || length as usize > MAX_TRANSFER {
            return Err(api::InvalidArgument {
                reason: format!("read {length} bytes at {offset}"),
            }
            .into());
        }
        let r = self.node.replicas().clone();
        let result = tokio::task::spawn_blocking(move || {
            let out = r.read(&id, offset as u64, length as usize);
            if matches!(out, Err(StorageError::Checksum(_))) {
                let _ = r.drop_replica(&id);
            }
            out
        })
        .await
        .map_err(|e| api::NotFound {
            reason: e.to_string(),
        })?;
        result.map_err(|e| {
            node_error!(
                storage_error(e),
                NotFound,
                InvalidArgument,
                ChecksumMismatch
            )
        })
    }

    async fn inventory(&self, _: &Current) -> Result<Vec<String>, floe::Error> {
        Ok(self.node.replicas().inventory().unwrap_or_default())
    }

    async fn drop_replica(&self, id: String, _: &Current) -> Result<(), floe::Error> {
        let _ = self.node.replicas().drop_replica(&id);
        Ok(())
    }
}
