//! The webhook route: `POST /powens-webhook/{domain}/{event}`, the extractor's pipeline
//! then publishing, answered 204 only once the publisher confirmed.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;

use super::broker::Exchanges;
use super::diagnose::{Diagnoser, DiagnosisSettings};
use super::ops::current_request_id;
use super::publish::{Delivered, Exchange, Outgoing, Publisher, WebhookFacts};
use super::reply::{Outcome, RETRY_AFTER_OVERLOADED, Refusal};
use crate::amq::TealExchange;
use crate::axum::{Authenticity, Refused, SignedOver, VerifiedPowensWebhook, WebhookConfig};
use crate::message::TealMessage;

/// The webhook route's settings.
#[derive(Debug, Clone)]
pub(crate) struct WebhookSettings {
    /// The pipeline's: domains, limits, path prefix.
    pub(crate) webhooks: WebhookConfig,
    /// Most webhook requests handled at once; more get 503.
    pub(crate) max_in_flight: usize,
    /// How refused signatures are diagnosed.
    pub(crate) diagnosis: DiagnosisSettings,
}

/// The webhook route, with what it publishes to.
pub(crate) struct WebhookRoute {
    webhooks: WebhookConfig,
    in_flight: Semaphore,
    max_in_flight: usize,
    exchange: Exchange,
    publisher: Arc<dyn Publisher>,
    confirm_seconds: Histogram,
    diagnoser: Diagnoser,
}

impl WebhookRoute {
    /// The route for `settings`, publishing on the webhook exchange of `exchanges` with
    /// `publisher`; its metric registered in `registry`.
    pub(crate) fn new(
        settings: &WebhookSettings,
        exchanges: &Exchanges,
        publisher: Arc<dyn Publisher>,
        registry: &mut Registry,
    ) -> Self {
        // 0.5 ms to ~16 s.
        let confirm_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.sub_registry_with_prefix("powens_relay").register(
            "publish_confirm_seconds",
            "Time from publishing a message to the broker's confirm",
            confirm_seconds.clone(),
        );
        Self {
            diagnoser: Diagnoser::new(&settings.diagnosis, registry),
            webhooks: settings.webhooks.clone(),
            in_flight: Semaphore::new(settings.max_in_flight),
            max_in_flight: settings.max_in_flight,
            exchange: Exchange::of(TealExchange::PowensDomainWebhooks, exchanges),
            publisher,
            confirm_seconds,
        }
    }

    /// `POST /powens-webhook/{domain}/{event}`.
    ///
    /// It must run on a Tokio runtime with timers enabled: body reads are timed.
    pub(crate) fn routes(self) -> Router {
        Router::new()
            .route("/powens-webhook/{domain}/{event}", post(webhook))
            .with_state(Arc::new(self))
    }
}

async fn webhook(State(route): State<Arc<WebhookRoute>>, request: Request) -> Response {
    // Over the cap, refuse at once: queueing would only make Powens time out instead.
    let Ok(_slot) = route.in_flight.try_acquire() else {
        return Refusal::unavailable(
            Outcome::Overloaded,
            format!(
                "too many webhooks in flight (max_in_flight = {}); retry later",
                route.max_in_flight
            ),
            RETRY_AFTER_OVERLOADED,
        )
        .into_response();
    };
    match relay_webhook(&route, request).await {
        Ok((signed_over, delivered, facts)) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            response.extensions_mut().insert(Outcome::Published);
            response.extensions_mut().insert(delivered);
            // For the console.
            response.extensions_mut().insert(facts);
            if let Some(signed_over) = signed_over {
                response.extensions_mut().insert(signed_over);
            }
            response
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// The extractor's pipeline, then publishing. The payload is held once at a time
/// (request body, then message, then its JSON), so that a large webhook costs about
/// twice its size, not four times.
async fn relay_webhook(
    route: &WebhookRoute,
    request: Request,
) -> Result<(Option<SignedOver>, Delivered, WebhookFacts), Refusal> {
    let (mut parts, body) = request.into_parts();
    let webhook =
        match VerifiedPowensWebhook::extract_with_evidence(&route.webhooks, &mut parts, body).await
        {
            Ok(webhook) => webhook,
            Err(Refused {
                rejection,
                evidence,
            }) => {
                let refusal = Refusal::from(rejection);
                let diagnosis = match evidence {
                    Some(evidence) => route.diagnoser.diagnose(evidence).await,
                    None => None,
                };
                return Err(match diagnosis {
                    Some(diagnosis) => refusal.with_diagnosis(diagnosis),
                    None => refusal,
                });
            }
        };
    let signed_over = webhook.signed_over();
    let authenticity = webhook.authenticity();
    let message = webhook.into_message()?;
    // Read once, here: the message id, and what follows the webhook (logs).
    let id_webhook_data = message.id_webhook_data();
    let facts = WebhookFacts {
        event: message.event.clone(),
        id_webhook_data,
        authenticity,
    };
    let outgoing = Outgoing {
        exchange: route.exchange.clone(),
        routing_key: message.routing_key().to_owned(),
        // A journal publishes again with the same id: a body without
        // id_webhook_data (CFONB) gets one of its own, kept with it.
        message_id: id_webhook_data.map(|id| id.to_string()).or_else(|| {
            route
                .publisher
                .assigns_message_ids()
                .then(|| format!("{:032x}", fastrand::u128(..)))
        }),
        body: message.to_json(),
        webhook: Some(facts.clone()),
        replay: false,
    };
    drop(message);
    let started = Instant::now();
    let delivered = route.publisher.publish(&outgoing).await?;
    if delivered == Delivered::Confirmed {
        route
            .confirm_seconds
            .observe(started.elapsed().as_secs_f64());
    }
    tracing::debug!(
        request_id = current_request_id().as_deref(),
        event = %facts.event,
        id_webhook_data = facts.id_webhook_data,
        verified = matches!(facts.authenticity, Authenticity::Verified(_)),
        delivered = delivered.label(),
        "published"
    );
    Ok((signed_over, delivered, facts))
}
