//! openraft's own storage test suite against floe-raft's sled log store and state machine.

use floe_raft::kv::KvMachine;
use floe_raft::log_store::LogStore;
use floe_raft::machine::MachineStore;
use floe_raft::{NodeId, TypeConfig};
use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};

struct SledBuilder;

impl StoreBuilder<TypeConfig, LogStore, MachineStore<KvMachine>, tempfile::TempDir>
    for SledBuilder
{
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, MachineStore<KvMachine>), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = sled::Config::new()
            .path(dir.path())
            .open()
            .expect("sled database");
        let log = LogStore::open(&db, dir.path()).expect("log store");
        let machine = MachineStore::open(&db, dir.path(), KvMachine::default(), 3_600_000)?;
        Ok((dir, log, machine))
    }
}

#[test]
fn openraft_storage_suite_passes_on_the_sled_store() {
    Suite::test_all(SledBuilder).expect("openraft's storage suite");
}
