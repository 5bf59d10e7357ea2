//! TeaL's listener routes beside the webhook route: `GET /callback` and `/errback` (the
//! end of a Powens webview), `GET /raw-callback?full_url=…` (the fragment page's
//! return), `POST /openid-ciba-callback` (CIBA ping and push). Each publishes TeaL's
//! message and answers the browser (204 or 302) or the provider (204) only once the
//! broker confirmed it; otherwise 503.

// A refusal is the response itself, as axum handlers return it: its size (one
// `http::Response`) is moved once per request.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use url::Url;

use super::broker::Exchanges;
use super::callback::store::{CallbackStore, Lookup, StoreError};
use super::callback::{
    CallbackRecord, CallbackState, CibaNotification, FullUrl, Query, StateError, fallback,
    final_url, split_ampersand,
};
use super::ops::{current_request_id, no_route};
use super::publish::{Exchange, Outgoing, Publisher};
use super::reply::{Outcome, RETRY_AFTER_UNAVAILABLE, Refusal};
use crate::amq::TealExchange;
use crate::headers::BearerToken;
use crate::message::CallbackMessage;
use crate::time::IsoDateTime;

/// The fragment page: sends the browser, fragment included, to `raw-callback` (relative
/// to the page, so that it works behind a path prefix).
const FRAGMENT_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Finishing…</title></head><body>
<noscript>JavaScript is needed to finish: enable it and reload this page.</noscript>
<script>location.replace("raw-callback?full_url=" + encodeURIComponent(location.href));</script>
</body></html>
"#;

/// Largest CIBA notification body read.
const MAX_CIBA_BODY: usize = 64 * 1024;

/// The listener's settings.
#[derive(Debug, Clone)]
pub(crate) struct ListenerSettings {
    /// The listener's public base URL (ends with `/`).
    pub(crate) public_url: Url,
    /// Each state used once.
    pub(crate) one_shot: bool,
    /// Hosts the redirect fallback may send a browser to (empty: off).
    pub(crate) fallback_hosts: Vec<String>,
}

/// The listener: its settings, where callbacks are read, and where messages go.
#[derive(Debug)]
pub(crate) struct Listener {
    store: Arc<dyn CallbackStore>,
    publisher: Arc<dyn Publisher>,
    public_url: Url,
    one_shot: bool,
    fallback_hosts: Vec<String>,
    callbacks_exchange: Exchange,
    ciba_exchange: Exchange,
}

impl Listener {
    /// The listener for `settings`, reading callbacks from `store` and publishing with
    /// `publisher` on the exchanges named by `exchanges`.
    pub(crate) fn new(
        settings: &ListenerSettings,
        store: Arc<dyn CallbackStore>,
        publisher: Arc<dyn Publisher>,
        exchanges: &Exchanges,
    ) -> Self {
        Self {
            store,
            publisher,
            public_url: settings.public_url.clone(),
            one_shot: settings.one_shot,
            fallback_hosts: settings.fallback_hosts.clone(),
            callbacks_exchange: Exchange::of(TealExchange::Callbacks, exchanges),
            ciba_exchange: Exchange::of(TealExchange::OpenIdCibaCallbacks, exchanges),
        }
    }

    /// `/callback`, `/errback`, `/raw-callback`, `/openid-ciba-callback`, and the
    /// fallback for every other path: TeaL's `&` quirk, else 404.
    pub(crate) fn routes(self) -> Router {
        Router::new()
            .route("/callback", get(callback))
            .route("/errback", get(callback))
            .route("/raw-callback", get(raw_callback))
            .route("/openid-ciba-callback", post(ciba))
            .fallback(not_found)
            .with_state(Arc::new(self))
    }
}

/// A 400 saying `reason`.
fn bad(reason: impl ToString) -> Refusal {
    Refusal::new(StatusCode::BAD_REQUEST, reason.to_string())
}

/// The request's query, for the browser routes.
fn query(uri: &Uri) -> Result<Query, Response> {
    Query::parse(uri.query().unwrap_or_default()).map_err(|e| bad(e).into_response())
}

/// Any other path: 404, but for TeaL's `&` quirk (`/callback&state=x` with no query is
/// `/callback?state=x`), handled here rather than by a rewrite before routing, which
/// would cost every webhook a layer.
async fn not_found(State(listener): State<Arc<Listener>>, mut request: Request) -> Response {
    let quirk = request.method() == Method::GET;
    if let Some(uri) = quirk.then(|| fix_ampersand(request.uri())).flatten() {
        let raw = uri.path() == "/raw-callback";
        *request.uri_mut() = uri;
        let answer = if raw {
            raw_callback(State(listener), request).await
        } else {
            callback(State(listener), request).await
        };
        return answer.unwrap_or_else(|refusal| refusal);
    }
    no_route(request.method(), request.uri().path())
}

/// Rewrites TeaL's `&` quirk before routing: `/callback&state=x` (no query) is
/// `/callback?state=x`. Only the listener's browser routes: a webhook's path is signed
/// as received.
fn fix_ampersand(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    let browser = ["/callback&", "/errback&", "/raw-callback&"]
        .iter()
        .any(|p| path.starts_with(p));
    if !browser || uri.query().is_some_and(|q| !q.is_empty()) {
        return None;
    }
    let (path, query) = split_ampersand(path, None);
    format!("{path}?{}", query.unwrap_or_default()).parse().ok()
}

fn page(body: &'static str) -> Response {
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    response.extensions_mut().insert(Outcome::Served);
    response
}

/// `GET /callback` and `GET /errback`.
async fn callback(
    State(listener): State<Arc<Listener>>,
    request: Request,
) -> Result<Response, Response> {
    let listener = &*listener;
    let query = query(request.uri())?;
    let Some(state) = query.get("state") else {
        return Ok(page(FRAGMENT_PAGE));
    };
    let state = CallbackState::parse(state).map_err(|e| bad(e).into_response())?;
    let now = Utc::now();
    let found = resolve(listener, &state, &query, request.headers(), now, false).await?;
    if found.record.with_fragment {
        return Ok(page(FRAGMENT_PAGE));
    }
    let route = request.uri().path().trim_start_matches('/');
    let mut url = listener
        .public_url
        .join(route)
        .map_err(|_| bad("the request path is not valid").into_response())?;
    url.set_query(request.uri().query());
    publish_callback(listener, &state, found, url.as_str(), now).await
}

/// `GET /raw-callback?full_url=…`.
async fn raw_callback(
    State(listener): State<Arc<Listener>>,
    request: Request,
) -> Result<Response, Response> {
    let listener = &*listener;
    let query = query(request.uri())?;
    let full_url = query
        .get("full_url")
        .ok_or_else(|| bad("Missing full URL").into_response())?;
    let full =
        FullUrl::parse(full_url, &listener.public_url).map_err(|e| bad(e).into_response())?;
    let state = full
        .state
        .as_deref()
        .ok_or_else(|| bad("Missing state in full URL").into_response())?;
    let state = CallbackState::parse(state).map_err(|e| bad(e).into_response())?;
    let callback_query =
        Query::parse(full.url.query().unwrap_or_default()).map_err(|e| bad(e).into_response())?;
    let now = Utc::now();
    // with_fragment is ignored here, so that the page cannot loop.
    let found = resolve(
        listener,
        &state,
        &callback_query,
        request.headers(),
        now,
        true,
    )
    .await?;
    publish_callback(listener, &state, found, full.url.as_str(), now).await
}

/// A state's callback, and whether it was taken from the store (one-shot).
struct Found {
    record: CallbackRecord,
    taken: bool,
}

/// The record of `state`: from the store (taken when one-shot and `final`, i.e. about
/// to be published), else from the redirect fallback, else 400 `Unknown state`.
async fn resolve(
    listener: &Listener,
    state: &CallbackState,
    query: &Query,
    headers: &HeaderMap,
    now: DateTime<Utc>,
    last_step: bool,
) -> Result<Found, Response> {
    let unavailable = |e: StoreError| {
        tracing::error!(
            request_id = current_request_id().as_deref(),
            error = %e,
            "callback store failed"
        );
        Refusal::unavailable(
            Outcome::Unavailable,
            "the callback store is unavailable; retry later".into(),
            RETRY_AFTER_UNAVAILABLE,
        )
        .into_response()
    };
    let read = |lookup| async move {
        listener
            .store
            .read(state, lookup)
            .await
            .map_err(unavailable)
    };
    // A one-shot state is taken as it is used, so that a replay, even simultaneous,
    // finds nothing; on /callback it is read first, since one with `with_fragment` is
    // used only at /raw-callback.
    let (stored, take) = if listener.one_shot && last_step {
        (read(Lookup::take(now)).await?, true)
    } else {
        let stored = read(Lookup::get(now)).await?;
        match stored {
            Some(record) if listener.one_shot && !record.with_fragment => {
                (read(Lookup::take(now)).await?, true)
            }
            stored => (stored, false),
        }
    };
    if let Some(record) = stored {
        return Ok(Found {
            record,
            taken: take,
        });
    }
    let redirect = fallback(state.as_str(), &listener.fallback_hosts)
        .ok_or_else(|| bad(StateError::Unknown).into_response())?;
    let url = final_url(&redirect.url, query, headers.contains_key(header::REFERER));
    Ok(Found {
        record: CallbackRecord {
            expires_at: None,
            final_redirect_url: Some(url),
            with_fragment: redirect.with_fragment,
        },
        taken: false,
    })
}

async fn publish_callback(
    listener: &Listener,
    state: &CallbackState,
    found: Found,
    url: &str,
    now: DateTime<Utc>,
) -> Result<Response, Response> {
    let message = CallbackMessage {
        timestamp: IsoDateTime::naive_utc(now),
        url: url.to_owned(),
        state: state.as_str().to_owned(),
    };
    let outgoing = Outgoing::of(&listener.callbacks_exchange, &message);
    if let Err(e) = listener.publisher.publish(&outgoing).await {
        if found.taken {
            // Not published: the state stays usable for the browser's retry.
            if let Err(e) = listener.store.put(state, &found.record).await {
                tracing::error!(
                    request_id = current_request_id().as_deref(),
                    error = %e,
                    "a one-shot state could not be put back"
                );
            }
        }
        return Err(Refusal::from(e).into_response());
    }
    let mut response = match found.record.final_redirect_url {
        Some(target) => {
            let mut response = StatusCode::FOUND.into_response();
            let location = HeaderValue::from_str(target.as_str())
                .map_err(|_| bad("the final redirect URL is not valid").into_response())?;
            response.headers_mut().insert(header::LOCATION, location);
            response
        }
        None => StatusCode::NO_CONTENT.into_response(),
    };
    response.extensions_mut().insert(Outcome::Published);
    Ok(response)
}

/// `POST /openid-ciba-callback`.
async fn ciba(
    State(listener): State<Arc<Listener>>,
    request: Request,
) -> Result<Response, Response> {
    let (parts, body) = request.into_parts();
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| BearerToken::parse_authorization(v).ok())
        .ok_or_else(|| {
            Refusal::new(StatusCode::UNAUTHORIZED, "Invalid authentication")
                .with_challenge("Bearer")
                .into_response()
        })?;
    let body = read(body).await.map_err(|a| a.into_response())?;
    let notification = CibaNotification::parse(&body).map_err(|e| bad(e).into_response())?;
    let message = notification.into_message(&bearer, Utc::now());
    let outgoing = Outgoing::of(&listener.ciba_exchange, &message);
    listener
        .publisher
        .publish(&outgoing)
        .await
        .map_err(|e| Refusal::from(e).into_response())?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.extensions_mut().insert(Outcome::Published);
    Ok(response)
}

async fn read(body: Body) -> Result<axum::body::Bytes, Refusal> {
    axum::body::to_bytes(body, MAX_CIBA_BODY)
        .await
        .map_err(|_| Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, "the body is too large"))
}
