//! The operator console (`console = true`, in `serve` only): what flows through the
//! relay and what it holds, on an address of its own (`console_listen`, by default
//! `127.0.0.1:8082`), behind HTTP Basic authentication (user `anonymous`,
//! `console_password`).
//!
//! - `/`: the state at a glance (the broker and its node, the journal's backlog,
//!   webhooks per minute over the last hour, refusals by reason, the hosted
//!   dispatcher's clients) and the webhooks as they arrive, refused ones with their
//!   reason and the diagnosis of their signature; kept current by server-sent events
//!   (`/events`).
//! - `/journal`: its entries filtered by domain, event, time or `id_webhook_data`; one
//!   entry opened (its payload pretty-printed); replay of one entry or of the filtered
//!   set, after a confirmation page.
//!
//! Server-rendered HTML (maud, which escapes every value) with one small script; the
//! assets are compiled in. It shows bank data (the journal's payloads): keep it on a
//! private address. No page holds a secret: the webhook secrets never reach it, a
//! message's user token and signature are not shown, the password is kept as a hash.
//! Every change is a POST carrying the pages' token (random, per process) and, when the
//! browser says where it comes from, from the console itself (`guard`).

mod feed;
mod glance;
mod guard;
mod journal;
mod layout;
mod live;
mod replay;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub(crate) use feed::{Feed, observe};
use guard::FormToken;

use super::basic_auth::Password;
use super::durable::Durable;
use super::publish::Publisher;
use super::server::{self, BindError, ServerSettings};
use crate::secret::Secret;

/// The console's settings (`console = true`).
#[derive(Debug, Clone)]
pub(crate) struct ConsoleSettings {
    /// Its address (`console_listen`) and the connection limits of `serve`'s.
    pub(crate) server: ServerSettings,
    /// `console_password`, read.
    pub(crate) password: Secret,
}

/// The dispatcher's client count, when `serve` hosts it.
pub(crate) type ClientCount = Arc<dyn Fn() -> usize + Send + Sync>;

/// What the console reads from the relay's other parts.
pub(crate) struct Sources {
    /// The publisher: is the broker there, and which node.
    pub(crate) publisher: Arc<dyn Publisher>,
    /// The journal, when webhooks go through one.
    pub(crate) journal: Option<Arc<Durable>>,
    /// The hosted dispatcher's clients.
    pub(crate) clients: Option<ClientCount>,
}

/// The handlers' state.
struct Ctx {
    feed: Arc<Feed>,
    sources: Sources,
    token: FormToken,
    /// Turns true when the relay stops: the event streams end.
    closing: watch::Receiver<bool>,
}

/// The console, bound to its address.
pub(crate) struct Console {
    listener: TcpListener,
    router: Router,
    server: ServerSettings,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("listen", &self.listener.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl Console {
    /// Binds `console_listen`: the console of `feed` (which `serve`'s routes fill
    /// through [`observe`]) and `sources`; its event streams end once `closing` is
    /// true.
    ///
    /// # Errors
    /// [`BindError`].
    pub(crate) async fn bind(
        settings: &ConsoleSettings,
        feed: Arc<Feed>,
        sources: Sources,
        closing: watch::Receiver<bool>,
    ) -> Result<Self, BindError> {
        let listener = server::bind(&settings.server).await?;
        let ctx = Arc::new(Ctx {
            feed,
            sources,
            token: FormToken::new(),
            closing,
        });
        let password = Arc::new(Password::new(&settings.password));
        let router = Router::new()
            .route("/", get(live::dashboard))
            .route("/events", get(live::events))
            .route("/journal", get(journal::list))
            .route("/journal/{seq}", get(journal::entry))
            .route("/journal/replay", post(replay::confirm))
            .route("/journal/replay/confirm", post(replay::replay))
            .route("/assets/console.css", get(stylesheet))
            .route("/assets/console.js", get(script))
            .fallback(not_found)
            .with_state(ctx)
            .layer(axum::middleware::from_fn_with_state(
                password,
                guard::authenticate,
            ))
            .layer(axum::middleware::from_fn(guard::protect));
        Ok(Self {
            listener,
            router,
            server: settings.server,
        })
    }

    /// The address bound.
    pub(crate) fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown`.
    pub(crate) async fn run(self, shutdown: impl Future<Output = ()>) {
        server::serve(self.listener, self.router, self.server, shutdown).await;
    }
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/console.css"),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/console.js"),
    )
        .into_response()
}

async fn not_found() -> Response {
    layout::problem(
        StatusCode::NOT_FOUND,
        layout::Section::Live,
        "No such page.",
    )
}
