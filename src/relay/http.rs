//! The HTTP side: `POST /powens-webhook/{domain}/{event}` and the probes.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use tokio::sync::Semaphore;

use super::config::{DomainPolicy, RelayConfig};
use super::ops::{self, Metrics, Outcome, Reason, SignedOver};
use super::publish::{Outgoing, PublishError, Publisher};
use crate::domain::{Domain, Event};
use crate::encoding::{self, ContentEncoding, EncodingError};
use crate::headers::{HeaderError, PowensHeaders};
use crate::message::{MessageError, TealMessage, WebhookRequest};
use crate::time::IsoDateTime;
use crate::verify::VerifyError;

/// `Retry-After` (seconds) when too many webhooks are in flight.
const RETRY_AFTER_OVERLOADED: u32 = 1;
/// `Retry-After` (seconds) when the broker is unavailable.
const RETRY_AFTER_UNAVAILABLE: u32 = 5;
/// Most output a gzip body may decompress to on an async worker (about a millisecond of
/// work); one that could produce more is decompressed on a blocking thread, so that a
/// small "gzip bomb" does not hold up other requests.
const INLINE_GUNZIP_OUTPUT: usize = 1024 * 1024;
/// Deflate's largest expansion (bytes out per byte in).
const DEFLATE_MAX_RATIO: usize = 1032;

type Domains = HashMap<Domain, DomainPolicy>;

/// What the router needs: the domains, limits, the publisher and the metrics.
#[derive(Clone)]
pub struct AppState {
    /// Replaced whole when secrets are re-read (SIGHUP); a request keeps the map it
    /// started with.
    domains: Arc<RwLock<Arc<Domains>>>,
    public_path_prefix: Arc<str>,
    body_limit: usize,
    read_timeout: Duration,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    exchange: Arc<str>,
    publisher: Arc<dyn Publisher>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("domains", &self.domains().keys().collect::<Vec<_>>())
            .field("public_path_prefix", &self.public_path_prefix)
            .field("body_limit", &self.body_limit)
            .field("read_timeout", &self.read_timeout)
            .field("max_in_flight", &self.max_in_flight)
            .field("exchange", &self.exchange)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The state for `config`, publishing with `publisher`.
    pub fn new(config: &RelayConfig, publisher: Arc<dyn Publisher>) -> Self {
        Self {
            domains: Arc::new(RwLock::new(Arc::new(
                config.domains.clone().into_iter().collect(),
            ))),
            public_path_prefix: config.public_path_prefix.as_str().into(),
            body_limit: config.body_limit,
            read_timeout: config.read_timeout,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            max_in_flight: config.max_in_flight,
            exchange: config.webhook_exchange().into(),
            publisher,
            metrics: Arc::new(Metrics::default()),
        }
    }

    /// The domains served now.
    fn domains(&self) -> Arc<Domains> {
        self.domains
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the domains and their key rings (after [`RelayConfig::reload_secrets`]);
    /// requests already being verified finish with the old ones.
    pub fn set_domains(&self, domains: BTreeMap<Domain, DomainPolicy>) {
        *self.domains.write().unwrap_or_else(PoisonError::into_inner) =
            Arc::new(domains.into_iter().collect());
    }

    /// The metrics this state records.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}

/// The relay's routes. Tests drive it with `tower::ServiceExt::oneshot`.
///
/// It must run on a Tokio runtime with timers enabled (`#[tokio::main]` has them; a
/// `Builder` needs `enable_time`): body reads are timed. The per-connection limits
/// (head size and time-out, connection cap) are the server's, in [`super::Relay::run`];
/// an application serving this router itself should set its own.
pub fn router(state: AppState) -> Router {
    let metrics = state.metrics.clone();
    Router::new()
        .route("/powens-webhook/{domain}/{event}", post(webhook))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler))
        .fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(metrics, ops::track))
}

/// A refusal: a status, a one-line `text/plain` reason, and the outcome label.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    outcome: Outcome,
    reason: Cow<'static, str>,
    retry_after: Option<u32>,
}

impl Refusal {
    fn new(status: StatusCode, outcome: Outcome, reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            outcome,
            reason: reason.into(),
            retry_after: None,
        }
    }

    /// A 503: Powens should try again in `retry_after` seconds.
    fn unavailable(outcome: Outcome, reason: String, retry_after: u32) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, outcome, reason)
        }
    }

    fn malformed(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Outcome::Malformed, reason)
    }

    fn unauthorized(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, Outcome::Unauthorized, reason)
    }

    fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Outcome::TooLarge,
            format!("the body exceeds the relay's limit of {limit} bytes"),
        )
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}\n", self.reason),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        response.extensions_mut().insert(self.outcome);
        // The request's log line (ops::track) gives the reason.
        response.extensions_mut().insert(Reason(self.reason));
        response
    }
}

impl From<HeaderError> for Refusal {
    fn from(error: HeaderError) -> Self {
        match error {
            HeaderError::NoAuthentication
            | HeaderError::MissingSignature
            | HeaderError::MissingSignatureDate => Self::unauthorized(error.to_string()),
            _ => Self::malformed(error.to_string()),
        }
    }
}

impl From<PublishError> for Refusal {
    fn from(error: PublishError) -> Self {
        let reason = match error {
            // The detail goes to the log, not to Powens.
            PublishError::Failed(detail) => {
                tracing::error!(%detail, "publish failed");
                "the message broker is unavailable".into()
            }
            other => other.to_string(),
        };
        Self::unavailable(
            Outcome::Unavailable,
            format!("{reason}; retry later"),
            RETRY_AFTER_UNAVAILABLE,
        )
    }
}

impl From<EncodingError> for Refusal {
    fn from(error: EncodingError) -> Self {
        let (status, outcome) = match error {
            EncodingError::Unsupported => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Outcome::UnsupportedEncoding,
            ),
            EncodingError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, Outcome::TooLarge),
            _ => (StatusCode::BAD_REQUEST, Outcome::Malformed),
        };
        Self::new(status, outcome, error.to_string())
    }
}

async fn webhook(
    State(app): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Response {
    // Over the cap, refuse at once: queueing would only make Powens time out instead.
    let Ok(_slot) = app.in_flight.clone().try_acquire_owned() else {
        return Refusal::unavailable(
            Outcome::Overloaded,
            format!(
                "too many webhooks in flight (max_in_flight = {}); retry later",
                app.max_in_flight
            ),
            RETRY_AFTER_OVERLOADED,
        )
        .into_response();
    };
    match handle_webhook(&app, path, request).await {
        Ok(signed_over) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            response.extensions_mut().insert(Outcome::Published);
            if let Some(signed_over) = signed_over {
                response.extensions_mut().insert(signed_over);
            }
            response
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// Checks, verifies and publishes one webhook; for a gzip body, says which bytes the
/// signature matched.
async fn handle_webhook(
    app: &AppState,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Result<Option<SignedOver>, Refusal> {
    let Path((domain, event)) =
        path.map_err(|_| Refusal::malformed("the path is not /powens-webhook/{domain}/{event}"))?;
    let domain = Domain::parse(&domain).map_err(|e| Refusal::malformed(e.to_string()))?;
    let domains = app.domains();
    let policy = domains.get(&domain).ok_or_else(|| {
        Refusal::new(
            StatusCode::NOT_FOUND,
            Outcome::NotFound,
            format!("no webhook is configured for {domain}"),
        )
    })?;
    let event = Event::parse(&event).map_err(|e| Refusal::malformed(e.to_string()))?;

    let (parts, body) = request.into_parts();
    let encoding = ContentEncoding::from_headers(&parts.headers)?;
    // Refuse an announced oversize body before reading any of it.
    if let Some(length) = parts.headers.get(header::CONTENT_LENGTH) {
        let length = length
            .to_str()
            .ok()
            .and_then(|l| l.parse::<u64>().ok())
            .ok_or_else(|| Refusal::malformed("Content-Length is not a number"))?;
        if usize::try_from(length).map_or(true, |l| l > app.body_limit) {
            return Err(Refusal::too_large(app.body_limit));
        }
    }
    let headers = PowensHeaders::from_header_map(&parts.headers)?;
    if matches!(policy, DomainPolicy::Verify(_)) && headers.hmac().is_none() {
        return Err(Refusal::unauthorized(
            "BI-Signature and BI-Signature-Date are required for this domain",
        ));
    }
    let received = tokio::time::timeout(app.read_timeout, read_body(body, app.body_limit))
        .await
        .map_err(|_| {
            Refusal::new(
                StatusCode::REQUEST_TIMEOUT,
                Outcome::TimedOut,
                format!(
                    "the body did not arrive within {} s",
                    app.read_timeout.as_secs()
                ),
            )
        })??;
    let body = match encoding {
        ContentEncoding::Identity => received.clone(),
        ContentEncoding::Gzip => gunzip(received.clone(), app.body_limit).await?,
    };
    if body.is_empty() {
        return Err(Refusal::malformed("the webhook body is empty"));
    }

    let endpoint: Cow<'_, str> = if app.public_path_prefix.is_empty() {
        Cow::Borrowed(parts.uri.path())
    } else {
        Cow::Owned(format!("{}{}", app.public_path_prefix, parts.uri.path()))
    };
    let request = WebhookRequest {
        method: parts.method.as_str(),
        endpoint: &endpoint,
        domain: &domain,
        event: &event,
        headers: &headers,
        body: &body,
    };
    let now = Utc::now();
    let timestamp = IsoDateTime::naive_utc(now);
    let gzipped = encoding == ContentEncoding::Gzip;
    let mut signed_over = gzipped.then_some(SignedOver("decompressed"));
    let message = match policy {
        DomainPolicy::Verify(verifier) => match request.verify(verifier, now) {
            Ok(verified) => verified.to_message(timestamp),
            // A sender may have signed the body it sent rather than the payload: try
            // the bytes as received. They are authentic, and so is what they
            // decompress to; the message carries the decompressed payload.
            Err(VerifyError::SignatureMismatch { .. }) if gzipped => {
                WebhookRequest {
                    body: &received,
                    ..request
                }
                .verify(verifier, now)
                .map_err(|e| Refusal::unauthorized(e.to_string()))?;
                signed_over = Some(SignedOver("compressed"));
                request.to_unverified_message(timestamp)
            }
            Err(e) => return Err(Refusal::unauthorized(e.to_string())),
        },
        DomainPolicy::Forward => request.to_unverified_message(timestamp),
    }
    .map_err(|e: MessageError| Refusal::malformed(e.to_string()))?;

    let outgoing = Outgoing {
        exchange: app.exchange.to_string(),
        routing_key: message.routing_key().to_owned(),
        message_id: message.id_webhook_data().map(|id| id.to_string()),
        body: message.to_json(),
    };
    let started = Instant::now();
    app.publisher.publish(&outgoing).await?;
    app.metrics.observe_confirm(started.elapsed());
    tracing::debug!(event = %event, message_id = ?outgoing.message_id, "published");
    Ok(signed_over)
}

/// Decompresses a gzip body within `limit`; on a blocking thread when it could expand to
/// more than [`INLINE_GUNZIP_OUTPUT`].
async fn gunzip(compressed: axum::body::Bytes, limit: usize) -> Result<axum::body::Bytes, Refusal> {
    let most = compressed
        .len()
        .saturating_mul(DEFLATE_MAX_RATIO)
        .min(limit);
    let decoded = if most <= INLINE_GUNZIP_OUTPUT {
        encoding::gunzip(&compressed, limit)
    } else {
        tokio::task::spawn_blocking(move || encoding::gunzip(&compressed, limit))
            .await
            .map_err(|_| Refusal::malformed("the body could not be decompressed"))?
    };
    Ok(decoded?.into())
}

/// Reads at most `limit` bytes: more is a 413, whether or not a `Content-Length` said so.
async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, Refusal> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let over_limit = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if over_limit {
            Refusal::too_large(limit)
        } else {
            Refusal::malformed("the body could not be read")
        }
    })
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(app): State<AppState>) -> Response {
    if app.publisher.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the message broker is unavailable\n",
        )
            .into_response()
    }
}

async fn metrics_handler(State(app): State<AppState>) -> Response {
    ops::metrics_response(&app.metrics, app.publisher.is_ready())
}

async fn not_found() -> Response {
    Refusal::new(StatusCode::NOT_FOUND, Outcome::NotFound, "not found").into_response()
}
