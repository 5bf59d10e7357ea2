//! `powens-relay dispatch` as a service of its own: the dispatcher's routes, the probes
//! and the metrics on `dispatcher_listen`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use tokio::net::TcpListener;

use super::Dispatcher;
use crate::relay::callback::store::StoreError;
use crate::relay::config::RelayConfig;
use crate::relay::consume::ConsumeError;
use crate::relay::http::Refusal;
use crate::relay::ops::{self, Metrics};
use crate::relay::server::{self, Limits};

/// How long clients get to receive their close frame at shutdown.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Why the dispatcher could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    /// No broker configured: `dispatch` consumes from RabbitMQ.
    #[error(
        "powens-relay dispatch needs amqp_url (set POWENS_RELAY_AMQP_URL); to try the \
         dispatcher without a broker, run serve with --dispatcher true"
    )]
    NoBroker,
    /// The password could not be read.
    #[error("dispatcher_password: {0}")]
    Password(String),
    /// The broker could not be reached or set up.
    #[error(transparent)]
    Consume(#[from] ConsumeError),
    /// The callback store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A dispatcher bound to its address, ready to [`run`](Self::run).
#[derive(Debug)]
pub struct BoundDispatcher {
    listener: TcpListener,
    dispatcher: Dispatcher,
    metrics: Arc<Metrics>,
    limits: Limits,
}

impl BoundDispatcher {
    /// Opens the callback store, connects to the broker and binds `dispatcher_listen`.
    ///
    /// # Errors
    /// [`DispatchError`].
    pub async fn start(config: &RelayConfig) -> Result<Self, DispatchError> {
        let addr = config.dispatcher().listen();
        let store = config.store().open().await?;
        let dispatcher = Dispatcher::connect(config, store).await?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| DispatchError::Bind { addr, source })?;
        let mut metrics = Metrics::default();
        metrics.add_dispatcher(&dispatcher.metrics());
        Ok(Self {
            listener,
            dispatcher,
            metrics: Arc::new(metrics),
            limits: Limits {
                max_connections: config.max_connections(),
                read_timeout: config.read_timeout(),
                max_header_bytes: config.max_header_bytes(),
            },
        })
    }

    /// The address actually bound.
    ///
    /// # Errors
    /// The socket's error, if it cannot tell.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown`, then closes every client with 1001 and the broker
    /// connection.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let probes = Probes {
            dispatcher: self.dispatcher.ctx.clone(),
            metrics: self.metrics.clone(),
        };
        let router = self
            .dispatcher
            .routes()
            .merge(
                Router::new()
                    .route("/healthz", get(|| async { "ok\n" }))
                    .route("/readyz", get(readyz))
                    .route("/metrics", get(metrics))
                    .fallback(|| async { Refusal::new(StatusCode::NOT_FOUND, "not found") })
                    .with_state(probes),
            )
            .layer(axum::middleware::from_fn_with_state(
                self.metrics.clone(),
                ops::track,
            ));
        let hub = self.dispatcher.ctx.hub.clone();
        let shutdown = async move {
            shutdown.await;
            // Clients first: their connections are no longer the server's to drain.
            hub.shut_down(CLOSE_GRACE).await;
        };
        server::serve(self.listener, router, self.limits, shutdown).await;
        self.dispatcher.shut_down(CLOSE_GRACE).await;
        tracing::info!("stopped");
    }
}

#[derive(Clone)]
struct Probes {
    dispatcher: Arc<super::Context>,
    metrics: Arc<Metrics>,
}

async fn readyz(State(probes): State<Probes>) -> Response {
    crate::relay::http::readiness(&probes.dispatcher.hub.readiness())
}

async fn metrics(State(probes): State<Probes>) -> Response {
    ops::metrics_response(&probes.metrics, &probes.dispatcher.hub.readiness())
}
