//! The relay (feature `relay`): `powens-relay serve` receives Powens webhooks over HTTP,
//! verifies them and publishes them to RabbitMQ, answering 204 only once the broker has
//! confirmed the message. Also the consumer side and the `send` client.
//!
//! Running the relay inside your own program (what `powens-relay serve` does):
//!
//! ```no_run
//! use powens_webhooks::relay::Relay;
//! use powens_webhooks::relay::config::{Overrides, RelayConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let overrides = Overrides {
//!     config: Some("relay.toml".into()),
//!     ..Overrides::default()
//! };
//! let config = RelayConfig::load(&overrides)?; // every key checked, secrets read
//! let relay = Relay::start(&config).await?; // broker connected, exchange declared
//! println!("listening on {}", relay.local_addr()?);
//! relay.run(powens_webhooks::relay::ops::shutdown_signal()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! To serve the webhook route from an axum application of your own, build the router
//! with [`http::router`] and any [`publish::Publisher`].

pub mod config;
pub mod consume;
pub mod http;
pub mod ops;
pub mod publish;
pub mod send;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use config::RelayConfig;
use publish::{AmqpPublisher, ExchangeSettings, PublishError, Publisher, StdoutPublisher};

/// Why the relay could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The broker could not be reached or set up.
    #[error("{0}")]
    Broker(PublishError),
    /// The server failed.
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// A relay bound to its address, its publisher connected, ready to [`run`](Relay::run).
#[derive(Debug)]
pub struct Relay {
    listener: TcpListener,
    state: http::AppState,
    publisher: Arc<dyn Publisher>,
}

impl Relay {
    /// Connects to the broker of `config` (or, without one, writes messages to standard
    /// output), declares the webhook exchange and binds the listen address.
    ///
    /// # Errors
    /// [`RelayError::Broker`] or [`RelayError::Bind`].
    pub async fn start(config: &RelayConfig) -> Result<Self, RelayError> {
        let publisher: Arc<dyn Publisher> = match &config.amqp_url {
            Some(url) => {
                let exchanges = ExchangeSettings {
                    names: vec![config.webhook_exchange()],
                    durable: config.exchange_durable,
                };
                let publisher = AmqpPublisher::connect(
                    url,
                    &exchanges,
                    config.unroutable,
                    config.publish_timeout,
                )
                .await
                .map_err(RelayError::Broker)?;
                tracing::info!(broker = %url, exchange = %config.webhook_exchange(), durable = config.exchange_durable, "connected to RabbitMQ");
                Arc::new(publisher)
            }
            None => {
                tracing::warn!(
                    "no amqp_url configured: messages are written to standard output, one JSON line each, and NOT published"
                );
                Arc::new(StdoutPublisher::default())
            }
        };
        Self::with_publisher(config, publisher).await
    }

    /// Binds the listen address of `config`, publishing with `publisher`.
    ///
    /// # Errors
    /// [`RelayError::Bind`].
    pub async fn with_publisher(
        config: &RelayConfig,
        publisher: Arc<dyn Publisher>,
    ) -> Result<Self, RelayError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| RelayError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let state = http::AppState::new(config, publisher.clone());
        Ok(Self {
            listener,
            state,
            publisher,
        })
    }

    /// The address actually bound (useful with port 0).
    ///
    /// # Errors
    /// The socket's error, if it cannot tell.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests
    /// finish (and their confirms arrive), and closes the broker connection.
    ///
    /// # Errors
    /// [`RelayError::Serve`].
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), RelayError> {
        use axum::serve::ListenerExt;
        let app = http::router(self.state);
        // Responses are small and latency matters more than packet count.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(RelayError::Serve);
        self.publisher.close().await;
        tracing::info!("stopped");
        served
    }
}
