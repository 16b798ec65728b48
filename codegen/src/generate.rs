//! Rust code generation.

use std::path::Path;

use crate::Checked;

/// Generates the Rust code for a checked file.
pub fn generate(checked: &Checked, file: &Path) -> Result<String, String> {
    let _ = checked;
    Err(format!("code generation for `{}` is not available yet", file.display()))
}
