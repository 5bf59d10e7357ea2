//! What is kept of a request refused for its signature or its date, so that its
//! diagnosis can run later, if the caller chooses (the relay rate-limits them): the
//! request's parts and the domains it was checked against. Cheap to keep: the bodies
//! are shared, not copied.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::Method;
use chrono::{DateTime, Utc};

use super::config::{DomainPolicy, Domains, WebhookConfig};
use super::rejection::WebhookRejection;
use crate::diagnosis::{self, Diagnosis, Rings, Suspect};
use crate::domain::Domain;
use crate::headers::HmacHeaders;
use crate::verify::VerifyError;

/// A refusal, with the evidence to diagnose it when it is about the signature or its
/// date.
#[derive(Debug)]
pub(crate) struct Refused {
    /// What the sender is answered.
    pub(crate) rejection: WebhookRejection,
    /// For a refused signature or date only.
    pub(crate) evidence: Option<Box<Evidence>>,
}

impl From<WebhookRejection> for Refused {
    fn from(rejection: WebhookRejection) -> Self {
        Self {
            rejection,
            evidence: None,
        }
    }
}

/// A request refused for its signature or its date, as received.
#[derive(Debug)]
pub(crate) struct Evidence {
    pub(super) method: Method,
    /// The path received (without the prefix put back).
    pub(super) path: String,
    /// The prefixes the proxy's headers say it stripped.
    pub(super) hints: Vec<String>,
    pub(super) domain: Domain,
    pub(super) hmac: HmacHeaders,
    pub(super) received: Bytes,
    /// The payload decompressed, for a gzip body.
    pub(super) decoded: Option<Bytes>,
    /// Why it was refused.
    pub(super) refusal: VerifyError,
    pub(super) config: WebhookConfig,
    /// The domains it was checked against (not those of a later reload).
    pub(super) domains: Arc<Domains>,
}

impl Evidence {
    /// Why the signature did not match, trying also the prefixes `hints` (the caller's
    /// own guesses, e.g. the path of the relay's public URL). Costs a few HMACs over the
    /// body, bounded: run it off the async workers for a large body.
    pub(crate) fn diagnose(&self, hints: &[String], now: DateTime<Utc>) -> Option<Diagnosis> {
        let Some(DomainPolicy::Verify(own)) = self.domains.get(&self.domain) else {
            return None;
        };
        let mut others: Vec<_> = self
            .domains
            .iter()
            .filter(|(domain, _)| **domain != self.domain)
            .filter_map(|(domain, policy)| match policy {
                DomainPolicy::Verify(verifier) => Some((domain, verifier.keys())),
                DomainPolicy::Forward => None,
            })
            .collect();
        // The same order every time, whatever the map's.
        others.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let all_hints: Vec<String> = self.hints.iter().chain(hints).cloned().collect();
        let suspect = Suspect {
            method: self.method.as_str(),
            path: &self.path,
            prefix: self.config.public_path_prefix(),
            hints: &all_hints,
            domain: &self.domain,
            hmac: &self.hmac,
            received: &self.received,
            decoded: self.decoded.as_deref(),
            limit: self.config.body_limit(),
        };
        diagnosis::diagnose(&suspect, &Rings { own, others }, &self.refusal, now)
    }
}
