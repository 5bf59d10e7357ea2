//! The receiver-side pipeline (feature `axum`): the `axum_receiver` example driven
//! through `oneshot`, the layer, and route shapes other than TeaL's.

#[allow(dead_code)]
#[path = "../../examples/axum_receiver.rs"]
mod axum_receiver;

use axum::Router;
use axum::body::Body;
use axum::extract::Extension;
use axum::http::{Request, StatusCode, header};
use axum::routing::post;
use chrono::{DateTime, Duration, Utc};
use powens_webhooks::axum::{PowensWebhookLayer, SignedOver, VerifiedPowensWebhook, WebhookConfig};
use powens_webhooks::{KeyRing, Secret, SignedPrefix, TealMessage, sign};

use crate::{Answer, call};

const SECRET: &str = "receiver-secret";
const PATH: &str = "/powens-webhook/budgea.biapi.pro/USER_SYNCED";
const BODY: &[u8] = br#"{"id_webhook_data": 12, "user": {"id": 3}}"#;

/// `POST path` with `body`, signed over `signed_body` at `at`, as Powens signs.
fn request(path: &str, body: Vec<u8>, signed_body: &[u8], at: DateTime<Utc>) -> Request<Body> {
    let date = at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    let secret = Secret::new(SECRET).unwrap();
    let signature = sign(
        &secret,
        &SignedPrefix::new("POST", path, &date),
        signed_body,
    );
    Request::post(path)
        .header("BI-Signature-Date", date)
        .header("BI-Signature", signature.to_base64())
        .body(Body::from(body))
        .unwrap()
}

fn signed(path: &str, body: &[u8]) -> Request<Body> {
    request(path, body.to_vec(), body, Utc::now())
}

/// `request` marked `Content-Encoding: gzip`.
fn gzipped(mut request: Request<Body>) -> Request<Body> {
    request
        .headers_mut()
        .insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
    request
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn the_example_receiver_accepts_valid_webhooks_and_refuses_the_rest() {
    let app = axum_receiver::app(Secret::new(SECRET).unwrap()).unwrap();

    let Answer { status, body, .. } = call(&app, signed(PATH, BODY)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // Tampered: the body changed after signing.
    let tampered = request(
        PATH,
        br#"{"id_webhook_data": 13}"#.to_vec(),
        BODY,
        Utc::now(),
    );
    let Answer {
        status,
        content_type,
        body,
    } = call(&app, tampered).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(content_type.as_deref(), Some("text/plain; charset=utf-8"));
    assert_eq!(
        body,
        "signature does not match any key for budgea.biapi.pro\n"
    );

    // Stale: signed 20 minutes ago (the window is 15).
    let stale = request(
        PATH,
        BODY.to_vec(),
        BODY,
        Utc::now() - Duration::minutes(20),
    );
    let Answer { status, body, .. } = call(&app, stale).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("old"), "{body}");

    // Gzip: decompressed, then verified over the payload.
    let compressed = gzipped(request(PATH, gzip(BODY), BODY, Utc::now()));
    let Answer { status, body, .. } = call(&app, compressed).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // Too large: the example's limit is 8 MiB, announced or decompressed.
    let big = vec![b'x'; 8 * 1024 * 1024 + 1];
    let Answer { status, .. } = call(&app, signed(PATH, &big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let bomb = gzipped(request(PATH, gzip(&big), &big, Utc::now()));
    let Answer { status, body, .. } = call(&app, bomb).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");

    // Unsigned, another domain, not UTF-8.
    let unsigned = Request::post(PATH).body(Body::from(BODY)).unwrap();
    assert_eq!(call(&app, unsigned).await.status, StatusCode::UNAUTHORIZED);
    let other = "/powens-webhook/other.biapi.pro/USER_SYNCED";
    assert_eq!(
        call(&app, signed(other, BODY)).await.status,
        StatusCode::NOT_FOUND
    );
    let Answer { status, body, .. } = call(&app, signed(PATH, b"\xff\xfe")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("not UTF-8"), "{body}");
}

fn config(prefix: &str) -> WebhookConfig {
    WebhookConfig::builder()
        .verify(
            "budgea.biapi.pro".parse().unwrap(),
            KeyRing::new(Secret::new(SECRET).unwrap()),
        )
        .public_path_prefix(prefix)
        .build()
        .unwrap()
}

/// What a handler behind the layer saw: the webhook in the extensions, the payload as
/// the body.
async fn echo(Extension(webhook): Extension<VerifiedPowensWebhook>, body: String) -> String {
    format!(
        "{} {} {} {:?} {}",
        webhook.domain(),
        webhook.event(),
        webhook.is_verified(),
        webhook.signed_over().map(SignedOver::as_str),
        body
    )
}

#[tokio::test]
async fn the_layer_passes_verified_webhooks_on_with_their_payload() {
    let app = Router::new().route(
        "/powens-webhook/{domain}/{event}",
        post(echo).layer(PowensWebhookLayer::new(config(""))),
    );
    let compressed = gzipped(request(PATH, gzip(BODY), BODY, Utc::now()));
    let Answer { status, body, .. } = call(&app, compressed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        format!(
            "budgea.biapi.pro USER_SYNCED true Some(\"decompressed\") {}",
            std::str::from_utf8(BODY).unwrap()
        )
    );
    let tampered = request(PATH, b"{}".to_vec(), BODY, Utc::now());
    let Answer { status, body, .. } = call(&app, tampered).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn single_domain_receivers_take_the_domain_from_the_configuration() {
    // A route of the receiver's own shape, behind a proxy that strips /hooks.
    async fn receive(webhook: VerifiedPowensWebhook) -> String {
        let message = webhook.message().unwrap();
        format!(
            "{} {} {}",
            message.domain,
            message.event,
            webhook.endpoint()
        )
    }
    let app = Router::new()
        .route("/powens/{event}", post(receive))
        .with_state(config("/hooks"));
    let Answer { status, body, .. } = call(&app, {
        let mut r = signed("/hooks/powens/CONNECTION_SYNCED", BODY);
        *r.uri_mut() = "/powens/CONNECTION_SYNCED".parse().unwrap();
        r
    })
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        "budgea.biapi.pro CONNECTION_SYNCED /hooks/powens/CONNECTION_SYNCED"
    );
    // Signed for the stripped path: Powens never called that one.
    let Answer { status, .. } = call(&app, signed("/powens/CONNECTION_SYNCED", BODY)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A message built from it is TeaL's.
    let webhook = {
        let request = signed("/hooks/powens/CONNECTION_SYNCED", BODY);
        let (mut parts, body) = request.into_parts();
        parts.uri = "/powens/CONNECTION_SYNCED".parse().unwrap();
        let request = Request::from_parts(parts, body);
        use axum::extract::FromRequest;
        VerifiedPowensWebhook::from_request(request, &config("/hooks"))
            .await
            .unwrap()
    };
    let message = webhook.message().unwrap();
    let json = message.to_json();
    assert_eq!(
        powens_webhooks::PowensWebhookMessage::from_json(&json).unwrap(),
        message
    );
    assert_eq!(message.payload.as_bytes(), BODY);
    // into_message takes the payload over: the same message but for its timestamp.
    let mut owned = webhook.into_message().unwrap();
    owned.timestamp = message.timestamp;
    assert_eq!(owned, message);
}
