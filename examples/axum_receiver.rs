//! A complete Powens webhook receiver: the relay's checks in one extractor. Run it with
//! `POWENS_SECRET=secret_key cargo run --example axum_receiver --no-default-features --features axum`
//! and send it a webhook with `powens-relay send` (see the README's quick start) to
//! http://127.0.0.1:3000/powens-webhook/budgea.biapi.pro/USER_SYNCED.

use axum::{Router, http::StatusCode, routing::post};
use powens_webhooks::axum::{VerifiedPowensWebhook, WebhookConfig, WebhookRejection};
use powens_webhooks::{KeyRing, Secret};

/// Handles one verified webhook; a refusal answers with the relay's status and reason.
async fn receive(webhook: VerifiedPowensWebhook) -> Result<StatusCode, WebhookRejection> {
    let message = webhook.message()?; // TeaL's PowensWebhookMessage (400 if not UTF-8)
    println!(
        "{} from {}: {} bytes, id {:?}",
        message.event,
        message.domain,
        message.payload.len(),
        message.id_webhook_data()
    );
    // Store or enqueue the message here; answer 2xx only once it is safe.
    Ok(StatusCode::NO_CONTENT)
}

/// The receiver's router: TeaL's route, one domain verified with `secret`.
pub(crate) fn app(secret: Secret) -> Result<Router, Box<dyn std::error::Error>> {
    let config = WebhookConfig::builder()
        .verify("budgea.biapi.pro".parse()?, KeyRing::new(secret))
        .body_limit(8 * 1024 * 1024)
        .build()?;
    Ok(Router::new()
        .route("/powens-webhook/{domain}/{event}", post(receive))
        .with_state(config))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The secret_key Powens returned from POST /webhooks/auth, from the environment
    // (Secret::new takes a &str, Secret::from_file a path).
    let app = app(Secret::from_env("POWENS_SECRET")?)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("receiving on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
