//! Who wants what: each websocket client's bounded queue, the routing keys each client
//! registered to, and the broker bindings that follow them (bound when a key's first
//! client registers, unbound when its last one leaves).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::ws::Utf8Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::{Notify, mpsc, watch};

use super::frames::Kind;
use super::metrics::DispatcherMetrics;
use crate::amq::TealExchange;
use crate::relay::broker::BrokerError;
use crate::relay::consume::Received;
use crate::relay::reply::Readiness;

/// An exchange and a routing key.
pub(crate) type Key = (TealExchange, String);

/// Where bindings go: the broker consumer's queue, or nowhere for the in-process bus
/// (the hub's own table is the routing table).
pub(crate) trait Subscriber: Send + Sync + 'static {
    fn bind<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, Result<(), BrokerError>>;
    fn unbind<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, Result<(), BrokerError>>;
    /// Whether messages can arrive now (`/readyz`).
    fn is_ready(&self) -> bool;
    /// The broker node messages come from now, if any (`/readyz`, the metrics).
    fn broker_node(&self) -> Option<String> {
        None
    }
}

/// A broker delivery shared by the clients it is queued for: acknowledged when the last
/// of them has written it to its socket (or gone away).
#[derive(Debug)]
pub(crate) struct Delivery(Option<Received>);

impl Delivery {
    pub(crate) fn new(received: Received) -> Self {
        Self(Some(received))
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        let Some(received) = self.0.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            if let Err(e) = received.ack().await {
                tracing::debug!(error = %e, "acknowledgement lost with the connection");
            }
        });
    }
}

/// A frame on its way to one client. Dropping it (written, or its client gone) releases
/// its share of the delivery: the broker's message is acknowledged once every share is
/// released.
#[derive(Debug)]
pub(crate) struct Outbound {
    pub(crate) frame: Utf8Bytes,
    pub(crate) kind: Kind,
    _delivery: Option<Arc<Delivery>>,
}

/// A client as the hub knows it.
#[derive(Debug)]
struct Client {
    queue: mpsc::Sender<Outbound>,
    overflow: Arc<Notify>,
    keys: HashSet<Key>,
}

#[derive(Debug, Default)]
struct Table {
    clients: HashMap<u64, Client>,
    by_key: HashMap<Key, HashSet<u64>>,
}

/// What a connected client holds.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) id: u64,
    pub(crate) queue: mpsc::Receiver<Outbound>,
    /// Notified when the client's queue overflowed: it must be closed (1013).
    pub(crate) overflow: Arc<Notify>,
    /// Becomes true when the dispatcher shuts down (close with 1001).
    pub(crate) shutdown: watch::Receiver<bool>,
}

/// The dispatcher's routing table.
pub(crate) struct Hub {
    table: Mutex<Table>,
    /// Serialises binding changes, so that a bind and an unbind of one key reach the
    /// broker in the order the table changed.
    bindings: tokio::sync::Mutex<()>,
    subscriber: Arc<dyn Subscriber>,
    queue_len: usize,
    next_id: AtomicU64,
    shutdown: watch::Sender<bool>,
    pub(crate) metrics: Arc<DispatcherMetrics>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("queue_len", &self.queue_len)
            .finish_non_exhaustive()
    }
}

impl Hub {
    pub(crate) fn new(
        subscriber: Arc<dyn Subscriber>,
        queue_len: usize,
        metrics: Arc<DispatcherMetrics>,
    ) -> Self {
        Self {
            table: Mutex::default(),
            bindings: tokio::sync::Mutex::new(()),
            subscriber,
            queue_len: queue_len.max(1),
            next_id: AtomicU64::new(1),
            shutdown: watch::Sender::new(false),
            metrics,
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn readiness(&self) -> Readiness {
        Readiness {
            ready: self.subscriber.is_ready(),
            node: self.subscriber.broker_node(),
            store_down: false,
            journal: None,
        }
    }

    /// Clients connected now.
    pub(crate) fn client_count(&self) -> usize {
        self.table().clients.len()
    }

    /// A new client, with its queue.
    pub(crate) fn connect(&self) -> Connection {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = mpsc::channel(self.queue_len);
        let overflow = Arc::new(Notify::new());
        self.table().clients.insert(
            id,
            Client {
                queue: sender,
                overflow: overflow.clone(),
                keys: HashSet::new(),
            },
        );
        self.metrics.connections.inc();
        Connection {
            id,
            queue: receiver,
            overflow,
            shutdown: self.shutdown.subscribe(),
        }
    }

    /// Registers client `id` to `key`, binding the key first if it is the first client
    /// to want it.
    pub(crate) async fn register(&self, id: u64, key: Key) -> Result<(), BrokerError> {
        let _order = self.bindings.lock().await;
        let first = {
            let mut table = self.table();
            let Some(client) = table.clients.get_mut(&id) else {
                return Ok(());
            };
            if !client.keys.insert(key.clone()) {
                return Ok(());
            }
            let first = !table.by_key.contains_key(&key);
            table.by_key.entry(key.clone()).or_default().insert(id);
            first
        };
        if first && let Err(e) = self.subscriber.bind(&key).await {
            // Not registered after all: the client may try again.
            let mut table = self.table();
            if let Some(client) = table.clients.get_mut(&id) {
                client.keys.remove(&key);
            }
            table.by_key.remove(&key);
            return Err(e);
        }
        Ok(())
    }

    /// Forgets client `id`, unbinding the keys no other client wants.
    pub(crate) async fn disconnect(&self, id: u64) {
        let _order = self.bindings.lock().await;
        let orphans: Vec<Key> = {
            let mut table = self.table();
            let Some(client) = table.clients.remove(&id) else {
                return;
            };
            client
                .keys
                .into_iter()
                .filter(|key| {
                    let Some(ids) = table.by_key.get_mut(key) else {
                        return false;
                    };
                    ids.remove(&id);
                    let last = ids.is_empty();
                    if last {
                        table.by_key.remove(key);
                    }
                    last
                })
                .collect()
        };
        self.metrics.connections.dec();
        for key in orphans {
            if let Err(e) = self.subscriber.unbind(&key).await {
                tracing::warn!(exchange = %key.0, error = %e, "unbinding failed (the binding goes with the queue)");
            }
        }
    }

    /// Queues `frame` for every client registered to `key`; returns how many. A client
    /// whose queue is full is told to close (1013). `delivery` is released once every
    /// client has written (or dropped) its copy.
    pub(crate) fn deliver(
        &self,
        key: (TealExchange, &str),
        kind: Kind,
        frame: Utf8Bytes,
        delivery: Option<Arc<Delivery>>,
    ) -> usize {
        let table = self.table();
        // A borrowed key cannot look up a (TealExchange, String) map without an owned
        // copy; one per message is cheap next to the JSON.
        let Some(ids) = table.by_key.get(&(key.0, key.1.to_owned())) else {
            return 0;
        };
        let mut queued = 0;
        for id in ids {
            let Some(client) = table.clients.get(id) else {
                continue;
            };
            let outbound = Outbound {
                frame: frame.clone(),
                kind,
                _delivery: delivery.clone(),
            };
            match client.queue.try_send(outbound) {
                Ok(()) => queued += 1,
                Err(mpsc::error::TrySendError::Full(_)) => client.overflow.notify_one(),
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        queued
    }

    /// Tells every client to close (1001) and waits, at most `grace`, until they have.
    pub(crate) async fn shut_down(&self, grace: std::time::Duration) {
        self.shutdown.send_replace(true);
        let deadline = tokio::time::Instant::now() + grace;
        while self.client_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
