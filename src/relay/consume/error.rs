//! Why consuming failed.

use crate::message::MessageError;
use crate::relay::broker::{AmqpError, BrokerError};

/// Why consuming failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumeError {
    /// Connecting, declaring or binding failed.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// No broker node was given.
    #[error("no broker node was given")]
    NoNodes,
    /// A quorum queue was asked for without a name: a private queue is exclusive, and
    /// an exclusive queue cannot be a quorum queue.
    #[error("a quorum queue needs a name (queue): a private queue is always classic")]
    UnnamedQuorumQueue,
    /// An acknowledgement could not be sent: the connection died, and the message will
    /// be delivered again.
    #[error("the broker connection failed: {0}")]
    Connection(#[source] AmqpError),
    /// An acknowledgement (or a rejection) was not written within
    /// [`ACK_TIMEOUT`](super::ACK_TIMEOUT): its connection is taken as lost, and the
    /// message will be delivered again.
    #[error(
        "the broker did not take an acknowledgement within {secs} s: the connection is taken as lost, and the message will be delivered again"
    )]
    AckTimeout {
        /// The time-out, in seconds.
        secs: u64,
    },
    /// A message could not be read; it was rejected without requeueing (so it goes to
    /// the queue's dead-letter exchange, if any) rather than redelivered forever.
    #[error("a message on {exchange} could not be read and was rejected: {error}")]
    Malformed {
        /// The exchange it came from.
        exchange: String,
        /// What was wrong.
        #[source]
        error: MessageError,
    },
}
