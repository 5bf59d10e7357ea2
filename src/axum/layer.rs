//! The pipeline as a tower layer, for services not written against axum's extractors.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::Request;
use axum::response::{IntoResponse, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::config::WebhookConfig;
use super::extract::VerifiedPowensWebhook;

/// A tower layer running the webhook pipeline before the inner service: a request that
/// passes reaches it with the [`VerifiedPowensWebhook`] in its extensions (read it with
/// `Extension<VerifiedPowensWebhook>`) and the payload, decompressed, as its body; any
/// other is answered with the [`WebhookRejection`](super::WebhookRejection).
///
/// Placed on a route (`Router::route_layer`, or a `MethodRouter`'s `layer`), it sees the
/// route's `{domain}` and `{event}` parameters; elsewhere the path's last segments are
/// used, as by the extractor.
#[derive(Debug, Clone)]
pub struct PowensWebhookLayer {
    config: WebhookConfig,
}

impl PowensWebhookLayer {
    /// A layer checking webhooks against `config`.
    pub fn new(config: WebhookConfig) -> Self {
        Self { config }
    }
}

impl<S> Layer<S> for PowensWebhookLayer {
    type Service = PowensWebhookService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PowensWebhookService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service [`PowensWebhookLayer`] wraps around its inner service.
#[derive(Debug, Clone)]
pub struct PowensWebhookService<S> {
    inner: S,
    config: WebhookConfig,
}

impl<S, B> Service<Request<B>> for PowensWebhookService<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone that was made ready is the one to call.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let config = self.config.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            match VerifiedPowensWebhook::extract(&config, &mut parts, Body::new(body)).await {
                Ok(webhook) => {
                    let payload = webhook.payload().clone();
                    parts.extensions.insert(webhook);
                    inner
                        .call(Request::from_parts(parts, Body::from(payload)))
                        .await
                }
                Err(rejection) => Ok(rejection.into_response()),
            }
        })
    }
}
