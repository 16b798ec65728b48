//! Slice checksums of the types a program was built with: Ice's `Ice::sliceChecksums`. Code
//! generated with `slice2rs --checksum` submits one [`SliceChecksum`] per type and constant of
//! its Slice files; [`slice_checksums`] gathers them, for a server to hand to clients that
//! check they were built from the same definitions (ZeroC's `Ice::SliceChecksumDict`).

use std::collections::HashMap;

/// One type's checksum, as generated code submits it with `inventory::submit!`.
#[derive(Debug, Clone, Copy)]
pub struct SliceChecksum {
    /// The scoped name (`::Module::Type`).
    pub type_id: &'static str,
    /// The checksum, in ZeroC's text form.
    pub checksum: &'static str,
}

inventory::collect!(SliceChecksum);

/// Every checksum the program's generated code submitted, by scoped name.
pub fn slice_checksums() -> HashMap<String, String> {
    inventory::iter::<SliceChecksum>
        .into_iter()
        .map(|c| (c.type_id.to_string(), c.checksum.to_string()))
        .collect()
}
