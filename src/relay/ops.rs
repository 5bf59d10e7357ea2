//! Operations on every request: its id (for the events logged inside it), one log line
//! (never a header or a body), the requests counter and the in-flight gauge; and the
//! line for a request to no route.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::reply::{Delivered, Outcome, Reason, Refusal, SignatureDiagnosis};
use crate::axum::SignedOver;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    outcome: String,
}

/// The metrics of every request: `powens_relay_requests` and
/// `powens_relay_in_flight_requests`.
#[derive(Debug, Default)]
pub(crate) struct RequestMetrics {
    requests: Family<RequestLabels, Counter>,
    in_flight: Gauge,
}

impl RequestMetrics {
    /// The metrics, registered in `registry` (under `powens_relay`).
    pub(crate) fn register(registry: &mut Registry) -> Arc<Self> {
        let metrics = Self::default();
        let registry = registry.sub_registry_with_prefix("powens_relay");
        registry.register(
            "requests",
            "HTTP requests by route and outcome",
            metrics.requests.clone(),
        );
        registry.register(
            "in_flight_requests",
            "Webhook requests being handled",
            metrics.in_flight.clone(),
        );
        Arc::new(metrics)
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
pub(crate) async fn track(
    State(metrics): State<Arc<RequestMetrics>>,
    request: Request,
    next: Next,
) -> Response {
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
    let delivered = response.extensions().get::<Delivered>().map(|d| d.label());
    let diagnosed = response.extensions().get::<SignatureDiagnosis>();
    let diagnosis = diagnosed.map(ToString::to_string);
    let diagnosis_cause = diagnosed.map(SignatureDiagnosis::cause);
    let what = if is_webhook { "webhook" } else { "callback" };
    let request_id = &*id;
    // One line per webhook or callback, at warn when the relay failed it (5xx).
    macro_rules! handled {
        ($level:ident) => {
            tracing::$level!(
                request_id,
                %method,
                route,
                status,
                outcome = outcome.label(),
                reason,
                diagnosis,
                diagnosis_cause,
                signed_over,
                delivered,
                micros,
                "{what} handled"
            )
        };
    }
    if !is_webhook && !listener {
        tracing::debug!(request_id, %method, route, status, micros, "request handled");
    } else if response.status().is_server_error() {
        handled!(warn);
    } else {
        handled!(info);
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

/// A request to no route: 404, and one line in the log, at most one a second (a
/// scanner must not flood the log): a webhook URL mistyped at Powens shows up here. The
/// path only, shortened; never the query.
pub(crate) fn no_route(method: &Method, path: &str) -> Response {
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
    } else {
        let shown: String = path.chars().take(120).collect();
        tracing::info!(
            %method,
            path = %shown,
            similar_not_logged = SKIPPED.swap(0, Ordering::Relaxed),
            "no route for this path (is the webhook URL configured at Powens right?)"
        );
    }
    Refusal::not_found().into_response()
}
