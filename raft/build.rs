//! Generates the Rust code for `slice/FloeRaft.ice` (the nodes' operations) and
//! `slice/RaftKv.ice` (the replicated key-value example, `floe-raft-kv`).

fn main() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../slice");
    for file in ["FloeRaft", "RaftKv"] {
        if let Err(e) = floe_slice::Builder::new()
            .include(root)
            .compile(&[format!("{root}/{file}.ice")])
        {
            panic!("slice/{file}.ice does not compile:\n{e}");
        }
    }
}
