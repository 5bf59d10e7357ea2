//! The HTTP side: `POST /powens-webhook/{domain}/{event}` and the probes.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{FromRef, FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::Semaphore;

use super::callback::store::CallbackStore;
use super::config::RelayConfig;
use super::listener::{self, Listener};
use super::ops::{self, Metrics, Outcome, Readiness, Reason};
use super::publish::{Outgoing, PublishError, Publisher};
use crate::amq::TealExchange;
use crate::axum::{VerifiedPowensWebhook, WebhookConfig, WebhookRejection, plain_text};
use crate::message::TealMessage;

/// `Retry-After` (seconds) when too many webhooks are in flight.
const RETRY_AFTER_OVERLOADED: u32 = 1;
/// `Retry-After` (seconds) when the broker is unavailable.
pub(crate) const RETRY_AFTER_UNAVAILABLE: u32 = 5;

/// What the router needs: the webhook pipeline's configuration, the in-flight cap, the
/// publisher and the metrics.
#[derive(Clone)]
pub struct AppState {
    webhooks: WebhookConfig,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    exchange: Arc<str>,
    publisher: Arc<dyn Publisher>,
    metrics: Arc<Metrics>,
    listener: Option<Arc<Listener>>,
    dispatcher: Option<(axum::Router, Arc<dyn Fn() -> bool + Send + Sync>)>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("webhooks", &self.webhooks)
            .field("max_in_flight", &self.max_in_flight)
            .field("exchange", &self.exchange)
            .finish_non_exhaustive()
    }
}

impl FromRef<AppState> for WebhookConfig {
    fn from_ref(state: &AppState) -> Self {
        state.webhooks.clone()
    }
}

impl AppState {
    /// The state for `config`, publishing with `publisher`.
    pub fn new(config: &RelayConfig, publisher: Arc<dyn Publisher>) -> Self {
        Self {
            webhooks: config.webhooks().clone(),
            in_flight: Arc::new(Semaphore::new(config.max_in_flight())),
            max_in_flight: config.max_in_flight(),
            exchange: config.webhook_exchange().into(),
            publisher,
            metrics: Arc::new(Metrics::default()),
            listener: None,
            dispatcher: None,
        }
    }

    /// Serves the dispatcher's routes too (`/websocket` and its metadata), with its
    /// metrics; `/readyz` then also needs its broker consumer.
    #[must_use]
    pub fn with_dispatcher(mut self, dispatcher: &super::dispatch::Dispatcher) -> Self {
        match Arc::get_mut(&mut self.metrics) {
            Some(metrics) => metrics.add_dispatcher(&dispatcher.metrics()),
            None => tracing::warn!("the dispatcher's metrics cannot be added to a shared registry"),
        }
        let ready = dispatcher.readiness();
        self.dispatcher = Some((dispatcher.routes(), Arc::new(ready)));
        self
    }

    /// Ready when the publisher is and, if hosted, the dispatcher's consumer is; the
    /// node named is the publisher's.
    fn readiness(&self) -> Readiness {
        Readiness {
            ready: self.publisher.is_ready()
                && self.dispatcher.as_ref().is_none_or(|(_, ready)| ready()),
            node: self.publisher.broker_node(),
        }
    }

    /// Serves the listener's routes too (`/callback`, `/errback`, `/raw-callback`,
    /// `/openid-ciba-callback`), reading callbacks from `store`; without this they
    /// answer 404.
    #[must_use]
    pub fn with_listener(mut self, config: &RelayConfig, store: Arc<dyn CallbackStore>) -> Self {
        let exchanges = config.exchanges();
        self.listener = Some(Arc::new(Listener {
            store,
            public_url: config.public_url().clone(),
            one_shot: config.callback_one_shot(),
            fallback_hosts: config.redirect_fallback_hosts().to_vec(),
            callbacks_exchange: exchanges.name(TealExchange::Callbacks),
            ciba_exchange: exchanges.name(TealExchange::OpenIdCibaCallbacks),
        }));
        self
    }

    pub(crate) fn listener(&self) -> Option<&Listener> {
        self.listener.as_deref()
    }

    pub(crate) fn publisher(&self) -> &dyn Publisher {
        self.publisher.as_ref()
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
    let dispatcher = state.dispatcher.as_ref().map(|(routes, _)| routes.clone());
    let router = Router::new()
        .route("/powens-webhook/{domain}/{event}", post(webhook))
        .route("/callback", get(listener::callback))
        .route("/errback", get(listener::callback))
        .route("/raw-callback", get(listener::raw_callback))
        .route("/openid-ciba-callback", post(listener::ciba))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler))
        .fallback(not_found)
        .with_state(state);
    let router = match dispatcher {
        Some(routes) => router.merge(routes),
        None => router,
    };
    router.layer(axum::middleware::from_fn_with_state(metrics, ops::track))
}

/// A refusal: a status, a one-line `text/plain` reason, and the outcome label. One
/// shape for the webhook route and the listener's routes.
#[derive(Debug)]
pub(crate) struct Refusal {
    status: StatusCode,
    outcome: Outcome,
    reason: String,
    retry_after: Option<u32>,
    /// The `WWW-Authenticate` challenge of a 401.
    challenge: Option<&'static str>,
}

impl Refusal {
    /// A refusal with `status`, labelled by it.
    pub(crate) fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        let outcome = match status {
            StatusCode::UNAUTHORIZED => Outcome::Unauthorized,
            StatusCode::NOT_FOUND => Outcome::NotFound,
            StatusCode::PAYLOAD_TOO_LARGE => Outcome::TooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Outcome::UnsupportedEncoding,
            StatusCode::REQUEST_TIMEOUT => Outcome::TimedOut,
            StatusCode::SERVICE_UNAVAILABLE => Outcome::Unavailable,
            _ => Outcome::Malformed,
        };
        Self {
            status,
            outcome,
            reason: reason.into(),
            retry_after: None,
            challenge: None,
        }
    }

    /// A 503: the client should try again in `retry_after` seconds.
    pub(crate) fn unavailable(outcome: Outcome, reason: String, retry_after: u32) -> Self {
        Self {
            outcome,
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, reason)
        }
    }

    /// With a `WWW-Authenticate: <challenge>` header (a 401).
    pub(crate) fn with_challenge(mut self, challenge: &'static str) -> Self {
        self.challenge = Some(challenge);
        self
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = plain_text(self.status, &self.reason, self.retry_after);
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(challenge),
            );
        }
        response.extensions_mut().insert(self.outcome);
        // The request's log line (ops::track) gives the reason.
        response.extensions_mut().insert(Reason(self.reason));
        response
    }
}

impl From<WebhookRejection> for Refusal {
    fn from(rejection: WebhookRejection) -> Self {
        Self::new(rejection.status(), rejection.to_string())
    }
}

impl From<PublishError> for Refusal {
    fn from(error: PublishError) -> Self {
        if error.is_broker_fault() {
            // The detail goes to the log, not to Powens.
            tracing::error!(
                request_id = super::ops::current_request_id().as_deref(),
                error = %error,
                "publish failed"
            );
        }
        Self::unavailable(
            Outcome::Unavailable,
            format!("{}; retry later", error.public_reason()),
            RETRY_AFTER_UNAVAILABLE,
        )
    }
}

async fn webhook(State(app): State<AppState>, request: Request) -> Response {
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
    match relay_webhook(&app, request).await {
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

/// The relay's handler: the extractor's pipeline, then publishing. The payload is
/// held once at a time (request body, then message, then its JSON), so that a large
/// webhook costs about twice its size, not four times.
async fn relay_webhook(
    app: &AppState,
    request: Request,
) -> Result<Option<crate::axum::SignedOver>, Refusal> {
    let webhook = VerifiedPowensWebhook::from_request(request, app).await?;
    let signed_over = webhook.signed_over();
    let message = webhook.into_message()?;
    let outgoing = Outgoing {
        exchange: app.exchange.to_string(),
        routing_key: message.routing_key().to_owned(),
        message_id: message.id_webhook_data().map(|id| id.to_string()),
        body: message.to_json(),
    };
    let event = message.event.clone();
    drop(message);
    let started = Instant::now();
    app.publisher.publish(&outgoing).await?;
    app.metrics.observe_confirm(started.elapsed());
    tracing::debug!(
        request_id = super::ops::current_request_id().as_deref(),
        %event,
        message_id = ?outgoing.message_id,
        "published"
    );
    Ok(signed_over)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(app): State<AppState>) -> Response {
    readiness(&app.readiness())
}

/// `/readyz`'s answer: 200 (`ready`, and on a second line the broker node in use, when
/// there is one), or 503 while the broker is unusable.
pub(crate) fn readiness(readiness: &Readiness) -> Response {
    if readiness.ready {
        let body = match &readiness.node {
            Some(node) => format!("ready\nbroker node: {node}\n"),
            None => "ready\n".to_owned(),
        };
        (StatusCode::OK, body).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the message broker is unavailable\n",
        )
            .into_response()
    }
}

async fn metrics_handler(State(app): State<AppState>) -> Response {
    ops::metrics_response(&app.metrics, &app.readiness())
}

/// Any other path: 404, but for TeaL's `&` quirk (`/callback&state=x` with no query is
/// `/callback?state=x`), handled here rather than by a rewrite before routing, which
/// would cost every webhook a layer.
async fn not_found(State(app): State<AppState>, mut request: Request) -> Response {
    let quirk = request.method() == axum::http::Method::GET;
    if let Some(uri) = quirk
        .then(|| listener::fix_ampersand(request.uri()))
        .flatten()
    {
        let raw = uri.path() == "/raw-callback";
        *request.uri_mut() = uri;
        let answer = if raw {
            listener::raw_callback(State(app), request).await
        } else {
            listener::callback(State(app), request).await
        };
        return answer.unwrap_or_else(|refusal| refusal);
    }
    log_unknown_path(request.method(), request.uri().path());
    Refusal::new(StatusCode::NOT_FOUND, "not found").into_response()
}

/// One line for a request to no route, at most one a second (a scanner must not flood
/// the log): a webhook URL mistyped at Powens shows up here. The path only, shortened;
/// never the query.
fn log_unknown_path(method: &axum::http::Method, path: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    static SKIPPED: AtomicU64 = AtomicU64::new(0);
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or_default();
    let last = LAST.load(Ordering::Relaxed);
    if now <= last
        || LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        SKIPPED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let shown: String = path.chars().take(120).collect();
    tracing::info!(
        %method,
        path = %shown,
        similar_not_logged = SKIPPED.swap(0, Ordering::Relaxed),
        "no route for this path (is the webhook URL configured at Powens right?)"
    );
}
