//! What the consumer receives: its bindings, fixed at start or changed while it runs.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use lapin::Channel;
use lapin::options::QueueBindOptions;
use lapin::types::FieldTable;
use tokio::sync::Mutex;

use crate::amq::TealExchange;
use crate::domain::Domain;
use crate::relay::broker::{Broker, BrokerError, Exchanges, short_string};

/// What to receive: webhooks by Powens domain, callbacks by state, CIBA callbacks by
/// authentication request id.
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    /// Powens domains (`powens_domain_webhooks`).
    pub domains: Vec<Domain>,
    /// Callback states (`callbacks`).
    pub callback_states: Vec<String>,
    /// CIBA authentication request ids (`openid_ciba_callbacks`).
    pub ciba_request_ids: Vec<String>,
}

impl Bindings {
    pub(super) fn pairs(&self) -> impl Iterator<Item = (TealExchange, String)> + '_ {
        let domains = self
            .domains
            .iter()
            .map(|d| (TealExchange::PowensDomainWebhooks, d.as_str().to_owned()));
        let states = self
            .callback_states
            .iter()
            .map(|s| (TealExchange::Callbacks, s.clone()));
        let ids = self
            .ciba_request_ids
            .iter()
            .map(|id| (TealExchange::OpenIdCibaCallbacks, id.clone()));
        domains.chain(states).chain(ids)
    }
}

/// The bindings wanted and the channel they are applied on, under one lock: a binding
/// added while the consumer reconnects is applied by whichever comes second.
#[derive(Debug, Default)]
pub(super) struct Wanted {
    pub(super) keys: BTreeSet<(TealExchange, String)>,
    pub(super) live: Option<(Channel, String)>,
}

/// Adds and removes the consumer's bindings while it runs; cheap to clone.
#[derive(Debug, Clone)]
pub struct BindingHandle {
    pub(super) wanted: Arc<Mutex<Wanted>>,
    /// Whether the consumer's connection is up (set on connection, cleared on loss).
    pub(super) connected: Arc<AtomicBool>,
    pub(super) exchanges: Exchanges,
    pub(super) broker: Broker,
}

impl BindingHandle {
    /// Receives messages of `exchange` with routing key `key` from now on (declaring the
    /// exchange if needed). Kept across reconnections.
    ///
    /// # Errors
    /// [`BrokerError`] when the key is too long, or the broker refused the binding. A
    /// binding the connection died before applying is applied on reconnection.
    pub async fn bind(&self, exchange: TealExchange, key: &str) -> Result<(), BrokerError> {
        short_string(key)?;
        let mut wanted = self.wanted.lock().await;
        if !wanted.keys.insert((exchange, key.to_owned())) {
            return Ok(());
        }
        if let Some((channel, queue)) = &wanted.live {
            self.exchanges.declare(channel, &[exchange]).await?;
            set_binding(channel, queue, &self.exchanges, (exchange, key), true).await?;
        }
        Ok(())
    }

    /// Stops receiving messages of `exchange` with `key`.
    ///
    /// # Errors
    /// [`BrokerError::Bind`] when the broker refused; the binding is forgotten anyway
    /// (it goes with the queue on reconnection).
    pub async fn unbind(&self, exchange: TealExchange, key: &str) -> Result<(), BrokerError> {
        let mut wanted = self.wanted.lock().await;
        if !wanted.keys.remove(&(exchange, key.to_owned())) {
            return Ok(());
        }
        if let Some((channel, queue)) = &wanted.live {
            set_binding(channel, queue, &self.exchanges, (exchange, key), false).await?;
        }
        Ok(())
    }

    /// Whether the consumer is connected now (its queue and bindings declared).
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// The broker node the consumer is connected to now (its URL without the password).
    pub fn node(&self) -> Option<String> {
        if !self.is_connected() {
            return None;
        }
        self.broker.node_in_use().map(ToString::to_string)
    }

    /// The bindings wanted now.
    pub async fn current(&self) -> Vec<(TealExchange, String)> {
        self.wanted.lock().await.keys.iter().cloned().collect()
    }
}

/// Binds `queue` to `exchange` with `key` (`bound`), or unbinds it.
pub(super) async fn set_binding(
    channel: &Channel,
    queue: &str,
    exchanges: &Exchanges,
    (exchange, key): (TealExchange, &str),
    bound: bool,
) -> Result<(), BrokerError> {
    let name = exchanges.name(exchange);
    let (queue, exchange_name, routing_key) = (
        short_string(queue)?,
        short_string(&name)?,
        short_string(key)?,
    );
    let done = if bound {
        let options = QueueBindOptions::default();
        let arguments = FieldTable::default();
        channel
            .queue_bind(queue, exchange_name, routing_key, options, arguments)
            .await
    } else {
        channel
            .queue_unbind(queue, exchange_name, routing_key, FieldTable::default())
            .await
    };
    done.map_err(|e| BrokerError::Bind {
        exchange: name,
        key: key.to_owned(),
        source: e.into(),
    })
}
