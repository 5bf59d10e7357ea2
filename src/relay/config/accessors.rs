//! What a validated configuration holds, read-only (and the broker, replaceable).

use std::net::SocketAddr;
use std::time::Duration;

use url::Url;

use super::{AmqpUrl, LogFormat, RelayConfig, Unroutable};
use crate::amq::TealExchange;
use crate::axum::WebhookConfig;
use crate::relay::broker::{Broker, Exchanges};
use crate::relay::callback::store::StoreSpec;

impl RelayConfig {
    /// Uses the broker at `url` (tests and embedding).
    #[must_use]
    pub fn with_amqp_url(mut self, url: AmqpUrl) -> Self {
        self.amqp_urls = vec![url];
        self
    }

    /// Uses the nodes of one cluster (tests and embedding); none writes messages to
    /// standard output.
    #[must_use]
    pub fn with_amqp_urls(mut self, nodes: Vec<AmqpUrl>) -> Self {
        self.amqp_urls = nodes;
        self
    }

    /// The address to listen on.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// The first node of the broker; `None` writes messages to standard output.
    pub fn amqp_url(&self) -> Option<&AmqpUrl> {
        self.amqp_urls.first()
    }

    /// The broker's nodes, in the order given (empty: no broker).
    pub fn amqp_urls(&self) -> &[AmqpUrl] {
        &self.amqp_urls
    }

    /// The broker, with the configured connect time-out; `None` without `amqp_url`.
    pub fn broker(&self) -> Option<Broker> {
        Broker::cluster(self.amqp_urls.clone())
            .map(|broker| broker.with_connect_timeout(self.connect_timeout))
    }

    /// How the exchanges are named and declared.
    pub fn exchanges(&self) -> &Exchanges {
        &self.exchanges
    }

    /// The name of the exchange webhooks are published on.
    pub fn webhook_exchange(&self) -> String {
        self.exchanges.name(TealExchange::PowensDomainWebhooks)
    }

    /// The answer to an unroutable message.
    pub fn unroutable(&self) -> Unroutable {
        self.unroutable
    }

    /// The webhook pipeline's configuration: domains, limits, path prefix.
    pub fn webhooks(&self) -> &WebhookConfig {
        &self.webhooks
    }

    /// How long a publish may wait for the broker's confirm.
    pub fn publish_timeout(&self) -> Duration {
        self.publish_timeout
    }

    /// How long one attempt to connect to the broker may take.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The longest wait between two reconnection attempts.
    pub fn reconnect_max_delay(&self) -> Duration {
        self.reconnect_max_delay
    }

    /// Most webhook requests handled at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Most open client connections.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// How long a request head (and, separately, a body) may take to arrive.
    pub fn read_timeout(&self) -> Duration {
        self.read_timeout
    }

    /// Largest request head, in bytes.
    pub fn max_header_bytes(&self) -> usize {
        self.max_header_bytes
    }

    /// The log format.
    pub fn log_format(&self) -> LogFormat {
        self.log_format
    }

    /// The callback store.
    pub fn store(&self) -> &StoreSpec {
        &self.store
    }

    /// The listener's public base URL (ends with `/`).
    pub fn public_url(&self) -> &Url {
        &self.public_url
    }

    /// Whether each callback state is used once.
    pub fn callback_one_shot(&self) -> bool {
        self.callback_one_shot
    }

    /// The hosts the redirect fallback may send a browser to (empty: off).
    pub fn redirect_fallback_hosts(&self) -> &[String] {
        &self.redirect_fallback_hosts
    }

    /// The dispatcher's settings.
    pub fn dispatcher(&self) -> &super::DispatcherConfig {
        &self.dispatcher
    }

    /// Uses these dispatcher settings (tests and embedding).
    #[must_use]
    pub fn with_dispatcher(mut self, dispatcher: super::DispatcherConfig) -> Self {
        self.dispatcher = dispatcher;
        self
    }
}
