//! Integration tests, one binary with a module per area.
#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

#[cfg(feature = "relay")]
mod cli;
#[cfg(feature = "relay")]
#[path = "../common/http.rs"]
mod http_client;
mod payloads;
mod properties;
#[cfg(feature = "axum")]
mod receiver;
#[cfg(feature = "relay")]
mod relay;
mod request;
mod teal;
mod vectors;

use std::path::{Path, PathBuf};

/// A path under the repository's `fixtures/`.
pub fn fixture(relative: impl AsRef<Path>) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(relative)
}

/// A response's status, content type and body, as text.
#[cfg(feature = "axum")]
#[derive(Debug)]
pub struct Answer {
    pub status: http::StatusCode,
    pub content_type: Option<String>,
    pub body: String,
}

/// `app`'s answer to `request`, through `oneshot` (no socket).
#[cfg(feature = "axum")]
pub async fn call(app: &axum::Router, request: http::Request<axum::body::Body>) -> Answer {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        content_type,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// The directory the relay processes started by tests keep their embedded callback
/// store in, rather than `powens-relay/` in the working directory (the repository).
pub fn test_data_dir() -> PathBuf {
    std::env::temp_dir().join(format!("powens-relay-tests-{}", std::process::id()))
}
