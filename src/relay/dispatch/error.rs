//! Why the dispatcher could not start.

use crate::relay::callback::store::StoreError;
use crate::relay::consume::ConsumeError;
use crate::relay::server::BindError;
use crate::secret::SecretError;

/// Why the dispatcher could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    /// No broker configured: `dispatch` consumes from RabbitMQ.
    #[error(
        "powens-relay dispatch needs amqp_url (set POWENS_RELAY_AMQP_URL); to try the \
         dispatcher without a broker, run serve with --dispatcher true"
    )]
    NoBroker,
    /// The password could not be read.
    #[error("dispatcher_password: {0}")]
    Password(#[source] SecretError),
    /// The broker could not be reached or set up.
    #[error(transparent)]
    Consume(#[from] ConsumeError),
    /// The callback store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The listen address could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
}
