//! Integration tests, one binary with a module per area.
#![allow(clippy::unwrap_used, missing_docs)]

#[cfg(feature = "relay")]
mod cli;
mod payloads;
mod properties;
#[cfg(feature = "axum")]
mod receiver;
#[cfg(feature = "relay")]
mod relay;
mod teal;
mod vectors;

use std::path::{Path, PathBuf};

/// A path under the repository's `fixtures/`.
pub fn fixture(relative: impl AsRef<Path>) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(relative)
}
