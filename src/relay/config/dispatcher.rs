//! The dispatcher's settings (`powens-relay dispatch`, or `serve` with `dispatcher`).

use std::net::SocketAddr;
use std::time::Duration;

use url::Url;

use super::read::{self, Reader};
use super::values::SecretRef;

/// The dispatcher's settings, checked.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    in_serve: bool,
    listen: SocketAddr,
    listener_url: Url,
    password: SecretRef,
    max_clients: usize,
    queue_len: usize,
    ping_interval: Duration,
}

impl DispatcherConfig {
    /// Reads the dispatcher's keys; `public_url` is `listener_url`'s default.
    pub(super) fn read(r: &mut Reader<'_>, public_url: &Url) -> Self {
        let in_serve = matches!(r.value("dispatcher"), Some(super::Value::Bool(true)));
        let listen = r
            .text("dispatcher_listen")
            .parse::<SocketAddr>()
            .unwrap_or_else(|_| {
                r.problem(
                    "dispatcher_listen",
                    "must be an IP address and port, e.g. 127.0.0.1:8081",
                );
                SocketAddr::from(([127, 0, 0, 1], 0))
            });
        let listener_url = match r.text("listener_url") {
            text if text.is_empty() => public_url.clone(),
            text => read::public_url(&text, listen).unwrap_or_else(|m| {
                r.problem("listener_url", m);
                public_url.clone()
            }),
        };
        let password = SecretRef::parse(&r.text("dispatcher_password")).unwrap_or_else(|e| {
            r.problem("dispatcher_password", e.to_string());
            SecretRef::Env("POWENS_RELAY_DISPATCHER_PASSWORD".into())
        });
        Self {
            in_serve,
            listen,
            listener_url,
            password,
            max_clients: r.count("dispatcher_max_clients", 1, 10_000_000),
            queue_len: r.count("dispatcher_queue_len", 1, 1_000_000),
            ping_interval: r.seconds("dispatcher_ping_secs", 1),
        }
    }

    /// Whether `serve` hosts the dispatcher's routes too.
    pub fn in_serve(&self) -> bool {
        self.in_serve
    }

    /// The address `powens-relay dispatch` listens on.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// The listener's public base URL (ends in `/`), for the metadata.
    pub fn listener_url(&self) -> &Url {
        &self.listener_url
    }

    /// Where the websocket password is read.
    pub fn password(&self) -> &SecretRef {
        &self.password
    }

    /// Most websocket clients at once.
    pub fn max_clients(&self) -> usize {
        self.max_clients
    }

    /// Messages waiting per client before it is closed (1013).
    pub fn queue_len(&self) -> usize {
        self.queue_len
    }

    /// Interval of websocket pings.
    pub fn ping_interval(&self) -> Duration {
        self.ping_interval
    }

    /// The same settings listening on `listen` (tests and embedding).
    #[must_use]
    pub fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.listen = listen;
        self
    }
}
