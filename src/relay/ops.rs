//! Operations: Prometheus metrics, the per-request log line and id, and the shutdown
//! signal.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::axum::SignedOver;

/// What became of a request: a metric label and a log field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Published and confirmed (or written, without a broker).
    Published,
    /// A probe or metrics request answered.
    Served,
    /// Path, headers or body malformed (400).
    Malformed,
    /// Missing, wrong or stale signature (401).
    Unauthorized,
    /// Domain not configured, or no such route (404).
    NotFound,
    /// Body over the limit (413).
    TooLarge,
    /// A `Content-Encoding` other than gzip (415).
    UnsupportedEncoding,
    /// The body did not arrive within the read time-out (408).
    TimedOut,
    /// Too many webhooks in flight (503 with `Retry-After`).
    Overloaded,
    /// The broker did not confirm (503).
    Unavailable,
    /// Anything else (e.g. 405).
    Other,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Served => "served",
            Self::Malformed => "malformed",
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not_found",
            Self::TooLarge => "too_large",
            Self::UnsupportedEncoding => "unsupported_encoding",
            Self::TimedOut => "timed_out",
            Self::Overloaded => "overloaded",
            Self::Unavailable => "unavailable",
            Self::Other => "other",
        }
    }
}

/// Why a request was refused, for its log line: the text sent back, which never quotes a
/// secret, a signature or a token.
#[derive(Debug, Clone)]
pub struct Reason(pub String);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    outcome: String,
}

/// The broker's state as `/readyz` and the metrics show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Whether a message could be published (or received) now.
    pub ready: bool,
    /// The broker node in use, its URL without the password.
    pub node: Option<String>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    node: String,
}

/// The relay's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    confirm_seconds: Histogram,
    in_flight: Gauge,
    broker_up: Gauge,
    broker_node: Family<NodeLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut root = Registry::default();
        let registry = root.sub_registry_with_prefix("powens_relay");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "HTTP requests by route and outcome",
            requests.clone(),
        );
        // 0.5 ms to ~16 s.
        let confirm_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "publish_confirm_seconds",
            "Time from publishing a message to the broker's confirm",
            confirm_seconds.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "in_flight_requests",
            "Webhook requests being handled",
            in_flight.clone(),
        );
        let broker_up = Gauge::default();
        registry.register(
            "broker_connected",
            "1 while the broker connection is usable, else 0",
            broker_up.clone(),
        );
        let broker_node = Family::<NodeLabels, Gauge>::default();
        registry.register(
            "broker_node",
            "1 for the broker node in use (of the nodes of amqp_url), none while disconnected",
            broker_node.clone(),
        );
        Self {
            registry: root,
            requests,
            confirm_seconds,
            in_flight,
            broker_up,
            broker_node,
        }
    }
}

impl Metrics {
    /// Exposes the dispatcher's metrics too.
    pub(crate) fn add_dispatcher(&mut self, dispatcher: &super::dispatch::DispatcherMetrics) {
        dispatcher.register(&mut self.registry);
    }

    /// Records how long a publish took to be confirmed.
    pub fn observe_confirm(&self, elapsed: Duration) {
        self.confirm_seconds.observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition, with the broker state as of now.
    pub fn render(&self, broker: &Readiness) -> String {
        self.broker_up.set(i64::from(broker.ready));
        self.broker_node.clear();
        if let Some(node) = &broker.node {
            self.broker_node
                .get_or_create(&NodeLabels { node: node.clone() })
                .set(1);
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// The request id: the proxy's `x-request-id` when it is short visible ASCII, else a
/// new one.
fn request_id(request: &Request) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    if let Some(id) = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
    {
        return id.to_owned();
    }
    let base = *BASE.get_or_init(|| RandomState::new().hash_one(std::process::id()));
    format!(
        "{:016x}",
        base.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
    )
}

tokio::task_local! {
    /// The id of the request the current task serves.
    static REQUEST_ID: Arc<str>;
}

/// The id of the request the current task serves (`None` outside a request), for the
/// events logged on the way: `request_id = current_request_id().as_deref()`.
///
/// A task-local value rather than a `tracing` span: a span per request, its fields
/// formatted when it opens and again into every line, cost the relay 6–10 µs of CPU per
/// webhook (`docs/performance.md`), and only a few events inside a request, on the
/// error paths, need the id.
pub(crate) fn current_request_id() -> Option<Arc<str>> {
    REQUEST_ID.try_with(Arc::clone).ok()
}

/// Middleware: the request id (for the events inside the request, see
/// [`current_request_id`]), the in-flight gauge, one log line per request (never a
/// header or body) and the requests counter.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let id: Arc<str> = request_id(&request).into();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let is_webhook = route.starts_with("/powens-webhook/");
    let listener = matches!(
        route.as_str(),
        "/callback" | "/errback" | "/raw-callback" | "/openid-ciba-callback"
    );
    if is_webhook {
        metrics.in_flight.inc();
    }
    let started = Instant::now();
    let mut response = REQUEST_ID.scope(Arc::clone(&id), next.run(request)).await;
    if is_webhook {
        metrics.in_flight.dec();
    }
    let outcome =
        response
            .extensions()
            .get::<Outcome>()
            .copied()
            .unwrap_or(match response.status() {
                StatusCode::NOT_FOUND => Outcome::NotFound,
                s if s.is_success() => Outcome::Served,
                _ => Outcome::Other,
            });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    let status = response.status().as_u16();
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let reason = response.extensions().get::<Reason>().map(|r| r.0.as_str());
    let signed_over = response
        .extensions()
        .get::<SignedOver>()
        .map(|s| s.as_str());
    let what = if is_webhook { "webhook" } else { "callback" };
    let request_id = &*id;
    if !is_webhook && !listener {
        tracing::debug!(request_id, %method, route, status, micros, "request handled");
    } else if response.status().is_server_error() {
        tracing::warn!(
            request_id,
            %method,
            route,
            status,
            outcome = outcome.label(),
            reason,
            micros,
            "{what} handled"
        );
    } else {
        tracing::info!(
            request_id,
            %method,
            route,
            status,
            outcome = outcome.label(),
            reason,
            signed_over,
            micros,
            "{what} handled"
        );
    }
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            outcome: outcome.label().to_owned(),
        })
        .inc();
    response
}

/// `GET /metrics`.
pub fn metrics_response(metrics: &Metrics, broker: &Readiness) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(broker),
    )
        .into_response()
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received: finishing in-flight requests");
}
