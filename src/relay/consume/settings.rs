//! How a consumer sets up its queue and recovers.

use std::time::Duration;

use crate::relay::broker;

/// How to set up the queue and recover.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Prefix of the exchange names, as the relay's.
    pub exchange_prefix: String,
    /// Declare the exchanges durable, as the relay does.
    pub exchange_durable: bool,
    /// A named durable queue that outlives the consumer; `None` (TeaL's way) declares a
    /// private, server-named queue deleted when the consumer disconnects.
    pub queue: Option<String>,
    /// The type of the named queue: [`QueueType::Quorum`] on a cluster, so that it
    /// survives the loss of a node. A private queue is always classic (exclusive
    /// queues live on the node of their connection).
    pub queue_type: QueueType,
    /// Messages delivered before they are acknowledged (0: unlimited).
    pub prefetch: u16,
    /// How long one connection attempt (connection, queue, bindings) may take.
    pub connect_timeout: Duration,
    /// The longest wait between two reconnection attempts.
    pub reconnect_max_delay: Duration,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            exchange_prefix: String::new(),
            exchange_durable: false,
            queue: None,
            queue_type: QueueType::Classic,
            prefetch: 64,
            connect_timeout: broker::DEFAULT_CONNECT_TIMEOUT,
            reconnect_max_delay: Duration::from_secs(1),
        }
    }
}

/// The type of a named queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueType {
    /// RabbitMQ's classic queue (durable): its messages live on one node.
    #[default]
    Classic,
    /// A quorum queue (`x-queue-type = quorum`, durable): replicated on a majority of
    /// the cluster's nodes, a confirmed message survives the loss of a minority.
    Quorum,
}

impl QueueType {
    /// The type's name, as `x-queue-type` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Classic => "classic",
            Self::Quorum => "quorum",
        }
    }
}

/// A queue type other than `classic` or `quorum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be classic or quorum")]
pub struct QueueTypeError;

impl std::str::FromStr for QueueType {
    type Err = QueueTypeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "classic" => Ok(Self::Classic),
            "quorum" => Ok(Self::Quorum),
            _ => Err(QueueTypeError),
        }
    }
}
