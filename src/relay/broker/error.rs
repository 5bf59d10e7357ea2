//! What can go wrong with the broker, naming the node without its password.

use std::sync::Arc;

use lapin::types::ShortString;

/// An error of the AMQP client, as text: which dependency reported it is not part of
/// this crate's API.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct AmqpError(Arc<lapin::Error>);

impl From<lapin::Error> for AmqpError {
    fn from(error: lapin::Error) -> Self {
        Self(Arc::new(error))
    }
}

/// Why the broker could not be reached or set up.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The connection (TCP, TLS, AMQP handshake, login) failed.
    #[error("cannot connect to the broker at {url}: {source}")]
    Connect {
        /// The broker's URL, without its password.
        url: String,
        /// What failed.
        source: AmqpError,
    },
    /// The connection attempt took longer than the connect time-out.
    #[error(
        "cannot connect to the broker at {url}: no answer within {secs} s (connect_timeout_secs)"
    )]
    ConnectTimeout {
        /// The broker's URL, without its password.
        url: String,
        /// The time-out, in seconds.
        secs: f64,
    },
    /// A step after connecting failed: opening a channel, enabling confirms, setting
    /// the prefetch count, declaring the queue, consuming.
    #[error("cannot {step}: {source}")]
    Setup {
        /// What was being done.
        step: &'static str,
        /// What failed.
        source: AmqpError,
    },
    /// An exchange could not be declared: a 406 means it exists with other flags.
    #[error(
        "cannot declare exchange {exchange} (durable = {durable}): {source}; if it exists with other flags, set exchange_durable to match"
    )]
    Declare {
        /// The exchange.
        exchange: String,
        /// The durability asked for.
        durable: bool,
        /// What failed.
        source: AmqpError,
    },
    /// A queue binding could not be added or removed.
    #[error("cannot bind or unbind the queue to {exchange} with key {key}: {source}")]
    Bind {
        /// The exchange.
        exchange: String,
        /// The routing key.
        key: String,
        /// What failed.
        source: AmqpError,
    },
    /// A name, routing key or message id is longer than AMQP allows.
    #[error("a name, routing key or message id is {len} bytes long, more than the 255 AMQP allows")]
    NameTooLong {
        /// Its length in bytes.
        len: usize,
    },
}

impl BrokerError {
    /// A failure of `step` after connecting.
    pub(crate) fn setup(step: &'static str) -> impl FnOnce(lapin::Error) -> Self {
        move |e| Self::Setup {
            step,
            source: e.into(),
        }
    }
}

/// `text` as an AMQP short string (names, routing keys, message ids: 255 bytes at most).
///
/// # Errors
/// [`BrokerError::NameTooLong`].
pub(crate) fn short_string(text: &str) -> Result<ShortString, BrokerError> {
    ShortString::try_new(text).map_err(|_| BrokerError::NameTooLong { len: text.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_refused_with_their_length() {
        assert!(short_string(&"x".repeat(255)).is_ok());
        assert!(matches!(
            short_string(&"x".repeat(256)),
            Err(BrokerError::NameTooLong { len: 256 })
        ));
    }
}
