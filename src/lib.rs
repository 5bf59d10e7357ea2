// On docs.rs, each feature-gated item says which feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
// The crate's front page is the library's guide (the service's is in docs/); its
// examples are doc tests, and one of them uses the axum extractor.
#![cfg_attr(feature = "axum", doc = include_str!("../docs/library.md"))]
#![cfg_attr(
    not(feature = "axum"),
    doc = "Verify Powens webhook signatures and build TeaL's messages. With the `axum` \
           feature, this page is the library's guide, with examples."
)]

mod amq;
mod domain;
mod header_error;
mod headers;
mod keyring;
mod message;
mod request;
mod secret;
mod signature;
mod teal_json;
mod time;
mod verify;

/// Re-exported, so that a receiver needs no dependency of its own for the types of
/// [`Verifier::verify_request`] and the clock of [`Verifier::verify`].
pub use chrono;
/// Re-exported: see [`chrono`].
pub use http;

pub use amq::TealExchange;
pub use domain::{
    Domain, DomainError, Event, EventError, KNOWN_EVENTS, MAX_EVENT_LEN, POWENS_DOMAIN_SUFFIX,
};
pub use headers::{
    BI_SIGNATURE, BI_SIGNATURE_DATE, BearerToken, HeaderError, HmacHeaders, PowensHeaders,
    SignatureDate,
};
pub use keyring::{Key, KeyMatch, KeyRing};
pub use message::{
    CallbackMessage, MessageError, OpenIdCibaCallbackMessage, OpenIdCibaPushError,
    OpenIdCibaPushToken, PowensHmacSignature, PowensWebhookMessage, TealMessage,
};
pub use request::{Verification, VerifiedRequest, WebhookRequest};
pub use secret::{Secret, SecretError};
pub use signature::{Signature, SignedPrefix, sign, sign_parts};
pub use time::{IsoDateTime, IsoDateTimeError};
pub use verify::{FreshnessWindow, Verifier, VerifyError};

#[cfg(feature = "axum")]
pub mod axum;
// Called by the relay only (see `axum::evidence`).
#[cfg(feature = "axum")]
#[cfg_attr(not(feature = "relay"), allow(dead_code))]
mod diagnosis;
#[cfg(feature = "axum")]
mod encoding;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "relay")]
pub mod relay;
