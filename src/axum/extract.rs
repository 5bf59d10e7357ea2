//! The webhook pipeline: path, encoding, limits, headers, body, decompression,
//! verification. One implementation, behind the extractor, the layer and the relay.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRef, FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{Method, header};
use chrono::{DateTime, Utc};

use super::body::{gunzip, read_body};
use super::config::{DomainPolicy, Domains, WebhookConfig};
use super::evidence::{Evidence, Refused};
use super::rejection::WebhookRejection;
use crate::domain::{Domain, Event};
use crate::encoding::ContentEncoding;
use crate::headers::{BearerToken, HmacHeaders, PowensHeaders};
use crate::message::PowensWebhookMessage;
use crate::request::{Verification, VerifiedRequest, WebhookRequest};
use crate::time::IsoDateTime;
use crate::verify::VerifyError;

/// For a gzip body, which bytes the signature matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedOver {
    /// The decompressed payload (tried first).
    Decompressed,
    /// The body as received, compressed. It is authentic, and so is what it
    /// decompresses to; but a consumer re-verifying the payload will see it fail.
    Compressed,
}

impl SignedOver {
    /// `"decompressed"` or `"compressed"`, as the relay logs it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Decompressed => "decompressed",
            Self::Compressed => "compressed",
        }
    }
}

/// How a webhook that passed the checks was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authenticity {
    /// Its HMAC matched a key of the domain (verify mode).
    Verified(Verification),
    /// Passed on unverified, for consumers to check (forward mode, TeaL's behaviour).
    Forwarded,
}

/// A Powens webhook that passed the relay's checks: verified (or, for a domain in
/// forward mode, passed on unverified), its body read within the limits and
/// decompressed.
///
/// As an axum extractor, it takes its [`WebhookConfig`] from the router state
/// (`FromRef`). The domain and event come from the route's `{domain}` and `{event}`
/// parameters when it has them. Otherwise the event is the path's last segment, and the
/// domain is the only configured one, or else the segment before the event (TeaL's
/// `…/{domain}/{event}`).
///
/// It consumes the body, so it must be the handler's last argument.
#[derive(Debug, Clone)]
pub struct VerifiedPowensWebhook {
    method: Method,
    endpoint: String,
    domain: Domain,
    event: Event,
    headers: PowensHeaders,
    payload: Bytes,
    authenticity: Authenticity,
    signed_over: Option<SignedOver>,
}

impl VerifiedPowensWebhook {
    /// The Powens domain.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// The event.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// The payload: the body, decompressed.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The parsed `BI-Signature*` and `Authorization` headers.
    pub fn headers(&self) -> &PowensHeaders {
        &self.headers
    }

    /// The HMAC headers, if the request had them.
    pub fn hmac(&self) -> Option<&HmacHeaders> {
        self.headers.hmac()
    }

    /// The bearer token, if the request had one (Powens' user-scoped token).
    pub fn bearer(&self) -> Option<&BearerToken> {
        self.headers.bearer()
    }

    /// The endpoint Powens signed: the public path prefix and the path received.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether the HMAC was verified (`false` for a domain in forward mode).
    pub fn is_verified(&self) -> bool {
        matches!(self.authenticity, Authenticity::Verified(_))
    }

    /// How it was authenticated: verified (with which key), or forwarded unverified.
    pub fn authenticity(&self) -> Authenticity {
        self.authenticity
    }

    /// For a gzip body, which bytes the signature matched; `None` otherwise.
    pub fn signed_over(&self) -> Option<SignedOver> {
        self.signed_over
    }

    /// TeaL's message for this webhook, stamped `timestamp`.
    ///
    /// # Errors
    /// [`WebhookRejection::Message`] (400) when the payload is not UTF-8: TeaL's
    /// messages carry it as text.
    pub fn to_message(
        &self,
        timestamp: IsoDateTime,
    ) -> Result<PowensWebhookMessage, WebhookRejection> {
        Ok(message_of(self.request(), self.authenticity, timestamp)?)
    }

    /// [`to_message`](Self::to_message) stamped now.
    ///
    /// # Errors
    /// As [`to_message`](Self::to_message).
    pub fn message(&self) -> Result<PowensWebhookMessage, WebhookRejection> {
        self.to_message(IsoDateTime::naive_utc(Utc::now()))
    }

    /// [`message`](Self::message), taking the payload over instead of copying it: a
    /// large webhook is then held once, not twice, while its message is built.
    ///
    /// # Errors
    /// As [`to_message`](Self::to_message).
    pub fn into_message(self) -> Result<PowensWebhookMessage, WebhookRejection> {
        let timestamp = IsoDateTime::naive_utc(Utc::now());
        // Everything but the payload from the request; the payload moved in after.
        let head = WebhookRequest {
            body: &[],
            ..self.request()
        };
        let mut message = message_of(head, self.authenticity, timestamp)?;
        message.payload = String::from_utf8(Vec::from(self.payload)).map_err(|e| {
            crate::message::MessageError::PayloadNotUtf8 {
                valid_up_to: e.utf8_error().valid_up_to(),
            }
        })?;
        Ok(message)
    }

    fn request(&self) -> WebhookRequest<'_> {
        WebhookRequest {
            method: self.method.as_str(),
            endpoint: &self.endpoint,
            domain: &self.domain,
            event: &self.event,
            headers: &self.headers,
            body: &self.payload,
        }
    }

    /// Runs the pipeline on a request's head and body.
    pub(crate) async fn extract(
        config: &WebhookConfig,
        parts: &mut Parts,
        body: Body,
    ) -> Result<Self, WebhookRejection> {
        Self::checked(config, parts, body, false)
            .await
            .map_err(|refused| refused.rejection)
    }

    /// [`extract`](Self::extract), keeping what a refusal of the signature or its date
    /// needs to be diagnosed later ([`Evidence`]): the relay decides whether to.
    #[cfg(feature = "relay")]
    pub(crate) async fn extract_with_evidence(
        config: &WebhookConfig,
        parts: &mut Parts,
        body: Body,
    ) -> Result<Self, Refused> {
        Self::checked(config, parts, body, true).await
    }

    /// The pipeline; a refusal carries its [`Evidence`] only when asked (by the relay).
    async fn checked(
        config: &WebhookConfig,
        parts: &mut Parts,
        body: Body,
        evidence: bool,
    ) -> Result<Self, Refused> {
        let (mut webhook, received, domains) = Self::read(config, parts, body).await?;
        let gzipped = webhook.signed_over.is_some();
        if let Some(DomainPolicy::Verify(verifier)) = domains.get(&webhook.domain) {
            let now = Utc::now();
            let proof = match webhook.request().verify(verifier, now) {
                Ok(verified) => Ok(verified.verification()),
                // A sender may have signed the body it sent rather than the payload: try
                // the bytes as received.
                Err(VerifyError::SignatureMismatch { .. }) if gzipped => webhook
                    .verify_received(verifier, &received, now)
                    .inspect(|_| webhook.signed_over = Some(SignedOver::Compressed)),
                Err(e) => Err(e),
            };
            match proof {
                Ok(proof) => webhook.authenticity = Authenticity::Verified(proof),
                Err(refusal) => {
                    return Err(Refused {
                        rejection: refusal.clone().into(),
                        evidence: webhook.hmac().filter(|_| evidence).cloned().map(|hmac| {
                            Box::new(Evidence {
                                method: webhook.method,
                                path: parts.uri.path().to_owned(),
                                hints: crate::diagnosis::hints_from_headers(
                                    &parts.headers,
                                    parts.uri.path(),
                                ),
                                domain: webhook.domain,
                                hmac,
                                decoded: gzipped.then_some(webhook.payload),
                                received,
                                refusal,
                                config: config.clone(),
                                domains: domains.clone(),
                            })
                        }),
                    });
                }
            }
        }
        Ok(webhook)
    }

    /// The pipeline up to verification: the webhook (not yet authenticated), the body as
    /// received, and the domains it is checked against.
    async fn read(
        config: &WebhookConfig,
        parts: &mut Parts,
        body: Body,
    ) -> Result<(Self, Bytes, Arc<Domains>), WebhookRejection> {
        let (domain, event) = route_names(config, parts).await?;
        let domain = Domain::parse(&domain)?;
        let domains = config.domains();
        let policy = domains
            .get(&domain)
            .ok_or_else(|| WebhookRejection::UnknownDomain(domain.clone()))?;
        let event = Event::parse(&event)?;

        let encoding = ContentEncoding::from_headers(&parts.headers)?;
        let limit = config.body_limit();
        // Refuse an announced oversize body before reading any of it.
        if let Some(length) = parts.headers.get(header::CONTENT_LENGTH) {
            let length = length
                .to_str()
                .ok()
                .and_then(|l| l.parse::<u64>().ok())
                .ok_or(WebhookRejection::ContentLength)?;
            if usize::try_from(length).map_or(true, |l| l > limit) {
                return Err(WebhookRejection::TooLarge { limit });
            }
        }
        let headers = PowensHeaders::from_header_map(&parts.headers)?;
        if matches!(policy, DomainPolicy::Verify(_)) && headers.hmac().is_none() {
            return Err(WebhookRejection::Unsigned);
        }
        let received = tokio::time::timeout(config.read_timeout(), read_body(body, limit))
            .await
            .map_err(|_| WebhookRejection::BodyTimeout {
                secs: config.read_timeout().as_secs(),
            })??;
        let gzipped = encoding == ContentEncoding::Gzip;
        let payload = if gzipped {
            gunzip(received.clone(), limit).await?
        } else {
            received.clone()
        };
        if payload.is_empty() {
            return Err(WebhookRejection::EmptyBody);
        }

        let prefix = config.public_path_prefix();
        let endpoint = if prefix.is_empty() {
            parts.uri.path().to_owned()
        } else {
            format!("{prefix}{}", parts.uri.path())
        };
        let webhook = Self {
            method: parts.method.clone(),
            endpoint,
            domain,
            event,
            headers,
            payload,
            authenticity: Authenticity::Forwarded,
            signed_over: gzipped.then_some(SignedOver::Decompressed),
        };
        Ok((webhook, received, domains))
    }

    fn verify_received(
        &self,
        verifier: &crate::verify::Verifier,
        received: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Verification, VerifyError> {
        WebhookRequest {
            body: received,
            ..self.request()
        }
        .verify(verifier, now)
        .map(|verified| verified.verification())
    }
}

/// TeaL's message for `request`: through its [`VerifiedRequest`] when it was verified
/// (the proof kept from its verification), else unverified (forward mode).
fn message_of(
    request: WebhookRequest<'_>,
    authenticity: Authenticity,
    timestamp: IsoDateTime,
) -> Result<PowensWebhookMessage, crate::message::MessageError> {
    match authenticity {
        Authenticity::Verified(proof) => {
            VerifiedRequest::with_proof(request, proof).to_message(timestamp)
        }
        Authenticity::Forwarded => request.to_unverified_message(timestamp),
    }
}

/// The domain and event names of the request (unparsed): see [`VerifiedPowensWebhook`].
async fn route_names(
    config: &WebhookConfig,
    parts: &mut Parts,
) -> Result<(String, String), WebhookRejection> {
    use axum::extract::rejection::RawPathParamsRejection;
    let (mut domain, mut event) = (None, None);
    match RawPathParams::from_request_parts(parts, &()).await {
        Ok(params) => {
            for (key, value) in &params {
                match key {
                    "domain" => domain = Some(value.to_owned()),
                    "event" => event = Some(value.to_owned()),
                    _ => {}
                }
            }
        }
        Err(RawPathParamsRejection::MissingPathParams(_)) => {}
        Err(_) => return Err(WebhookRejection::Path),
    }
    let mut segments = parts.uri.path().rsplit('/');
    let event = match event {
        Some(event) => event,
        None => segments.next().unwrap_or_default().to_owned(),
    };
    let domain = match domain {
        Some(domain) => domain,
        None => {
            let domains = config.domains();
            let mut only = domains.keys();
            match (only.next(), only.next()) {
                (Some(only), None) => only.as_str().to_owned(),
                _ => segments.next().unwrap_or_default().to_owned(),
            }
        }
    };
    if domain.is_empty() || event.is_empty() {
        return Err(WebhookRejection::Path);
    }
    Ok((domain, event))
}

impl<S> FromRequest<S> for VerifiedPowensWebhook
where
    WebhookConfig: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = WebhookRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let config = WebhookConfig::from_ref(state);
        let (mut parts, body) = request.into_parts();
        Self::extract(&config, &mut parts, body).await
    }
}
