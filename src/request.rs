//! A webhook request, its parts parsed, becoming TeaL's message: verified first
//! ([`WebhookRequest::verify`], whose [`VerifiedRequest`] carries the proof), or passed
//! on unverified (TeaL's `forward`).

use chrono::{DateTime, Utc};

use crate::domain::{Domain, Event};
use crate::headers::PowensHeaders;
use crate::message::{MessageError, PowensHmacSignature, PowensWebhookMessage};
use crate::signature::SignedPrefix;
use crate::time::IsoDateTime;
use crate::verify::{Verifier, VerifyError};

/// A webhook request as received, its parts parsed: what is needed to verify it and to
/// build its [`PowensWebhookMessage`].
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    /// The HTTP method, upper case.
    pub method: &'a str,
    /// The path Powens addressed (and signed), e.g. `/powens-webhook/budgea.biapi.pro/USER_SYNCED`.
    pub endpoint: &'a str,
    /// The Powens domain from the path.
    pub domain: &'a Domain,
    /// The event from the path.
    pub event: &'a Event,
    /// The authentication headers.
    pub headers: &'a PowensHeaders,
    /// The raw body.
    pub body: &'a [u8],
}

impl<'a> WebhookRequest<'a> {
    /// Verifies the request's HMAC headers with `verifier` at `now`.
    ///
    /// # Errors
    /// [`VerifyError::Unsigned`] when the request has no HMAC headers, otherwise as
    /// [`Verifier::verify`].
    pub fn verify(
        self,
        verifier: &Verifier,
        now: DateTime<Utc>,
    ) -> Result<VerifiedRequest<'a>, VerifyError> {
        let hmac = self.headers.hmac().ok_or(VerifyError::Unsigned)?;
        let key = verifier.verify(self.method, self.endpoint, hmac, self.body, now)?;
        Ok(VerifiedRequest {
            request: self,
            verification: Verification { key },
        })
    }

    /// The message for this request without verifying it: TeaL's `forward` behaviour,
    /// leaving verification to consumers.
    ///
    /// # Errors
    /// [`MessageError::PayloadNotUtf8`] when the body is not UTF-8 text.
    pub fn to_unverified_message(
        &self,
        timestamp: IsoDateTime,
    ) -> Result<PowensWebhookMessage, MessageError> {
        let payload = std::str::from_utf8(self.body)
            .map_err(|e| MessageError::PayloadNotUtf8 {
                valid_up_to: e.valid_up_to(),
            })?
            .to_owned();
        let hmac_signature = self.headers.hmac().map(|hmac| PowensHmacSignature {
            signature: hmac.signature.to_base64(),
            payload_prefix: SignedPrefix::new(self.method, self.endpoint, hmac.date.raw())
                .to_payload_prefix(),
            signature_date: Some(IsoDateTime::aware(hmac.date.at())),
        });
        Ok(PowensWebhookMessage {
            timestamp,
            domain: self.domain.clone(),
            event: self.event.clone(),
            hmac_signature,
            user_token: self.headers.bearer().cloned(),
            payload,
        })
    }
}

/// Proof that a request's signature matched one of the domain's keys: only
/// [`WebhookRequest::verify`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    key: usize,
}

impl Verification {
    /// Which key of the ring matched (0: the first, the current one).
    pub fn key_index(self) -> usize {
        self.key
    }
}

/// A [`WebhookRequest`] whose signature has been verified.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedRequest<'a> {
    request: WebhookRequest<'a>,
    verification: Verification,
}

impl<'a> VerifiedRequest<'a> {
    /// `request` with the proof its own verification gave: for a caller that verified
    /// the request's parts and kept them with their [`Verification`] (the axum
    /// extractor).
    #[cfg(feature = "axum")]
    pub(crate) fn with_proof(request: WebhookRequest<'a>, verification: Verification) -> Self {
        Self {
            request,
            verification,
        }
    }

    /// The proof.
    pub fn verification(&self) -> Verification {
        self.verification
    }

    /// The message to publish, `payload_prefix` exactly as verified.
    ///
    /// # Errors
    /// [`MessageError::PayloadNotUtf8`] when the body is not UTF-8 text.
    pub fn to_message(&self, timestamp: IsoDateTime) -> Result<PowensWebhookMessage, MessageError> {
        self.request.to_unverified_message(timestamp)
    }
}
