//! Reading a webhook's body: within the limit and, for gzip, decompressed within it
//! too, on a blocking thread when it could be large.

use axum::body::{Body, Bytes};

use super::rejection::WebhookRejection;
use crate::encoding;

/// Most output a gzip body may decompress to on an async worker (about a millisecond of
/// work); one that could produce more is decompressed on a blocking thread, so that a
/// small "gzip bomb" does not hold up other requests.
const INLINE_GUNZIP_OUTPUT: usize = 1024 * 1024;
/// Deflate's largest expansion (bytes out per byte in).
const DEFLATE_MAX_RATIO: usize = 1032;

/// Decompresses a gzip body within `limit`; on a blocking thread when it could expand to
/// more than [`INLINE_GUNZIP_OUTPUT`].
pub(super) async fn gunzip(compressed: Bytes, limit: usize) -> Result<Bytes, WebhookRejection> {
    let most = compressed
        .len()
        .saturating_mul(DEFLATE_MAX_RATIO)
        .min(limit);
    let decoded = if most <= INLINE_GUNZIP_OUTPUT {
        encoding::gunzip(&compressed, limit)
    } else {
        tokio::task::spawn_blocking(move || encoding::gunzip(&compressed, limit))
            .await
            .map_err(|_| WebhookRejection::BodyUnreadable)?
    };
    Ok(decoded?.into())
}

/// Reads at most `limit` bytes: more is a 413, whether or not a `Content-Length` said so.
pub(super) async fn read_body(body: Body, limit: usize) -> Result<Bytes, WebhookRejection> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let over_limit = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if over_limit {
            WebhookRejection::TooLarge { limit }
        } else {
            WebhookRejection::BodyUnreadable
        }
    })
}
