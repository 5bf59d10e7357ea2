//! TeaL's websocket dispatcher: `powens-relay dispatch`, or hosted by `serve`
//! (`dispatcher = true`).
//!
//! Clients connect to `GET /websocket` with `anonymous:PASSWORD` (Basic, or
//! `?credentials=`), create callbacks and register to callback states, CIBA request ids
//! and Powens domains; each message of those keys is pushed to them as TeaL's server
//! message. `GET /.well-known/teapots-teal-metadata` says where everything is.
//!
//! What differs from TeaL, on purpose:
//! - one exclusive, auto-delete queue per process (gone with it), bound to a key when
//!   its first client registers and unbound when its last client leaves;
//! - a message is acknowledged once written to every client of this process registered
//!   to its key (or at once when there is none); at most 256 unacknowledged;
//! - each client has a bounded queue; one that lets it overflow is closed with 1013,
//!   so a slow client never holds up the others; pings detect dead clients;
//! - a text frame that is not a valid `ClientMessage` (or an empty or invalid key) is
//!   answered by closing with 1007 and a reason saying what is wrong, a binary frame
//!   with 1003, where TeaL ignores the first silently and fails the second with 1011;
//! - a failed `create` does not skip the frame's `register_to`;
//! - `powens_domain` may be `budgea` or `budgea.biapi.pro` (both bind the full domain);
//! - refused credentials get an HTTP 401 before the upgrade; the password is compared
//!   in constant time; a `+` in `?credentials=` is kept.

mod error;
pub(crate) mod frames;
mod hub;
mod metrics;
pub(crate) mod protocol;
mod socket;
mod source;

pub(crate) use crate::relay::basic_auth::{Password, Refused};
pub use error::DispatchError;
pub(crate) use metrics::DispatcherMetrics;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use url::Url;

use super::broker::BrokerSettings;
use super::callback::store::CallbackStore;
use super::consume::{Bindings, ConsumerSettings, QueueType, TealConsumer};
use super::ops::current_request_id;
use super::publish::{Publisher, Unroutable};
use super::reply::{Outcome, RETRY_AFTER_UNAVAILABLE, Readiness, Refusal};
use super::secret_ref::SecretRef;
use super::server::{CLOSE_GRACE, ServerSettings};
use crate::secret::Secret;
use hub::Hub;

/// Unacknowledged messages the dispatcher's queue may hold at once.
pub(crate) const PREFETCH: u16 = 256;
/// Largest client frame accepted (a `ClientMessage` is well under 1 KiB).
const MAX_FRAME_BYTES: usize = 64 * 1024;
/// The read buffer of a client connection (a `ClientMessage` fits many times over).
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// The dispatcher's settings.
#[derive(Debug, Clone)]
pub(crate) struct DispatcherSettings {
    /// Whether `serve` hosts the dispatcher's routes too.
    pub(crate) hosted: bool,
    /// Where `powens-relay dispatch` listens, and its connection limits.
    pub(crate) server: ServerSettings,
    /// The listener's public base URL (ends in `/`), for the metadata.
    pub(crate) listener_url: Url,
    /// The path prefix a reverse proxy strips, put in front of `/websocket` in the
    /// metadata.
    pub(crate) path_prefix: String,
    /// The websocket password: read with the configuration when it said that the
    /// dispatcher runs, else where to read it when it starts.
    pub(crate) password: PasswordSource,
    /// Most websocket clients at once.
    pub(crate) max_clients: usize,
    /// Messages waiting per client before it is closed (1013).
    pub(crate) queue_len: usize,
    /// Interval of websocket pings.
    pub(crate) ping_interval: Duration,
}

/// The dispatcher's password, read with the configuration when the dispatcher was
/// known to run (a missing one then stops the command before any connection), else
/// read when it starts (a library's `Dispatcher::start` on a `serve` configuration).
#[derive(Debug, Clone)]
pub(crate) enum PasswordSource {
    /// Read.
    Read(Secret),
    /// To be read.
    Unread(SecretRef),
}

/// What the routes and the client tasks share.
pub(crate) struct Context {
    hub: Arc<Hub>,
    password: Password,
    store: Arc<dyn CallbackStore>,
    listener_url: Url,
    path_prefix: String,
    max_clients: usize,
    ping_interval: Duration,
}

/// A dispatcher: its clients' routing table, and where its messages come from.
pub(crate) struct Dispatcher {
    ctx: Arc<Context>,
    consumer: Option<(
        tokio::task::JoinHandle<()>,
        tokio::sync::oneshot::Sender<()>,
    )>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("clients", &self.ctx.hub.client_count())
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// The password of `settings`, read with the configuration or now.
    fn password(settings: &DispatcherSettings) -> Result<Password, DispatchError> {
        match &settings.password {
            PasswordSource::Read(secret) => Ok(Password::new(secret)),
            PasswordSource::Unread(reference) => reference
                .resolve()
                .map(|secret| Password::new(&secret))
                .map_err(DispatchError::Password),
        }
    }

    fn context(
        settings: &DispatcherSettings,
        password: Password,
        store: Arc<dyn CallbackStore>,
        subscriber: Arc<dyn hub::Subscriber>,
    ) -> Context {
        let metrics = Arc::new(DispatcherMetrics::default());
        Context {
            hub: Arc::new(Hub::new(subscriber, settings.queue_len, metrics)),
            password,
            store,
            listener_url: settings.listener_url.clone(),
            path_prefix: settings.path_prefix.clone(),
            max_clients: settings.max_clients,
            ping_interval: settings.ping_interval,
        }
    }

    /// A dispatcher consuming from the broker of `broker` with a queue of its own,
    /// writing created callbacks to `store`.
    ///
    /// # Errors
    /// [`DispatchError::NoBroker`], [`DispatchError::Password`] or
    /// [`DispatchError::Consume`] (the broker cannot be reached at start).
    pub(crate) async fn connect(
        settings: &DispatcherSettings,
        broker: &BrokerSettings,
        store: Arc<dyn CallbackStore>,
    ) -> Result<Self, DispatchError> {
        let nodes = broker.broker().ok_or(DispatchError::NoBroker)?;
        let password = Self::password(settings)?;
        let consumer_settings = ConsumerSettings {
            exchange_prefix: broker.exchanges.prefix.clone(),
            exchange_durable: broker.exchanges.durable,
            // Its own private queue, as TeaL's: exclusive, so classic, on the node it is
            // connected to; after a node's loss it declares a new one on the next node
            // and binds it again (see docs/operations.md, "A RabbitMQ cluster").
            queue: None,
            queue_type: QueueType::Classic,
            prefetch: PREFETCH,
            connect_timeout: broker.connect_timeout,
            reconnect_max_delay: broker.reconnect_max_delay,
        };
        let consumer =
            TealConsumer::connect_to(nodes, &consumer_settings, &Bindings::default()).await?;
        let subscriber = Arc::new(source::BrokerSubscriber(consumer.bindings()));
        let ctx = Arc::new(Self::context(settings, password, store, subscriber));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let hub = ctx.hub.clone();
        let task = tokio::spawn(async move {
            tokio::select! {
                () = source::consume(consumer, hub) => {}
                _ = stopped => {}
            }
        });
        Ok(Self {
            ctx,
            consumer: Some((task, stop)),
        })
    }

    /// A dispatcher fed in-process, with the publisher that feeds it: for `serve`
    /// without a broker. A message no client wants is refused unless `unroutable`
    /// accepts it.
    ///
    /// # Errors
    /// [`DispatchError::Password`].
    pub(crate) fn in_process(
        settings: &DispatcherSettings,
        store: Arc<dyn CallbackStore>,
        unroutable: Unroutable,
    ) -> Result<(Self, Arc<dyn Publisher>), DispatchError> {
        let ctx = Arc::new(Self::context(
            settings,
            Self::password(settings)?,
            store,
            Arc::new(source::LocalSubscriber),
        ));
        let bus = source::InProcessBus {
            hub: ctx.hub.clone(),
            accept_unroutable: unroutable == Unroutable::Accept,
        };
        Ok((
            Self {
                ctx,
                consumer: None,
            },
            Arc::new(bus),
        ))
    }

    /// Registers the dispatcher's metrics in `registry`.
    pub(crate) fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.ctx.hub.metrics.register(registry);
    }

    /// How many websocket clients are connected: a count that outlives the
    /// dispatcher's handle (the console's).
    pub(crate) fn client_count(&self) -> Arc<dyn Fn() -> usize + Send + Sync> {
        let hub = self.ctx.hub.clone();
        Arc::new(move || hub.client_count())
    }

    /// Whether messages can reach the dispatcher now (the broker consumer is
    /// connected, the callback store reachable), and from which node: a check that
    /// outlives the dispatcher's handle.
    pub(crate) fn readiness(&self) -> impl Fn() -> Readiness + Send + Sync + 'static {
        let ctx = self.ctx.clone();
        move || Readiness {
            // A client's `create` writes to the callback store.
            store_down: !ctx.store.is_available(),
            ..ctx.hub.readiness()
        }
    }

    /// Tells every client to close (1001) and waits, at most `grace`, until they have;
    /// a handle that outlives the dispatcher's, for the server's shutdown.
    pub(crate) fn closer(&self) -> impl Future<Output = ()> + Send + 'static {
        let hub = self.ctx.hub.clone();
        async move { hub.shut_down(CLOSE_GRACE).await }
    }

    /// The metadata and websocket routes.
    pub(crate) fn routes(&self) -> Router {
        Router::new()
            .route(
                "/.well-known/teapots-teal-metadata",
                get(metadata).options(preflight),
            )
            .route("/websocket", get(websocket))
            .with_state(self.ctx.clone())
    }

    /// Closes every client with 1001 (waiting at most [`CLOSE_GRACE`]), then the broker
    /// connection (its queue goes with it).
    pub(crate) async fn shut_down(self) {
        self.ctx.hub.shut_down(CLOSE_GRACE).await;
        if let Some((task, stop)) = self.consumer {
            let _ = stop.send(());
            let _ = task.await;
        }
    }
}

#[derive(serde::Serialize)]
struct Metadata<'a> {
    server_version: &'a str,
    websocket_url: String,
    callback_url: String,
    errback_url: String,
    openid_ciba_callback_url: String,
}

/// `GET /.well-known/teapots-teal-metadata`: no authentication (an `Authorization`
/// header is not even read, where TeaL answered 400 to one it could not parse).
///
/// `websocket_url` is built from the request's `Host` and `X-Forwarded-Proto` (`wss://`
/// behind a TLS-terminating proxy that sets it), with `public_path_prefix` in front of
/// `/websocket`.
async fn metadata(State(ctx): State<Arc<Context>>, headers: HeaderMap) -> Response {
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or_else(|| ctx.listener_url.host_str().unwrap_or("localhost"));
    // listener_url ends with `/` and has no query or fragment (the configuration
    // normalises it): a route's URL is the two joined.
    let join = |route: &str| format!("{}{route}", ctx.listener_url);
    let body = Metadata {
        server_version: env!("CARGO_PKG_VERSION"),
        websocket_url: format!(
            "{}://{host}{}/websocket",
            if secure { "wss" } else { "ws" },
            ctx.path_prefix
        ),
        callback_url: join("callback"),
        errback_url: join("errback"),
        openid_ciba_callback_url: join("openid-ciba-callback"),
    };
    let json = match serde_json::to_vec(&body) {
        Ok(json) => json,
        Err(e) => {
            tracing::error!(error = %e, "the dispatcher's metadata could not be written");
            return Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the metadata could not be written",
            )
            .into_response();
        }
    };
    let mut response = ([(header::CONTENT_TYPE, "application/json")], json).into_response();
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// CORS preflight of the metadata route: any origin may read it.
async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, OPTIONS"),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, "*"),
        ],
    )
        .into_response()
}

/// `GET /websocket`: credentials checked before the upgrade (401 otherwise, logged
/// without them), then the client served until it leaves.
async fn websocket(State(ctx): State<Arc<Context>>, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    if let Err(refused) = ctx.password.check(&parts.headers, parts.uri.query()) {
        ctx.hub.metrics.refused(refused.label());
        tracing::warn!(
            request_id = current_request_id().as_deref(),
            reason = refused.label(),
            "websocket handshake refused"
        );
        return Refusal::new(StatusCode::UNAUTHORIZED, refused.reason())
            .with_challenge("Basic realm=\"powens-relay dispatcher\"")
            .into_response();
    }
    if ctx.hub.client_count() >= ctx.max_clients {
        ctx.hub.metrics.refused("too_many_clients");
        return Refusal::unavailable(
            Outcome::Overloaded,
            format!(
                "too many websocket clients (dispatcher_max_clients = {}); retry later",
                ctx.max_clients
            ),
            RETRY_AFTER_UNAVAILABLE,
        )
        .into_response();
    }
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    // Small buffers: an idle client costs little (tungstenite's defaults, 128 KiB each
    // way, made 1 000 idle clients cost 134 MiB). Each message is flushed as it is
    // sent anyway.
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| socket::serve_client(socket, ctx))
}
