//! The RabbitMQ publisher: one connection and one confirm-mode channel shared by every
//! request, watched by a supervisor task that replaces them when they die.
//!
//! lapin does not bring a connection back after the broker restarts or the network
//! fails (its own auto-recovery gives up after a fixed number of attempts and replays
//! state onto the old channel). The relay does it itself, so that the rules are simple:
//!
//! - A *link* is one connection with its channel, numbered by a generation. It is never
//!   repaired: when it dies it is dropped, and a new link is opened, its exchanges
//!   declared again.
//! - A link is dead when lapin says the connection or channel is closed (a reset, a
//!   missed heartbeat, a channel error), or when a publish on it failed or was not
//!   confirmed within `publish_timeout` (a network that swallows traffic shows nothing
//!   else). A blocked connection (broker resource alarm) is not ready but is kept:
//!   reconnecting would not lift the alarm.
//! - While there is no ready link, a publish fails at once with
//!   [`PublishError::Unavailable`]: the relay answers 503 without waiting.
//! - A publish answers `Ok` only for the broker's ack on the link it was sent on; one
//!   cut off by the link's death fails (its confirm errors or times out), so it is
//!   answered 503, never 204.
//! - Reconnection waits 50 ms, then doubles up to `reconnect_max_delay`, each wait
//!   drawn between half and all of it (jitter, so that many relays do not reconnect in
//!   step), and each attempt is bounded by `connect_timeout`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout};

use super::{BoxFuture, ExchangeSettings, Outgoing, PublishError, Publisher};
use super::{declare_exchanges, short_string};
use crate::relay::config::{AmqpUrl, Unroutable};

/// The AMQP heartbeat asked for when the URL sets none (seconds). lapin closes a
/// connection that has been silent for twice this long.
pub const DEFAULT_HEARTBEAT_SECS: u16 = 10;
/// The first wait before reconnecting again.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(50);
/// How often the supervisor looks at the link besides being woken by a failed publish.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);
/// How long closing a link may take (at shutdown, or a dead link being dropped).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How the AMQP publisher connects, publishes and recovers.
#[derive(Debug, Clone)]
pub struct AmqpSettings {
    /// The broker.
    pub url: AmqpUrl,
    /// The exchanges to declare on every new connection.
    pub exchanges: ExchangeSettings,
    /// Answer to a message no queue receives.
    pub unroutable: Unroutable,
    /// How long a publish may wait for its confirm.
    pub publish_timeout: Duration,
    /// How long one connection attempt (TCP, AMQP handshake, channel, declarations)
    /// may take.
    pub connect_timeout: Duration,
    /// The longest wait between two reconnection attempts.
    pub reconnect_max_delay: Duration,
}

/// Publishes to RabbitMQ with publisher confirms, reconnecting by itself (see the module
/// documentation for the rules).
#[derive(Debug)]
pub struct AmqpPublisher {
    shared: Arc<Shared>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

/// One connection and its confirm-mode channel.
#[derive(Debug)]
struct Link {
    connection: Connection,
    channel: Channel,
    generation: u64,
}

impl Link {
    fn is_dead(&self) -> bool {
        !(self.connection.status().connected() && self.channel.status().connected())
    }
}

#[derive(Debug)]
struct Shared {
    settings: AmqpSettings,
    link: RwLock<Option<Arc<Link>>>,
    /// The generation of a link that a publish found broken (0: none).
    broken: AtomicU64,
    /// Wakes the supervisor: a link broke, or the publisher is closing.
    wake: Notify,
    closing: AtomicBool,
}

impl Shared {
    /// The current link, whatever its state.
    fn current(&self) -> Option<Arc<Link>> {
        self.link
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether `link` is still up: lapin has not closed it and no publish found it
    /// broken. (A blocked link is alive, but not ready.)
    fn is_alive(&self, link: &Link) -> bool {
        !link.is_dead() && self.broken.load(Ordering::Acquire) != link.generation
    }

    /// The current link if it can take a publish now.
    fn ready_link(&self) -> Option<Arc<Link>> {
        self.current()
            .filter(|link| self.is_alive(link) && !link.connection.status().blocked())
    }

    /// A publish on `link` failed in a way that says the link is gone.
    fn report_broken(&self, link: &Link) {
        // A blocked connection is the broker refusing work (resource alarm), not a dead
        // link: a new connection would be blocked too.
        if link.connection.status().blocked() {
            return;
        }
        self.broken.store(link.generation, Ordering::Release);
        self.wake.notify_one();
    }

    fn replace_link(&self, link: Option<Arc<Link>>) -> Option<Arc<Link>> {
        std::mem::replace(
            &mut *self.link.write().unwrap_or_else(PoisonError::into_inner),
            link,
        )
    }

    async fn publish_on(&self, link: &Link, message: &Outgoing) -> Result<(), PublishError> {
        let mut properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        if let Some(id) = &message.message_id {
            let id = short_string(id).map_err(PublishError::Failed)?;
            properties = properties.with_message_id(id);
        }
        let exchange = short_string(&message.exchange).map_err(PublishError::Failed)?;
        let routing_key = short_string(&message.routing_key).map_err(PublishError::Failed)?;
        let broken = |e: lapin::Error| {
            self.report_broken(link);
            if link.is_dead() {
                PublishError::Unavailable
            } else {
                PublishError::Failed(e.to_string())
            }
        };
        let confirm = link
            .channel
            .basic_publish(
                exchange,
                routing_key,
                BasicPublishOptions {
                    mandatory: true,
                    immediate: false,
                },
                &message.body,
                properties,
            )
            .await
            .map_err(broken)?;
        match confirm.await.map_err(broken)? {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_returned)) => match self.settings.unroutable {
                Unroutable::Reject => Err(PublishError::Unroutable),
                Unroutable::Accept => {
                    tracing::warn!(
                        exchange = %message.exchange,
                        routing_key = %message.routing_key,
                        "no queue is bound for this domain: message dropped (unroutable = accept)"
                    );
                    Ok(())
                }
            },
            Confirmation::Nack(_) => Err(PublishError::Nacked),
            Confirmation::NotRequested => Err(PublishError::Failed(
                "the channel is not in confirm mode".into(),
            )),
        }
    }
}

impl AmqpPublisher {
    /// Connects, opens a confirm-mode channel, declares the exchanges and starts the
    /// supervisor that reconnects when the link dies. Must be called within a Tokio
    /// runtime.
    ///
    /// # Errors
    /// [`PublishError::Failed`] saying which step failed (a 406 on declare means the
    /// exchange exists with other flags: set `exchange_durable` to match). The first
    /// connection is not retried: a relay that cannot reach its broker at start-up says
    /// so and stops.
    pub async fn connect(settings: AmqpSettings) -> Result<Self, PublishError> {
        let link = open_link(&settings, 1).await?;
        let shared = Arc::new(Shared {
            settings,
            link: RwLock::new(Some(Arc::new(link))),
            broken: AtomicU64::new(0),
            wake: Notify::new(),
            closing: AtomicBool::new(false),
        });
        let supervisor = tokio::spawn(supervise(shared.clone()));
        Ok(Self {
            shared,
            supervisor: Mutex::new(Some(supervisor)),
        })
    }
}

/// Opens link number `generation`, bounded by the connect timeout.
async fn open_link(settings: &AmqpSettings, generation: u64) -> Result<Link, PublishError> {
    let url = &settings.url;
    let open = async {
        let mut uri = url.uri();
        uri.query.heartbeat.get_or_insert(DEFAULT_HEARTBEAT_SECS);
        let connection = Connection::connect_uri(
            uri,
            ConnectionProperties::default().with_connection_name("powens-relay".into()),
        )
        .await
        .map_err(|e| PublishError::Failed(format!("cannot connect to {url}: {e}")))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| PublishError::Failed(format!("cannot open a channel: {e}")))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| PublishError::Failed(format!("cannot enable publisher confirms: {e}")))?;
        declare_exchanges(&channel, &settings.exchanges).await?;
        Ok(Link {
            connection,
            channel,
            generation,
        })
    };
    timeout(settings.connect_timeout, open)
        .await
        .unwrap_or_else(|_| {
            Err(PublishError::Failed(format!(
                "cannot connect to {url}: no answer within {} s (connect_timeout_secs)",
                settings.connect_timeout.as_secs_f64()
            )))
        })
}

/// The supervisor: waits for the link to die, then reconnects until it succeeds or the
/// publisher closes.
async fn supervise(shared: Arc<Shared>) {
    let mut generation = 1;
    loop {
        // Watch the current link.
        loop {
            if shared.closing.load(Ordering::Acquire) {
                return;
            }
            if !shared.current().is_some_and(|link| shared.is_alive(&link)) {
                break;
            }
            tokio::select! {
                () = shared.wake.notified() => {}
                () = sleep(WATCH_INTERVAL) => {}
            }
        }
        if let Some(dead) = shared.replace_link(None) {
            tracing::warn!(
                "lost the broker connection: answering 503 until it is back; reconnecting"
            );
            tokio::spawn(close_link(dead, "connection replaced"));
        }

        let mut delay = FIRST_RETRY_DELAY;
        for attempt in 1u64.. {
            if shared.closing.load(Ordering::Acquire) {
                return;
            }
            generation += 1;
            match open_link(&shared.settings, generation).await {
                Ok(link) => {
                    shared.replace_link(Some(Arc::new(link)));
                    tracing::info!(attempt, "reconnected to the broker, exchanges declared");
                    break;
                }
                Err(e) => {
                    let wait = jittered(delay);
                    tracing::warn!(
                        attempt,
                        error = %e,
                        retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "reconnecting to the broker failed"
                    );
                    tokio::select! {
                        () = shared.wake.notified() => {}
                        () = sleep(wait) => {}
                    }
                    delay = delay
                        .saturating_mul(2)
                        .min(shared.settings.reconnect_max_delay);
                }
            }
        }
    }
}

/// A wait drawn uniformly between half of `delay` and all of it.
fn jittered(delay: Duration) -> Duration {
    let half = delay / 2;
    half + half.mul_f64(fastrand::f64())
}

/// Closes `link` politely, giving up after [`CLOSE_TIMEOUT`] (a link cut off from the
/// broker never answers); dropping it then releases what is left.
async fn close_link(link: Arc<Link>, reason: &'static str) {
    let close = async {
        if link.channel.status().connected() {
            let _ = link.channel.close(200, reason.into()).await;
        }
        if link.connection.status().connected() {
            link.connection.close(200, reason.into()).await
        } else {
            Ok(())
        }
    };
    match timeout(CLOSE_TIMEOUT, close).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "closing an AMQP connection failed"),
        Err(_) => tracing::debug!("closing an AMQP connection timed out"),
    }
}

impl Publisher for AmqpPublisher {
    fn publish<'a>(&'a self, message: &'a Outgoing) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            let Some(link) = self.shared.ready_link() else {
                return Err(PublishError::Unavailable);
            };
            match timeout(
                self.shared.settings.publish_timeout,
                self.shared.publish_on(&link, message),
            )
            .await
            {
                Ok(result) => result,
                Err(_) => {
                    // A healthy broker confirms in milliseconds: this link is likely cut
                    // off (traffic swallowed), which nothing else would reveal as quickly.
                    self.shared.report_broken(&link);
                    Err(PublishError::Timeout)
                }
            }
        })
    }

    fn is_ready(&self) -> bool {
        self.shared.ready_link().is_some()
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.shared.closing.store(true, Ordering::Release);
            self.shared.wake.notify_one();
            let supervisor = self
                .supervisor
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(supervisor) = supervisor {
                // It stops at its next look; a connection attempt in progress is
                // abandoned.
                supervisor.abort();
                let _ = supervisor.await;
            }
            if let Some(link) = self.shared.replace_link(None) {
                close_link(link, "relay shutting down").await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_between_half_and_all_of_the_delay() {
        let delay = Duration::from_millis(800);
        let waits: Vec<_> = (0..1000).map(|_| jittered(delay)).collect();
        assert!(waits.iter().all(|w| *w >= delay / 2 && *w <= delay));
        // Spread, not a constant: some in each half of the range.
        assert!(waits.iter().any(|w| *w < delay * 3 / 4));
        assert!(waits.iter().any(|w| *w > delay * 3 / 4));
    }
}
