//! The broker, once for every role (publisher, consumer, load harness): connecting
//! within a time-out with a heartbeat, to one node or to the nodes of a cluster in
//! turn, TeaL's exchanges, reconnection backoff, and closing politely. Errors name the
//! node by its URL without the password.
//!
//! With several nodes, each process starts at a node drawn at random (so that replicas
//! spread their connections over the cluster) and keeps to it while it answers. A
//! connection attempt that fails or times out moves the next attempt on to the next
//! node in the list, round it; the caller's backoff paces the attempts, as with one node.

mod backoff;
mod error;
mod exchanges;
mod url;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lapin::{Channel, Connection, ConnectionProperties};
use tokio::time::timeout;

pub(crate) use backoff::Backoff;
pub(crate) use error::short_string;
pub use error::{AmqpError, BrokerError};
pub(crate) use exchanges::Exchanges;
pub use url::{AmqpUrl, AmqpUrlError, AmqpUrlListError};

/// The AMQP heartbeat asked for when the URL sets none (seconds). lapin closes a
/// connection that has been silent for twice this long.
pub(crate) const DEFAULT_HEARTBEAT_SECS: u16 = 10;
/// Default longest time one connection attempt may take.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long closing a connection may take (a connection cut off never answers).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The broker as configured: its nodes (none: no broker), how exchanges are named and
/// declared, and how connections are attempted.
#[derive(Debug, Clone)]
pub(crate) struct BrokerSettings {
    /// The nodes of `amqp_url`, in the order given.
    pub(crate) nodes: Vec<AmqpUrl>,
    /// How the exchanges are named and declared.
    pub(crate) exchanges: Exchanges,
    /// Longest a connection attempt may take.
    pub(crate) connect_timeout: Duration,
    /// The longest wait between two reconnection attempts.
    pub(crate) reconnect_max_delay: Duration,
}

impl BrokerSettings {
    /// The broker, with the configured connect time-out; `None` without `amqp_url`.
    pub(crate) fn broker(&self) -> Option<Broker> {
        Broker::cluster(self.nodes.clone())
            .map(|broker| broker.with_connect_timeout(self.connect_timeout))
    }
}

/// How to reach the broker: one node, or the nodes of a cluster tried in turn (see the
/// module documentation). Clones share which node is in use.
#[derive(Debug, Clone)]
pub(crate) struct Broker {
    nodes: Arc<[AmqpUrl]>,
    cursor: Arc<Cursor>,
    connect_timeout: Duration,
    connection_name: &'static str,
}

/// Where the attempts are: indexes into the nodes.
#[derive(Debug, Default)]
struct Cursor {
    /// The node the next attempt goes to.
    next: AtomicUsize,
    /// The node of the attempt in progress or last made.
    attempted: AtomicUsize,
    /// 1 + the node of the last connection made (0: none yet).
    in_use: AtomicUsize,
}

/// Moves the next attempt on to the following node unless disarmed: an attempt that
/// fails, or is dropped by the time-out around it, leaves its node behind.
struct MoveOn<'a> {
    cursor: &'a Cursor,
    index: usize,
    nodes: usize,
    armed: bool,
}

impl Drop for MoveOn<'_> {
    fn drop(&mut self) {
        if self.armed {
            // Only from the failed node: another clone may have moved on already.
            let _ = self.cursor.next.compare_exchange(
                self.index,
                (self.index + 1) % self.nodes,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }
}

impl Broker {
    /// The broker at `url`, with the default connect time-out.
    pub(crate) fn new(url: AmqpUrl) -> Self {
        Self::starting_at(Arc::from([url]), 0)
    }

    /// The nodes of one cluster, tried in turn from one drawn at random; `None` if
    /// `nodes` is empty.
    pub(crate) fn cluster(nodes: Vec<AmqpUrl>) -> Option<Self> {
        let start = (!nodes.is_empty()).then(|| fastrand::usize(..nodes.len()))?;
        Some(Self::starting_at(Arc::from(nodes), start))
    }

    /// `nodes` (not empty), the first attempt going to node `start`.
    fn starting_at(nodes: Arc<[AmqpUrl]>, start: usize) -> Self {
        Self {
            nodes,
            cursor: Arc::new(Cursor {
                next: AtomicUsize::new(start),
                ..Cursor::default()
            }),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            connection_name: "powens-relay",
        }
    }

    /// Bounds each connection attempt (and the set-up run with [`Broker::bounded`]).
    #[must_use]
    pub(crate) fn with_connect_timeout(mut self, connect_timeout: Duration) -> Self {
        self.connect_timeout = connect_timeout;
        self
    }

    /// The name the connection shows in RabbitMQ's management UI.
    #[must_use]
    pub(crate) fn with_connection_name(mut self, name: &'static str) -> Self {
        self.connection_name = name;
        self
    }

    /// The nodes, in the order they are tried.
    #[cfg(test)]
    pub(crate) fn nodes(&self) -> &[AmqpUrl] {
        &self.nodes
    }

    /// The node of the last connection made, whether or not it is still up: say it
    /// with the caller's own view of the connection's health.
    pub(crate) fn node_in_use(&self) -> Option<&AmqpUrl> {
        let in_use = self.cursor.in_use.load(Ordering::Acquire);
        in_use.checked_sub(1).and_then(|i| self.nodes.get(i))
    }

    fn attempted(&self) -> &AmqpUrl {
        let index = self.cursor.attempted.load(Ordering::Acquire);
        &self.nodes[index % self.nodes.len()]
    }

    /// Runs `attempt` once per node at most, until one succeeds: the first connection of
    /// a process, which is not retried with backoff, still gets every node of a cluster.
    ///
    /// # Errors
    /// The last attempt's.
    pub(crate) async fn first_of_each<T>(
        &self,
        mut attempt: impl AsyncFnMut() -> Result<T, BrokerError>,
    ) -> Result<T, BrokerError> {
        let mut tried = 1;
        loop {
            match attempt().await {
                Err(e) if tried < self.nodes.len() => {
                    tracing::warn!(error = %e, "trying the next node of the cluster");
                    tried += 1;
                }
                done => return done,
            }
        }
    }

    /// Runs `setup` (connecting, opening channels, declaring) within the connect
    /// time-out.
    ///
    /// # Errors
    /// `setup`'s, or [`BrokerError::ConnectTimeout`].
    pub(crate) async fn bounded<T>(
        &self,
        setup: impl Future<Output = Result<T, BrokerError>>,
    ) -> Result<T, BrokerError> {
        timeout(self.connect_timeout, setup)
            .await
            .unwrap_or_else(|_| {
                Err(BrokerError::ConnectTimeout {
                    url: self.attempted().to_string(),
                    secs: self.connect_timeout.as_secs_f64(),
                })
            })
    }

    /// A connection to the current node with the default heartbeat (unless the URL sets
    /// one), and a channel on it. If it fails (or is dropped by a time-out), the next
    /// attempt goes to the next node. Not bounded: wrap in [`Broker::bounded`].
    ///
    /// # Errors
    /// [`BrokerError::Connect`] or [`BrokerError::Setup`].
    pub(crate) async fn open(&self) -> Result<(Connection, Channel), BrokerError> {
        let count = self.nodes.len();
        let index = self.cursor.next.load(Ordering::Acquire) % count;
        self.cursor.attempted.store(index, Ordering::Release);
        let mut move_on = MoveOn {
            cursor: &self.cursor,
            index,
            nodes: count,
            armed: true,
        };
        let url = &self.nodes[index];
        let mut uri = url.uri();
        uri.query.heartbeat.get_or_insert(DEFAULT_HEARTBEAT_SECS);
        let properties =
            ConnectionProperties::default().with_connection_name(self.connection_name.into());
        let connection = Connection::connect_uri(uri, properties)
            .await
            .map_err(|e| BrokerError::Connect {
                url: url.to_string(),
                source: e.into(),
            })?;
        let channel = connection
            .create_channel()
            .await
            .map_err(BrokerError::setup("open a channel"))?;
        move_on.armed = false;
        self.cursor.in_use.store(index + 1, Ordering::Release);
        if count > 1 {
            tracing::debug!(node = %url, "connected to a node of the cluster");
        }
        Ok((connection, channel))
    }
}

/// Closes `channel` and `connection` politely, giving up after a short time-out (a link
/// cut off from the broker never answers); dropping them then releases what is left.
pub(crate) async fn close(connection: &Connection, channel: &Channel, reason: &str) {
    let close = async {
        if channel.status().connected() {
            let _ = channel.close(200, reason.into()).await;
        }
        if connection.status().connected() {
            connection.close(200, reason.into()).await
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The node each failed attempt named, in order.
    async fn failed_attempts(broker: &Broker, attempts: usize) -> Vec<String> {
        let mut named = Vec::new();
        for _ in 0..attempts {
            match broker.bounded(broker.open()).await {
                Err(BrokerError::Connect { url, .. } | BrokerError::ConnectTimeout { url, .. }) => {
                    named.push(url);
                }
                other => panic!("expected a failed connection, got {other:?}"),
            }
        }
        named
    }

    #[tokio::test]
    async fn failed_and_timed_out_attempts_move_on_round_the_nodes() {
        // A port nothing listens on refuses at once; a listener that never accepts
        // holds the AMQP handshake until the time-out drops the attempt.
        let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let refused_port = refused.local_addr().unwrap().port();
        drop(refused);
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let silent_port = silent.local_addr().unwrap().port();
        let nodes: Vec<_> = [refused_port, silent_port]
            .iter()
            .map(|port| AmqpUrl::parse(&format!("amqp://127.0.0.1:{port}/%2f")).unwrap())
            .collect();
        let names: Vec<_> = nodes.iter().map(ToString::to_string).collect();
        let broker = Broker::cluster(nodes)
            .unwrap()
            .with_connect_timeout(Duration::from_millis(300));
        let named = failed_attempts(&broker, 4).await;
        // Whichever node it started at, it alternates: a time-out moves on as a
        // refusal does.
        assert!(named.iter().all(|n| names.contains(n)), "{named:?}");
        assert!(named.windows(2).all(|w| w[0] != w[1]), "{named:?}");
        assert!(broker.node_in_use().is_none());
        // Clones share the cursor: a clone's next attempt follows on.
        let clone = broker.clone();
        let next = failed_attempts(&clone, 1).await;
        assert_ne!(next[0], named[3]);
    }

    #[test]
    fn a_cluster_needs_a_node() {
        assert!(Broker::cluster(Vec::new()).is_none());
    }
}
