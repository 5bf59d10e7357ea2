//! Why a command could not run at all (exit 2), in an operator's words.

use std::path::PathBuf;

use crate::domain::DomainError;
use crate::headers::HeaderError;
use crate::relay::broker::{AmqpUrlListError, BrokerError};
use crate::relay::callback::store::StoreError;
use crate::relay::callback::{LifetimeError, StateError};
use crate::relay::cli::journal::BadTime;
use crate::relay::config::ConfigError;
use crate::relay::consume::ConsumeError;
use crate::relay::dispatch::DispatchError;
use crate::relay::journal::JournalError;
use crate::relay::publish::PublishError;
use crate::relay::send::SendError;
use crate::relay::{RelayError, cli::SECRET_ENV};
use crate::secret::SecretError;

/// A command that could not run: the line printed after `error: `, exit code 2.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// A URL flag holds a password (the command line is visible to every local user).
    #[error(
        "{flag} holds a password, which every local user can read on the command line: set \
         {variable} (or {key} in the configuration file) instead"
    )]
    PasswordInArgv {
        /// The flag.
        flag: &'static str,
        /// The environment variable to use instead.
        variable: String,
        /// The configuration key.
        key: &'static str,
    },
    /// Standard output is gone or full.
    #[error("cannot write to standard output: {0}")]
    Stdout(#[source] std::io::Error),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The webhook secret could not be read.
    #[error("{0}; give the secret in {SECRET_ENV} or with --secret-file")]
    Secret(#[source] SecretError),
    /// The body file could not be read.
    #[error("cannot read the body file {}: {source}", path.display())]
    BodyFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Standard input could not be read.
    #[error("cannot read the body from standard input: {0}")]
    Stdin(#[source] std::io::Error),
    /// `--date` is not a `BI-Signature-Date`.
    #[error(transparent)]
    Date(#[from] HeaderError),
    /// `--state` is not a state.
    #[error("--state: {0}")]
    State(#[source] StateError),
    /// `--expires-in` is out of TeaL's limits.
    #[error("--expires-in: {0}")]
    ExpiresIn(#[source] LifetimeError),
    /// `--expires-in` does not fit a date.
    #[error("--expires-in is too large")]
    ExpiresInTooLarge,
    /// `--final-redirect-url` is not an `http(s)://` URL.
    #[error("--final-redirect-url must be an http:// or https:// URL")]
    RedirectUrl,
    /// `--domain` is not a Powens domain.
    #[error("--domain: {0}")]
    Domain(#[source] DomainError),
    /// `--amqp-url` is not a list of AMQP URLs.
    #[error("--amqp-url {0}")]
    AmqpUrl(#[source] AmqpUrlListError),
    /// `consume` was given no broker.
    #[error("no broker: give --amqp-url URL, or set POWENS_RELAY_AMQP_URL")]
    NoBroker,
    /// The listening socket cannot tell its address.
    #[error("cannot tell the address listened on: {0}")]
    LocalAddr(#[source] std::io::Error),
    /// The configuration is not valid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The relay could not start.
    #[error(transparent)]
    Relay(#[from] RelayError),
    /// The dispatcher could not start.
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    /// The callback store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Consuming failed.
    #[error(transparent)]
    Consume(#[from] ConsumeError),
    /// Sending failed.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The journal cannot be opened or read.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The broker could not be reached or set up.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The broker did not take a webhook from the journal.
    #[error("the broker did not take a webhook: {0}")]
    Publish(#[source] PublishError),
    /// `--since` or `--until` is not a time.
    #[error(transparent)]
    Time(#[from] BadTime),
}
