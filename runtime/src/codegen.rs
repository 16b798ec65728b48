//! The items generated code uses; see docs/codegen-surface.md.
