//! `powens-relay serve`: the webhook route, TeaL's listener routes and, when asked,
//! the dispatcher's, publishing to RabbitMQ (or, without a broker, to the hosted
//! dispatcher's clients or standard output).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::Composition;
use crate::amq::TealExchange;
use crate::relay::broker::BrokerError;
use crate::relay::callback::store::{CallbackStore, StoreError};
use crate::relay::config::{RelayConfig, Secrets};
use crate::relay::console::{Console, Feed, Sources, observe};
use crate::relay::dispatch::{self, DispatchError};
use crate::relay::durable::{Durable, JournalStartError, OpenJournal};
use crate::relay::listener::Listener;
use crate::relay::ops::no_route;
use crate::relay::publish::{AmqpPublisher, AmqpSettings, Publisher, StdoutPublisher};
use crate::relay::reply::Readiness;
use crate::relay::server::{self, BindError, ServerSettings};
use crate::relay::webhook::WebhookRoute;

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The listen address could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The broker could not be reached or set up.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The callback store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The hosted dispatcher could not start.
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    /// The journal could not be opened (another process holds it, or it is damaged).
    #[error(transparent)]
    Journal(#[from] JournalStartError),
}

/// The relay bound to its address, its publisher connected, ready to
/// [`run`](Relay::run): what `powens-relay serve` runs.
#[derive(Debug)]
pub struct Relay {
    listener: TcpListener,
    router: Router,
    publisher: Arc<dyn Publisher>,
    server: ServerSettings,
    secrets: Secrets,
    hangups: Hangups,
    dispatcher: Option<dispatch::Dispatcher>,
    console: Option<Console>,
    /// Told to the console when the relay stops.
    closing: watch::Sender<bool>,
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

/// On every SIGHUP received by `hangups`, reads the secrets again (a rotated `file:`
/// secret takes effect without a restart), logging the outcome.
async fn reload_on_sighup(secrets: Secrets, hangups: Hangups) {
    #[cfg(unix)]
    if let Some(mut hangups) = hangups {
        while hangups.recv().await.is_some() {
            match secrets.reload() {
                Ok(domains) => tracing::info!(domains, "SIGHUP: secrets re-read"),
                Err(e) => tracing::error!(
                    "SIGHUP: secrets not re-read, the previous ones stay in use: {e}"
                ),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (secrets, hangups);
}

impl Relay {
    /// Connects to the broker of `config` (or, without one, writes messages to standard
    /// output), declares the exchanges, opens the callback store and binds the listen
    /// address.
    ///
    /// # Errors
    /// [`RelayError`], saying which step failed.
    pub async fn start(config: &RelayConfig) -> Result<Self, RelayError> {
        // The journal first: one held by another process stops the relay before it
        // connects to anything.
        let journal = match (&config.journal.mode, config.broker.nodes.is_empty()) {
            (Some(_), false) => Some(OpenJournal::open(config.journal.clone()).await?),
            _ => None,
        };
        let store = config.store.open().await?;
        let hosted = config.dispatcher.hosted;
        let broker = &config.broker;
        let mut durable = None;
        let (publisher, dispatcher): (Arc<dyn Publisher>, _) = match broker.broker() {
            Some(nodes) => {
                let publisher = AmqpPublisher::connect(AmqpSettings {
                    broker: nodes,
                    exchanges: broker.exchanges.clone(),
                    declare: TealExchange::ALL.to_vec(),
                    unroutable: config.publisher.unroutable,
                    publish_timeout: config.publisher.publish_timeout,
                    reconnect_max_delay: broker.reconnect_max_delay,
                })
                .await?;
                let node = publisher.broker_node().unwrap_or_default();
                let exchange = broker.exchanges.name(TealExchange::PowensDomainWebhooks);
                tracing::info!(broker = %node, %exchange, durable = broker.exchanges.durable, "connected to RabbitMQ");
                let publisher: Arc<dyn Publisher> = match journal {
                    Some(journal) => {
                        let started: Arc<Durable> = Arc::new(journal.start(Arc::new(publisher)));
                        durable = Some(started.clone());
                        started
                    }
                    None => Arc::new(publisher),
                };
                let dispatcher = match hosted {
                    true => Some(
                        dispatch::Dispatcher::connect(&config.dispatcher, broker, store.clone())
                            .await?,
                    ),
                    false => None,
                };
                (publisher, dispatcher)
            }
            None if hosted => {
                tracing::warn!(
                    "no amqp_url configured: messages go in-process to the dispatcher's websocket clients only, and are NOT published"
                );
                let (dispatcher, bus) = dispatch::Dispatcher::in_process(
                    &config.dispatcher,
                    store.clone(),
                    config.publisher.unroutable,
                )?;
                (bus, Some(dispatcher))
            }
            None => {
                tracing::warn!(
                    "no amqp_url configured: messages are written to standard output, one JSON line each, and NOT published (nor journaled)"
                );
                (Arc::new(StdoutPublisher::default()), None)
            }
        };
        Self::assemble(config, publisher, durable, store, dispatcher).await
    }

    /// Binds the listen address of `config`, publishing with `publisher`.
    ///
    /// # Errors
    /// [`RelayError::Bind`] or [`RelayError::Store`].
    #[cfg(feature = "test-util")]
    pub(crate) async fn with_publisher(
        config: &RelayConfig,
        publisher: Arc<dyn Publisher>,
    ) -> Result<Self, RelayError> {
        let store = config.store.open().await?;
        Self::assemble(config, publisher, None, store, None).await
    }

    async fn assemble(
        config: &RelayConfig,
        publisher: Arc<dyn Publisher>,
        durable: Option<Arc<Durable>>,
        store: Arc<dyn CallbackStore>,
        dispatcher: Option<dispatch::Dispatcher>,
    ) -> Result<Self, RelayError> {
        let listener = server::bind(&config.server).await?;
        let mut router = router(config, publisher.clone(), Some(store), dispatcher.as_ref());
        let (closing, closed) = watch::channel(false);
        let console = match &config.console {
            Some(settings) => {
                // Every webhook recorded for the console as it is answered.
                let feed = Arc::new(Feed::default());
                router = router.layer(axum::middleware::from_fn_with_state(feed.clone(), observe));
                let sources = Sources {
                    publisher: publisher.clone(),
                    journal: durable,
                    clients: dispatcher.as_ref().map(dispatch::Dispatcher::client_count),
                };
                Some(Console::bind(settings, feed, sources, closed).await?)
            }
            None => None,
        };
        Ok(Self {
            listener,
            router,
            publisher,
            server: config.server,
            secrets: config.secrets.clone(),
            hangups: listen_for_hangups(),
            dispatcher,
            console,
            closing,
        })
    }

    /// The address actually bound (useful with port 0).
    ///
    /// # Errors
    /// The socket's error, if it cannot tell.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The operator console's address, when `console = true`.
    ///
    /// # Errors
    /// The socket's error, if it cannot tell.
    pub fn console_addr(&self) -> std::io::Result<Option<SocketAddr>> {
        self.console.as_ref().map(Console::local_addr).transpose()
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
    /// On SIGHUP (Unix), the secrets are read again: a rotated `file:` secret takes
    /// effect without a restart.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let sighup = tokio::spawn(reload_on_sighup(self.secrets, self.hangups));
        // The console stops with the relay: its event streams end, then its server.
        let closing = self.closing;
        let console = self.console.map(|console| {
            let mut closed = closing.subscribe();
            tokio::spawn(console.run(async move {
                let _ = closed.wait_for(|closed| *closed).await;
            }))
        });
        let shutdown = async move {
            shutdown.await;
            closing.send_replace(true);
        };
        match self.dispatcher {
            Some(dispatcher) => {
                let close_clients = dispatcher.closer();
                let shutdown = async move {
                    shutdown.await;
                    // Websocket clients are closed (1001) as soon as the server stops
                    // accepting, while in-flight webhooks finish.
                    close_clients.await;
                };
                server::serve(self.listener, self.router, self.server, shutdown).await;
                dispatcher.shut_down().await;
            }
            None => server::serve(self.listener, self.router, self.server, shutdown).await,
        }
        sighup.abort();
        if let Some(console) = console {
            let _ = console.await;
        }
        self.publisher.close().await;
        tracing::info!("stopped");
    }
}

/// `serve`'s routes for `config`: the webhook route and, reading callbacks from `store`,
/// the listener's, both publishing with `publisher`; the hosted `dispatcher`'s routes;
/// the probes. Tests drive it with `tower::ServiceExt::oneshot`.
///
/// It must run on a Tokio runtime with timers enabled (`#[tokio::main]` has them; a
/// `Builder` needs `enable_time`): body reads are timed. The per-connection limits
/// (head size and time-out, connection cap) are the server's.
pub(crate) fn router(
    config: &RelayConfig,
    publisher: Arc<dyn Publisher>,
    store: Option<Arc<dyn CallbackStore>>,
    dispatcher: Option<&dispatch::Dispatcher>,
) -> Router {
    let exchanges = &config.broker.exchanges;
    let mut composition = Composition::new();
    publisher.register_metrics(&mut composition.registry);
    let webhook = WebhookRoute::new(
        &config.webhook,
        exchanges,
        publisher.clone(),
        &mut composition.registry,
    );
    composition.add(webhook.routes());
    let listener_store = store.clone();
    match store {
        Some(store) => {
            let listener = Listener::new(&config.listener, store, publisher.clone(), exchanges);
            composition.add(listener.routes());
        }
        None => composition.add(Router::new().fallback(|request: Request| async move {
            no_route(request.method(), request.uri().path())
        })),
    }
    let dispatcher_ready = dispatcher.map(|dispatcher| {
        dispatcher.register_metrics(&mut composition.registry);
        composition.add(dispatcher.routes());
        dispatcher.readiness()
    });
    // Ready when the publisher is, the callback store too and, if hosted, the
    // dispatcher's consumer is; the node named is the publisher's.
    let readiness = move || {
        let published = Readiness {
            ready: publisher.is_ready(),
            node: publisher.broker_node(),
            store_down: listener_store.as_ref().is_some_and(|s| !s.is_available()),
            journal: publisher.journal(),
        };
        match &dispatcher_ready {
            Some(hosted) => published.and(&hosted()),
            None => published,
        }
    };
    composition.finish(Arc::new(readiness))
}
