//! The relay (feature `relay`): what `powens-relay` runs, to embed in a program of your
//! own, and the consumer side.
//!
//! - [`Relay`] (`powens-relay serve`) receives Powens webhooks over HTTP, verifies
//!   them and publishes them to RabbitMQ, answering 204 only once the broker has
//!   confirmed the message; it also serves TeaL's listener routes (`/callback`,
//!   `/errback`, `/raw-callback`, `/openid-ciba-callback`) and, with `dispatcher =
//!   true`, the websocket dispatcher's.
//! - [`Dispatcher`] (`powens-relay dispatch`) is TeaL's websocket dispatcher on its
//!   own address: clients register to callback states, CIBA requests and Powens
//!   domains, and receive their messages from RabbitMQ as they come.
//! - [`consume`] receives TeaL's messages from RabbitMQ, typed, acknowledged once
//!   handled: [`consume::TealConsumer`].
//!
//! Both servers take a [`RelayConfig`]: a TOML file overridden by flags and
//! `POWENS_RELAY_*` variables, validated whole ([`RelayConfig::load`]), or built in
//! code with [`Overrides`]. Running the relay inside your own program (what
//! `powens-relay serve` does):
//!
//! ```no_run
//! use powens_webhooks::relay::{Overrides, Relay, RelayConfig, shutdown_signal};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let overrides = Overrides::new().with_config("relay.toml");
//! let config = RelayConfig::load(&overrides)?; // every key checked, secrets read
//! let relay = Relay::start(&config).await?; // broker connected, exchanges declared
//! println!("listening on {}", relay.local_addr()?);
//! relay.run(shutdown_signal()).await;
//! # Ok(())
//! # }
//! ```
//!
//! To receive webhooks in your own axum handlers instead, see [`crate::axum`].

pub(crate) mod app;
pub(crate) mod basic_auth;
pub(crate) mod broker;
pub(crate) mod callback;
pub mod cli;
pub(crate) mod config;
pub(crate) mod console;
pub mod consume;
pub(crate) mod diagnose;
pub(crate) mod dispatch;
pub(crate) mod durable;
pub(crate) mod journal;
pub(crate) mod listener;
pub(crate) mod logs;
pub(crate) mod ops;
pub(crate) mod probes;
pub(crate) mod publish;
pub(crate) mod redact;
pub(crate) mod reply;
pub(crate) mod secret_ref;
pub(crate) mod send;
pub(crate) mod server;
#[cfg(feature = "test-util")]
#[doc(hidden)]
pub mod testing;
pub(crate) mod webhook;

pub use app::{Dispatcher, Relay, RelayError};
pub use broker::{AmqpError, AmqpUrl, AmqpUrlError, AmqpUrlListError, BrokerError};
pub use callback::store::{BackendError, StoreError};
pub use config::{ConfigError, Overrides, Problem, RelayConfig};
pub use dispatch::DispatchError;
pub use durable::JournalStartError;
pub use server::{BindError, shutdown_signal};
