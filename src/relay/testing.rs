//! Test doubles and helpers for this crate's own tests, benchmarks, examples and fuzz
//! targets (feature `test-util`). Not part of the stable API: anything here may change
//! in any release.
//!
//! - [`MemoryPublisher`]: a publisher that keeps messages in memory and can be told to
//!   fail, behind [`router`] (the relay's routes, for `oneshot`) or [`relay`] (a real
//!   server).
//! - [`signed_request`] and [`send()`]: webhooks signed as Powens signs them.
//! - [`amqp_channel`], [`declare_exchanges`], [`close`]: raw AMQP for baselines.

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use http::Request;
use http_body_util::Full;
use url::Url;

use super::app::{self, Relay, RelayError};
use super::broker::{AmqpUrl, Broker, BrokerError, Exchanges};
use super::callback::store::{CallbackStore, EmbeddedStore, Lookup, StoreError, StoreSpec};
use super::callback::{CallbackRecord, CallbackState};
use super::config::RelayConfig;
use super::publish::{Delivered, Outgoing, PublishError, Publisher};
use super::send;
use crate::amq::TealExchange;
use crate::secret::Secret;

/// What a helper could not do.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error(Box<dyn std::error::Error + Send + Sync>);

impl Error {
    fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(error))
    }
}

/// A message the [`MemoryPublisher`] took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The exchange's full name (prefix included).
    pub exchange: String,
    /// The routing key.
    pub routing_key: String,
    /// The AMQP `message_id`.
    pub message_id: Option<String>,
    /// The body (TeaL JSON).
    pub body: Vec<u8>,
}

/// How a [`MemoryPublisher`] is told to fail: each is a publish the broker did not
/// confirm.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Failure {
    /// No usable broker connection.
    Unavailable,
    /// The broker refused the message.
    Nacked,
    /// No queue is bound for the message.
    Unroutable,
    /// No confirm in time.
    Timeout,
    /// A fault whose detail belongs in the log only (this text).
    Fault(&'static str),
}

impl From<&Failure> for PublishError {
    fn from(failure: &Failure) -> Self {
        match failure {
            Failure::Unavailable => Self::Unavailable,
            Failure::Nacked => Self::Nacked,
            Failure::Unroutable => Self::Unroutable,
            Failure::Timeout => Self::Timeout,
            Failure::Fault(text) => Self::Output(Arc::new(std::io::Error::other(*text))),
        }
    }
}

/// Keeps published messages in memory, and can be told to fail.
#[derive(Debug, Clone, Default)]
pub struct MemoryPublisher {
    inner: Arc<Mutex<MemoryState>>,
}

#[derive(Debug, Default)]
struct MemoryState {
    published: Vec<Published>,
    failure: Option<Failure>,
}

impl MemoryPublisher {
    /// An empty publisher that accepts every message.
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on, fail every publish with `failure` (or succeed, with `None`).
    pub fn fail_with(&self, failure: Option<Failure>) {
        self.state().failure = failure;
    }

    /// The messages published so far.
    pub fn published(&self) -> Vec<Published> {
        self.state().published.clone()
    }

    /// The messages published so far, forgetting them.
    pub fn take(&self) -> Vec<Published> {
        std::mem::take(&mut self.state().published)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Publisher for MemoryPublisher {
    fn publish<'a>(
        &'a self,
        message: &'a Outgoing,
    ) -> BoxFuture<'a, Result<Delivered, PublishError>> {
        Box::pin(async move {
            let mut state = self.state();
            match &state.failure {
                Some(failure) => Err(failure.into()),
                None => {
                    state.published.push(Published {
                        exchange: message.exchange.name.to_string(),
                        routing_key: message.routing_key.clone(),
                        message_id: message.message_id.clone(),
                        body: message.body.clone(),
                    });
                    Ok(Delivered::Confirmed)
                }
            }
        })
    }

    fn is_ready(&self) -> bool {
        self.state().failure.is_none()
    }
}

/// A callback store, for the listener's routes.
#[derive(Debug, Clone)]
pub struct Store(Arc<dyn CallbackStore>);

impl Store {
    /// The embedded store in the file `path` (created).
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn embedded(path: &std::path::Path) -> Result<Self, StoreError> {
        Ok(Self(Arc::new(EmbeddedStore::open(path)?)))
    }

    /// The store at `url` (`redis://…`, `redis+sentinel://…`), opened as the relay
    /// opens it.
    ///
    /// # Errors
    /// Not a store URL, or the store cannot be reached.
    pub async fn open(url: &str) -> Result<Self, Error> {
        let spec = StoreSpec::parse(url, std::path::Path::new("unused")).map_err(Error::new)?;
        Ok(Self(spec.open().await.map_err(Error::new)?))
    }

    /// Whether the callback of `state` is there (and live), left in the store.
    ///
    /// # Errors
    /// An invalid state, or the store's failure.
    pub async fn has_callback(&self, state: &str) -> Result<bool, Error> {
        let state = CallbackState::parse(state).map_err(Error::new)?;
        let found = self.0.read(&state, Lookup::get(Utc::now())).await;
        Ok(found.map_err(Error::new)?.is_some())
    }

    /// The store `overrides` configure (`callback_store`, `data_dir`), opened as the
    /// relay opens it.
    ///
    /// # Errors
    /// An invalid configuration, or the store cannot be opened.
    pub async fn configured(overrides: &crate::relay::Overrides) -> Result<Self, Error> {
        let spec = RelayConfig::load_store(overrides).map_err(Error::new)?;
        Ok(Self(spec.open().await.map_err(Error::new)?))
    }

    /// Creates (or replaces) the callback of `state`, as a client does.
    ///
    /// # Errors
    /// The store's failure.
    ///
    /// # Panics
    /// When `state` is not a valid state (a mistake in the test).
    pub async fn put_callback(
        &self,
        state: &str,
        expires_at: DateTime<Utc>,
        final_redirect_url: Option<Url>,
        with_fragment: bool,
    ) -> Result<(), StoreError> {
        let Ok(state) = CallbackState::parse(state) else {
            panic!("not a valid state: {state:?}");
        };
        let record = CallbackRecord::new(expires_at, final_redirect_url, with_fragment);
        self.0.put(&state, &record).await
    }
}

/// How the relay prints a URL from the configuration: without its credentials.
pub fn redact_url(text: &str) -> String {
    super::redact::redact_url(text)
}

/// Redis's URL (the shared server on 127.0.0.1:6379), after checking that it answers: a
/// test that needs it fails saying how to start it, rather than passing without it.
///
/// # Panics
/// When Redis does not answer.
pub fn redis_url() -> &'static str {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 6379));
    if std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).is_err() {
        panic!(
            "Redis is not reachable on 127.0.0.1:6379; start it with \
             `redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''` \
             (or run `bash .ci/run`)"
        );
    }
    "redis://127.0.0.1:6379/"
}

/// `serve`'s routes for `config`, publishing to `publisher`; the listener's routes too
/// when given a `store`. Drive it with `tower::ServiceExt::oneshot`.
pub fn router(
    config: &RelayConfig,
    publisher: &MemoryPublisher,
    store: Option<&Store>,
) -> axum::Router {
    app::router(
        config,
        Arc::new(publisher.clone()),
        store.map(|store| store.0.clone()),
        None,
    )
}

/// The relay for `config` on a real socket, publishing to `publisher`.
///
/// # Errors
/// As [`Relay::start`], but for the broker.
pub async fn relay(config: &RelayConfig, publisher: &MemoryPublisher) -> Result<Relay, RelayError> {
    Relay::with_publisher(config, Arc::new(publisher.clone())).await
}

/// The `BI-Signature-Date` Powens would send at `at`: UTC, microseconds, `Z`.
pub fn signature_date(at: DateTime<Utc>) -> String {
    send::signature_date(at)
}

/// Where to send webhooks: a parsed `http://host:port/path` URL.
#[derive(Debug, Clone)]
pub struct Target(send::Target);

impl Target {
    /// Parses `url` (`http://` only).
    ///
    /// # Errors
    /// Not an `http://` URL with a host.
    pub fn parse(url: &str) -> Result<Self, Error> {
        send::Target::parse(url, None).map(Self).map_err(Error::new)
    }
}

/// The signed request Powens would send to `target`: `POST path`, JSON content type,
/// `BI-Signature-Date` = `date`, `BI-Signature` over `POST.path.date.body`.
///
/// # Errors
/// A header cannot be built.
pub fn signed_request(
    target: &Target,
    body: Bytes,
    secret: &Secret,
    date: &str,
) -> Result<Request<Full<Bytes>>, Error> {
    send::signed_request(&target.0, body, secret, date).map_err(Error::new)
}

/// Signs `body` with `secret` (date = now) and POSTs it to `target` on a new
/// connection: the status and the response body.
///
/// # Errors
/// The exchange failed.
pub async fn send(target: &Target, body: Vec<u8>, secret: &Secret) -> Result<(u16, String), Error> {
    let response = send::send(&target.0, body, secret)
        .await
        .map_err(Error::new)?;
    Ok((response.status, response.body))
}

/// A connection to the broker at `url` and a channel on it (the relay's heartbeat and
/// connect time-out).
///
/// # Errors
/// [`BrokerError`].
pub async fn amqp_channel(
    url: &AmqpUrl,
) -> Result<(lapin::Connection, lapin::Channel), BrokerError> {
    let broker = Broker::new(url.clone());
    broker.bounded(broker.open()).await
}

/// Declares TeaL's exchanges `which` as the relay would with `prefix` and `durable`.
///
/// # Errors
/// [`BrokerError::Declare`].
pub async fn declare_exchanges(
    channel: &lapin::Channel,
    prefix: &str,
    durable: bool,
    which: &[TealExchange],
) -> Result<(), BrokerError> {
    let exchanges = Exchanges {
        prefix: prefix.to_owned(),
        durable,
    };
    exchanges.declare(channel, which).await
}

/// Closes `channel` and `connection` politely, within a short time-out.
pub async fn close(connection: &lapin::Connection, channel: &lapin::Channel) {
    super::broker::close(connection, channel, "done").await;
}
