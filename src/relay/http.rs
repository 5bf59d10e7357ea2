//! The HTTP side: `POST /powens-webhook/{domain}/{event}` and the probes.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;

use super::config::{DomainPolicy, RelayConfig};
use super::ops::{self, Metrics, Outcome, Reason};
use super::publish::{Outgoing, PublishError, Publisher};
use crate::domain::{Domain, Event};
use crate::headers::{HeaderError, PowensHeaders};
use crate::message::{MessageError, TealMessage, WebhookRequest};
use crate::time::IsoDateTime;

/// What the router needs: the domains, limits, the publisher and the metrics.
#[derive(Clone)]
pub struct AppState {
    domains: Arc<HashMap<Domain, DomainPolicy>>,
    public_path_prefix: Arc<str>,
    body_limit: usize,
    exchange: Arc<str>,
    publisher: Arc<dyn Publisher>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("domains", &self.domains.keys().collect::<Vec<_>>())
            .field("public_path_prefix", &self.public_path_prefix)
            .field("body_limit", &self.body_limit)
            .field("exchange", &self.exchange)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The state for `config`, publishing with `publisher`.
    pub fn new(config: &RelayConfig, publisher: Arc<dyn Publisher>) -> Self {
        Self {
            domains: Arc::new(config.domains.clone().into_iter().collect()),
            public_path_prefix: config.public_path_prefix.as_str().into(),
            body_limit: config.body_limit,
            exchange: config.webhook_exchange().into(),
            publisher,
            metrics: Arc::new(Metrics::default()),
        }
    }

    /// The metrics this state records.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}

/// The relay's routes. Tests drive it with `tower::ServiceExt::oneshot`.
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
}

impl Refusal {
    fn new(status: StatusCode, outcome: Outcome, reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            outcome,
            reason: reason.into(),
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
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Outcome::Unavailable,
            format!("{reason}; retry later"),
        )
    }
}

async fn webhook(
    State(app): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Response {
    match handle_webhook(&app, path, request).await {
        Ok(()) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            response.extensions_mut().insert(Outcome::Published);
            response
        }
        Err(refusal) => refusal.into_response(),
    }
}

async fn handle_webhook(
    app: &AppState,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Result<(), Refusal> {
    let Path((domain, event)) =
        path.map_err(|_| Refusal::malformed("the path is not /powens-webhook/{domain}/{event}"))?;
    let domain = Domain::parse(&domain).map_err(|e| Refusal::malformed(e.to_string()))?;
    let policy = app.domains.get(&domain).ok_or_else(|| {
        Refusal::new(
            StatusCode::NOT_FOUND,
            Outcome::NotFound,
            format!("no webhook is configured for {domain}"),
        )
    })?;
    let event = Event::parse(&event).map_err(|e| Refusal::malformed(e.to_string()))?;

    let (parts, body) = request.into_parts();
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
    let body = read_body(body, app.body_limit).await?;

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
    let message = match policy {
        DomainPolicy::Verify(verifier) => request
            .verify(verifier, now)
            .map_err(|e| Refusal::unauthorized(e.to_string()))?
            .to_message(timestamp),
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
    Ok(())
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
