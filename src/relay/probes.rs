//! The probes of both servers: `GET /healthz` (the process is up), `GET /readyz` (200
//! only while messages can flow) and `GET /metrics` (Prometheus text, with the broker's
//! state as of the scrape).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use axum::http::StatusCode;

use super::reply::{Readiness, Refusal};

/// Whether the server's parts can do their work now.
pub(crate) type ReadinessCheck = Arc<dyn Fn() -> Readiness + Send + Sync>;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    node: String,
}

/// `powens_relay_broker_connected` and `powens_relay_broker_node`, set from the
/// readiness at each scrape.
#[derive(Debug, Default)]
pub(crate) struct BrokerGauges {
    up: Gauge,
    node: Family<NodeLabels, Gauge>,
}

impl BrokerGauges {
    /// The gauges, registered in `registry` (under `powens_relay`).
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let gauges = Self::default();
        let registry = registry.sub_registry_with_prefix("powens_relay");
        registry.register(
            "broker_connected",
            "1 while the broker connection is usable, else 0",
            gauges.up.clone(),
        );
        registry.register(
            "broker_node",
            "1 for the broker node in use (of the nodes of amqp_url), none while disconnected",
            gauges.node.clone(),
        );
        gauges
    }

    fn set(&self, readiness: &Readiness) {
        self.up.set(i64::from(readiness.ready));
        self.node.clear();
        if let Some(node) = &readiness.node {
            self.node
                .get_or_create(&NodeLabels { node: node.clone() })
                .set(1);
        }
    }
}

struct Probes {
    registry: Registry,
    broker: BrokerGauges,
    readiness: ReadinessCheck,
}

/// The probe routes, rendering `registry` (in which `broker` is registered) and asking
/// `readiness`.
pub(crate) fn routes(
    registry: Registry,
    broker: BrokerGauges,
    readiness: ReadinessCheck,
) -> Router {
    let probes = Arc::new(Probes {
        registry,
        broker,
        readiness,
    });
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(probes)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(probes): State<Arc<Probes>>) -> Response {
    (probes.readiness)().response()
}

async fn metrics(State(probes): State<Arc<Probes>>) -> Response {
    probes.broker.set(&(probes.readiness)());
    let mut text = String::new();
    if let Err(e) = encode(&mut text, &probes.registry) {
        tracing::error!(error = %e, "the metrics could not be encoded");
        return Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the metrics could not be encoded",
        )
        .into_response();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
