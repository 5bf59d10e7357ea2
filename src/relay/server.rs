//! The HTTP/1.1 server: accepts connections up to a cap, limits the request head's size,
//! and closes a connection whose next request head does not arrive in time.
//!
//! The head time-out is kept per connection rather than with hyper's
//! `header_read_timeout`: hyper arms and drops a timer for every request, which cost
//! about 9% of the relay's throughput under load (`examples/load.rs`, 64 keep-alive
//! connections: relay/raw 0.80 with it, 0.89 without). Here a request only stamps the
//! time its response was produced, and one watchdog per connection looks every quarter
//! of `read_timeout`: a connection whose head has been awaited for `read_timeout` (an
//! idle keep-alive connection, or a slow-loris client) is closed within
//! 1.25 × `read_timeout`. A request being handled is never cut off by it: its body has
//! its own time-out (408) and its publish its own.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use hyper::Request;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// How long websocket clients get to receive their close frame at shutdown.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Where a server listens, and what it enforces per connection before a request
/// reaches the router: `serve`'s and `dispatch`'s.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerSettings {
    /// The address to listen on.
    pub(crate) listen: SocketAddr,
    /// Most connections open at once; more wait in the listen backlog.
    pub(crate) max_connections: usize,
    /// Longest wait for a request head (idle keep-alive included).
    pub(crate) read_timeout: Duration,
    /// Largest request head; more gets 431.
    pub(crate) max_header_bytes: usize,
}

/// The listen address could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The address.
    pub(crate) addr: SocketAddr,
    /// The I/O error.
    #[source]
    pub(crate) source: std::io::Error,
}

/// Binds the listen address of `settings`.
///
/// # Errors
/// [`BindError`].
pub(crate) async fn bind(settings: &ServerSettings) -> Result<TcpListener, BindError> {
    let addr = settings.listen;
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })
}

/// Serves `router` on `listener` until `shutdown`, then stops accepting and waits for
/// the requests in progress.
pub(crate) async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: ServerSettings,
    shutdown: impl Future<Output = ()>,
) {
    let service = TowerToHyperService::new(router);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.header_read_timeout(None)
        .max_header_size(limits.max_header_bytes);
    // Told to every connection on shutdown: finish the request in progress, then close.
    let (stop, stopping) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was
                    // accepted: wait a little rather than spin, and go on.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Responses are small and latency matters more than packet count.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let head = Arc::new(HeadWait::default());
        let tracked = {
            let head = head.clone();
            let service = service.clone();
            hyper::service::service_fn(move |request: Request<Incoming>| {
                head.busy();
                let response = service.call(request);
                let head = head.clone();
                async move {
                    let response = response.await;
                    head.waiting();
                    response
                }
            })
        };
        // With upgrades: the dispatcher's websocket leaves the HTTP connection (and its
        // slot) once upgraded, and lives in a task of its own.
        let connection = http
            .serve_connection(TokioIo::new(stream), tracked)
            .with_upgrades();
        let read_timeout = limits.read_timeout;
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                result = connection.as_mut() => Some(result),
                () = head.overdue(read_timeout) => None,
                () = async { drop(stopping.wait_for(|stop| *stop).await) } => {
                    connection.as_mut().graceful_shutdown();
                    tokio::select! {
                        result = connection.as_mut() => Some(result),
                        () = head.overdue(read_timeout) => None,
                    }
                }
            };
            match ended {
                Some(Err(e)) => tracing::debug!(error = %e, "connection ended with an error"),
                Some(Ok(())) => {}
                None => {
                    tracing::debug!("connection closed: no request head within read_timeout_secs");
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    stop.send_replace(true);
    // Every connection has ended once every slot is back.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received: finishing in-flight requests");
}

/// Since when a connection has been waiting for a request head, in milliseconds since
/// [`epoch`]; [`BUSY`] while a request is handled.
#[derive(Debug)]
struct HeadWait(AtomicU64);

const BUSY: u64 = u64::MAX;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(BUSY - 1)
}

impl Default for HeadWait {
    /// A new connection waits for its first head from now.
    fn default() -> Self {
        Self(AtomicU64::new(now_ms()))
    }
}

impl HeadWait {
    fn busy(&self) {
        self.0.store(BUSY, Ordering::Relaxed);
    }

    fn waiting(&self) {
        self.0.store(now_ms(), Ordering::Relaxed);
    }

    /// Resolves once a head has been awaited for `timeout`, looking every quarter of it.
    async fn overdue(&self, timeout: Duration) {
        let tick = (timeout / 4).max(Duration::from_millis(10));
        let limit = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        loop {
            tokio::time::sleep(tick).await;
            let since = self.0.load(Ordering::Relaxed);
            if since != BUSY && now_ms().saturating_sub(since) >= limit {
                return;
            }
        }
    }
}
