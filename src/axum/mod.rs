//! Receiving Powens webhooks in an axum application (feature `axum`): the relay's whole
//! webhook pipeline as an extractor, [`VerifiedPowensWebhook`], and as a tower layer,
//! [`PowensWebhookLayer`].
//!
//! For each request, in this order: the domain from the path (a domain not configured
//! gets 404) and the event; `Content-Encoding` (`identity` or `gzip`, else 415); an
//! announced `Content-Length` over the body limit (413, before reading); the signature
//! headers (400 malformed, 401 absent, or absent HMAC for a verify-mode domain); the body
//! within the limit and the read time-out (413, 408); gzip decompressed within the limit
//! (413 for a "bomb", 400 if corrupt); an empty body (400); then, in verify mode, the
//! HMAC over `METHOD.ENDPOINT.DATE.PAYLOAD` (ENDPOINT = the public path prefix and the
//! path) and the date's freshness (401). For a gzip body, the decompressed payload is
//! tried first, then the bytes as received. A refusal is a [`WebhookRejection`]: the
//! relay's status and one `text/plain` line.
//!
//! ```
//! use axum::{Router, routing::post};
//! use powens_webhooks::axum::{VerifiedPowensWebhook, WebhookConfig, WebhookRejection};
//! use powens_webhooks::{KeyRing, Secret};
//!
//! async fn receive(webhook: VerifiedPowensWebhook) -> Result<(), WebhookRejection> {
//!     let message = webhook.message()?; // TeaL's PowensWebhookMessage
//!     println!("{} from {}", message.event, message.domain);
//!     Ok(())
//! }
//!
//! let config = WebhookConfig::builder()
//!     .verify("budgea.biapi.pro".parse()?, KeyRing::new(Secret::new("secret_key")?))
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/powens-webhook/{domain}/{event}", post(receive))
//!     .with_state(config);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod body;
mod config;
// The relay is what diagnoses refusals; a receiver built on the extractor alone drops
// the evidence with the refusal.
#[cfg_attr(not(feature = "relay"), allow(dead_code))]
mod evidence;
mod extract;
mod layer;
mod rejection;

pub use crate::encoding::EncodingError;
#[cfg(feature = "relay")]
pub(crate) use config::check_path_prefix;
pub use config::{
    DEFAULT_BODY_LIMIT, DEFAULT_READ_TIMEOUT, DomainPolicy, WebhookConfig, WebhookConfigBuilder,
    WebhookConfigError,
};
#[cfg(feature = "relay")]
pub(crate) use evidence::{Evidence, Refused};
pub use extract::{Authenticity, SignedOver, VerifiedPowensWebhook};
pub use layer::{PowensWebhookLayer, PowensWebhookService};
pub use rejection::WebhookRejection;
#[cfg(feature = "relay")]
pub(crate) use rejection::plain_text;
