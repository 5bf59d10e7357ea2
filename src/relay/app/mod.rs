//! The composition roots: `serve` ([`Relay`]) and `dispatch` ([`Dispatcher`]). Each
//! reads the whole configuration, builds its parts from their own settings, hands each
//! the metrics registry to register in, and composes their routes with the probes and
//! the request middleware. No part imports another's routes or the configuration.

mod dispatch;
mod serve;

pub use dispatch::Dispatcher;
#[cfg(feature = "test-util")]
pub(crate) use serve::router;
pub use serve::{Relay, RelayError};

use std::sync::Arc;

use axum::Router;
use prometheus_client::registry::Registry;

use super::ops::{RequestMetrics, track};
use super::probes::{self, BrokerGauges, ReadinessCheck};

/// A server's routes being put together: the registry every part registers its metrics
/// in, and the requests' own metrics.
struct Composition {
    registry: Registry,
    requests: Arc<RequestMetrics>,
    routes: Router,
}

impl Composition {
    fn new() -> Self {
        let mut registry = Registry::default();
        let requests = RequestMetrics::register(&mut registry);
        Self {
            registry,
            requests,
            routes: Router::new(),
        }
    }

    /// Adds a part's routes.
    fn add(&mut self, routes: Router) {
        self.routes = std::mem::take(&mut self.routes).merge(routes);
    }

    /// The whole router: the parts' routes, the probes (asking `readiness`), every
    /// request tracked.
    fn finish(mut self, readiness: ReadinessCheck) -> Router {
        let broker = BrokerGauges::register(&mut self.registry);
        self.routes
            .merge(probes::routes(self.registry, broker, readiness))
            .layer(axum::middleware::from_fn_with_state(self.requests, track))
    }
}
