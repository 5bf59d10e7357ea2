//! `powens-relay dispatch`: TeaL's websocket dispatcher as a server of its own, its
//! routes, the probes and the metrics on `dispatcher_listen`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::Composition;
use crate::relay::config::RelayConfig;
use crate::relay::dispatch::{self, DispatchError};
use crate::relay::reply::Refusal;
use crate::relay::server::{self, ServerSettings};

/// TeaL's websocket dispatcher, bound to its address, ready to [`run`](Self::run):
/// what `powens-relay dispatch` runs. Clients connect to `GET /websocket`; messages come
/// from RabbitMQ.
#[derive(Debug)]
pub struct Dispatcher {
    listener: TcpListener,
    dispatcher: dispatch::Dispatcher,
    server: ServerSettings,
}

impl Dispatcher {
    /// Opens the callback store, connects to the broker and binds `dispatcher_listen`.
    ///
    /// # Errors
    /// [`DispatchError`].
    pub async fn start(config: &RelayConfig) -> Result<Self, DispatchError> {
        let settings = &config.dispatcher;
        let store = config.store.open().await?;
        let dispatcher = dispatch::Dispatcher::connect(settings, &config.broker, store).await?;
        let listener = server::bind(&settings.server).await?;
        Ok(Self {
            listener,
            dispatcher,
            server: settings.server,
        })
    }

    /// The address actually bound.
    ///
    /// # Errors
    /// The socket's error, if it cannot tell.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown`, then closes every client with 1001 and the broker
    /// connection.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let mut composition = Composition::new();
        self.dispatcher.register_metrics(&mut composition.registry);
        let readiness = self.dispatcher.readiness();
        composition.add(self.dispatcher.routes());
        composition.add(axum::Router::new().fallback(|| async { Refusal::not_found() }));
        let router = composition.finish(Arc::new(readiness));
        let close_clients = self.dispatcher.closer();
        let shutdown = async move {
            shutdown.await;
            // Clients first: their connections are no longer the server's to drain.
            close_clients.await;
        };
        server::serve(self.listener, router, self.server, shutdown).await;
        self.dispatcher.shut_down().await;
        tracing::info!("stopped");
    }
}
