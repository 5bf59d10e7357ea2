//! The relay (feature `relay`): `powens-relay serve` receives Powens webhooks over HTTP,
//! verifies them and publishes them to RabbitMQ, answering 204 only once the broker has
//! confirmed the message. Also the consumer side and the `send` client.
//!
//! Running the relay inside your own program (what `powens-relay serve` does):
//!
//! ```no_run
//! use powens_webhooks::relay::{Relay, shutdown_signal};
//! use powens_webhooks::relay::config::{Overrides, RelayConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let overrides = Overrides::new().with_config("relay.toml");
//! let config = RelayConfig::load(&overrides)?; // every key checked, secrets read
//! let relay = Relay::start(&config).await?; // broker connected, exchange declared
//! println!("listening on {}", relay.local_addr()?);
//! relay.run(shutdown_signal()).await;
//! # Ok(())
//! # }
//! ```
//!
//! To serve the relay's routes from an axum application of your own, build the router
//! with [`http::router`] and any [`publish::Publisher`]; to receive webhooks in your
//! own handlers, see [`crate::axum`].

pub mod broker;
pub mod callback;
pub mod config;
pub mod consume;
pub mod dispatch;
pub mod http;
mod listener;
mod logs;
mod ops;
pub mod publish;
pub mod send;
mod server;

pub use logs::{flush_log_lines, init_logging};
pub use ops::shutdown_signal;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use broker::BrokerError;
use config::RelayConfig;
use publish::{AmqpPublisher, AmqpSettings, Publisher, StdoutPublisher};

use crate::amq::TealExchange;

/// How long websocket clients get to receive their close frame at shutdown.
const DISPATCHER_CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

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
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The callback store could not be opened.
    #[error(transparent)]
    Store(#[from] callback::store::StoreError),
    /// The hosted dispatcher could not start.
    #[error(transparent)]
    Dispatch(#[from] dispatch::DispatchError),
}

/// A relay bound to its address, its publisher connected, ready to [`run`](Relay::run).
#[derive(Debug)]
pub struct Relay {
    listener: TcpListener,
    state: http::AppState,
    publisher: Arc<dyn Publisher>,
    limits: server::Limits,
    secrets: SecretsReloader,
    hangups: Hangups,
    dispatcher: Option<dispatch::Dispatcher>,
}

/// Re-reads the secrets of a running relay, as SIGHUP does: a rotated `file:` secret
/// takes effect without a restart.
#[derive(Debug, Clone)]
pub struct SecretsReloader {
    config: Arc<RelayConfig>,
}

impl SecretsReloader {
    /// Reads every secret again and, if all can be read, swaps in the new key rings:
    /// requests verified from then on use them. Returns the number of domains served.
    ///
    /// # Errors
    /// The secrets that cannot be read; the relay then keeps the key rings it had.
    pub fn reload(&self) -> Result<usize, config::ConfigError> {
        self.config.reload_secrets()
    }

    /// On every SIGHUP received by `hangups`, [`reload`](Self::reload), logging the
    /// outcome.
    async fn on_sighup(self, hangups: Hangups) {
        #[cfg(unix)]
        if let Some(mut hangups) = hangups {
            while hangups.recv().await.is_some() {
                match self.reload() {
                    Ok(domains) => tracing::info!(domains, "SIGHUP: secrets re-read"),
                    Err(e) => tracing::error!(
                        "SIGHUP: secrets not re-read, the previous ones stay in use: {e}"
                    ),
                }
            }
        }
        #[cfg(not(unix))]
        let _ = hangups;
    }
}

/// SIGHUP, listened for from the moment the relay is bound: one sent as soon as the
/// relay says it listens is not missed (nor kills it, as SIGHUP's default would).
#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;

fn listen_for_hangups() -> Hangups {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::hangup())
            .inspect_err(|e| {
                tracing::warn!(error = %e, "cannot listen for SIGHUP: secrets will not be re-read");
            })
            .ok()
    }
    #[cfg(not(unix))]
    None
}

impl Relay {
    /// Connects to the broker of `config` (or, without one, writes messages to standard
    /// output), declares the webhook exchange and binds the listen address.
    ///
    /// # Errors
    /// [`RelayError::Broker`] or [`RelayError::Bind`].
    pub async fn start(config: &RelayConfig) -> Result<Self, RelayError> {
        let store = config.store().open().await?;
        let hosted = config.dispatcher().in_serve();
        let (publisher, dispatcher): (Arc<dyn Publisher>, _) = match config.broker() {
            Some(broker) => {
                let publisher = AmqpPublisher::connect(AmqpSettings {
                    broker,
                    exchanges: config.exchanges().clone(),
                    declare: TealExchange::ALL.to_vec(),
                    unroutable: config.unroutable(),
                    publish_timeout: config.publish_timeout(),
                    reconnect_max_delay: config.reconnect_max_delay(),
                })
                .await?;
                let node = publisher.broker_node().unwrap_or_default();
                tracing::info!(broker = %node, exchange = %config.webhook_exchange(), durable = config.exchanges().durable, "connected to RabbitMQ");
                let dispatcher = match hosted {
                    true => Some(dispatch::Dispatcher::connect(config, store.clone()).await?),
                    false => None,
                };
                (Arc::new(publisher), dispatcher)
            }
            None if hosted => {
                tracing::warn!(
                    "no amqp_url configured: messages go in-process to the dispatcher's websocket clients only, and are NOT published"
                );
                let (dispatcher, bus) = dispatch::Dispatcher::in_process(config, store.clone())?;
                (bus, Some(dispatcher))
            }
            None => {
                tracing::warn!(
                    "no amqp_url configured: messages are written to standard output, one JSON line each, and NOT published"
                );
                (Arc::new(StdoutPublisher::default()), None)
            }
        };
        Self::assemble(config, publisher, store, dispatcher).await
    }

    /// Binds the listen address of `config`, publishing with `publisher`.
    ///
    /// # Errors
    /// [`RelayError::Bind`] or [`RelayError::Store`].
    pub async fn with_publisher(
        config: &RelayConfig,
        publisher: Arc<dyn Publisher>,
    ) -> Result<Self, RelayError> {
        let store = config.store().open().await?;
        Self::assemble(config, publisher, store, None).await
    }

    async fn assemble(
        config: &RelayConfig,
        publisher: Arc<dyn Publisher>,
        store: Arc<dyn callback::store::CallbackStore>,
        dispatcher: Option<dispatch::Dispatcher>,
    ) -> Result<Self, RelayError> {
        let addr = config.listen();
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| RelayError::Bind { addr, source })?;
        let mut state = http::AppState::new(config, publisher.clone()).with_listener(config, store);
        if let Some(dispatcher) = &dispatcher {
            state = state.with_dispatcher(dispatcher);
        }
        let secrets = SecretsReloader {
            config: Arc::new(config.clone()),
        };
        Ok(Self {
            listener,
            state,
            publisher,
            limits: server::Limits {
                max_connections: config.max_connections(),
                read_timeout: config.read_timeout(),
                max_header_bytes: config.max_header_bytes(),
            },
            secrets,
            hangups: listen_for_hangups(),
            dispatcher,
        })
    }

    /// A handle that re-reads the secrets (SIGHUP does the same while [`run`](Self::run)
    /// serves).
    pub fn secrets_reloader(&self) -> SecretsReloader {
        self.secrets.clone()
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
    /// Each connection is HTTP/1.1 with keep-alive. Its request head must fit in
    /// `max_header_bytes` (else 431) and arrive within `read_timeout`: a connection
    /// awaiting a head that long (slow client, or idle keep-alive) is closed, at the
    /// latest 1.25 × `read_timeout` after its last response. At most `max_connections`
    /// are open at once: beyond that, new ones wait in the listen backlog rather than
    /// costing memory.
    ///
    /// On SIGHUP (Unix), the secrets are read again: see [`SecretsReloader`].
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let sighup = tokio::spawn(self.secrets.on_sighup(self.hangups));
        let router = http::router(self.state);
        match self.dispatcher {
            Some(dispatcher) => {
                let (closing, closed) = tokio::sync::oneshot::channel();
                let shutdown = async move {
                    shutdown.await;
                    let _ = closing.send(());
                };
                let serving = server::serve(self.listener, router, self.limits, shutdown);
                let closing = async {
                    // Websocket clients are closed (1001) as soon as the server stops
                    // accepting, while in-flight webhooks finish.
                    if closed.await.is_ok() {
                        dispatcher.shut_down(DISPATCHER_CLOSE_GRACE).await;
                    }
                };
                tokio::join!(serving, closing);
            }
            None => server::serve(self.listener, router, self.limits, shutdown).await,
        }
        sighup.abort();
        self.publisher.close().await;
        tracing::info!("stopped");
    }
}
