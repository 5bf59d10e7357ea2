//! The router through `oneshot`, with an in-memory publisher: publishing, publisher
//! failures, forward mode, the path prefix, gzip bodies and the probes. Refusals of bad
//! input are in `hostile.rs`, over a real socket.

use axum::body::{Body, Bytes};
use chrono::Utc;
use http::{Request, StatusCode, header};
use powens_webhooks::axum::SignedOver;
use powens_webhooks::relay::testing::{Failure, MemoryPublisher, router};
use powens_webhooks::{PowensWebhookMessage, TealMessage};
use tower::ServiceExt;

use super::{assert_signed_for, config, gzip, signed, strip_hooks, verify_domain};
use crate::call;

const DOMAIN: &str = "budgea.biapi.pro";
const PATH: &str = "/powens-webhook/budgea.biapi.pro/CONNECTION_SYNCED";
const SECRET: &str = "s3cr3t";
const BODY: &[u8] = br#"{"id_webhook_data": 42, "connection": {"id": 7}}"#;

/// A relay for `budgea.biapi.pro` (verify) and `forward.biapi.pro` (forward), a 1 KiB
/// body limit and `extra` configuration, publishing to memory.
fn relay(extra: &str) -> (axum::Router, MemoryPublisher) {
    relay_with_limit(1024, extra)
}

/// [`relay`] with a body limit of `limit` bytes.
fn relay_with_limit(limit: usize, extra: &str) -> (axum::Router, MemoryPublisher) {
    let toml = format!(
        "body_limit_bytes = {limit}\n{extra}\n{}[domains.\"forward.biapi.pro\"]\nmode = \"forward\"\n",
        verify_domain(DOMAIN, SECRET)
    );
    let publisher = MemoryPublisher::new();
    (router(&config(&toml), &publisher, None), publisher)
}

fn body(request: Request<http_body_util::Full<Bytes>>) -> Request<Body> {
    request.map(Body::new)
}

#[tokio::test]
async fn a_signed_webhook_is_published_then_answered_204() {
    let (app, publisher) = relay("");
    let answer = call(&app, body(signed(PATH, BODY, SECRET))).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.body);
    assert_eq!(answer.body, "");
    assert_eq!(answer.content_type, None);

    let published = publisher.published();
    assert_eq!(published.len(), 1);
    let out = &published[0];
    assert_eq!(out.exchange, "powens_domain_webhooks");
    assert_eq!(out.routing_key, DOMAIN);
    assert_eq!(out.message_id.as_deref(), Some("42"));
    let message = PowensWebhookMessage::from_json(&out.body).unwrap();
    assert_eq!(message.domain.as_str(), DOMAIN);
    assert_eq!(message.event.as_str(), "CONNECTION_SYNCED");
    assert_eq!(message.payload.as_bytes(), BODY);
    assert!(message.user_token.is_none());
    let hmac = message.hmac_signature.as_ref().unwrap();
    assert!(hmac.payload_prefix.starts_with(&format!("POST.{PATH}.")));
    // What was published verifies consumer-side with the same secret.
    let verifier = powens_webhooks::Verifier::new(powens_webhooks::KeyRing::new(
        powens_webhooks::Secret::new(SECRET).unwrap(),
    ));
    assert_eq!(message.verify(&verifier, Utc::now()).unwrap(), 0);
}

#[tokio::test]
async fn a_publisher_failure_is_a_503_never_a_2xx() {
    let (app, publisher) = relay("");
    for failure in [
        Failure::Unavailable,
        Failure::Nacked,
        Failure::Unroutable,
        Failure::Timeout,
        Failure::Fault("channel closed"),
    ] {
        publisher.fail_with(Some(failure.clone()));
        let answer = call(&app, body(signed(PATH, BODY, SECRET))).await;
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{failure:?}"
        );
        assert!(answer.body.ends_with("retry later\n"), "{:?}", answer.body);
        // Internal detail stays in the log.
        assert!(!answer.body.contains("channel closed"), "{:?}", answer.body);
        let ready = call(&app, Request::get("/readyz").body(Body::empty()).unwrap()).await;
        assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    }
    publisher.fail_with(None);
    let ready = call(&app, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(publisher.published(), []);
}

/// `request` (signed over some body) sent with `wire` as its body, gzip-encoded.
fn gzipped(request: Request<http_body_util::Full<Bytes>>, wire: Vec<u8>) -> Request<Body> {
    let mut request = request.map(|_| Body::from(wire));
    request
        .headers_mut()
        .insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
    request
}

#[tokio::test]
async fn a_gzip_body_verifies_decompressed_or_as_received_and_is_published_decompressed() {
    let (app, publisher) = relay("");
    let compressed = gzip(BODY);
    let cases = [
        ("payload", signed(PATH, BODY, SECRET), "decompressed"),
        (
            "bytes sent",
            signed(PATH, &compressed, SECRET),
            "compressed",
        ),
    ];
    for (signed_over, request, logged) in cases {
        let response = app
            .clone()
            .oneshot(gzipped(request, compressed.clone()))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{signed_over}");
        // What the request's log line reports as signed_over.
        assert_eq!(
            response
                .extensions()
                .get::<SignedOver>()
                .map(|s| s.as_str()),
            Some(logged),
            "{signed_over}"
        );
        let published = publisher.take();
        let message = PowensWebhookMessage::from_json(&published[0].body).unwrap();
        assert_eq!(message.payload.as_bytes(), BODY, "{signed_over}");
    }
    // Signed over something else: neither matches.
    let answer = call(&app, gzipped(signed(PATH, b"{}", SECRET), compressed)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
    assert!(
        answer.body.contains("does not match any key"),
        "{}",
        answer.body
    );
    assert_eq!(publisher.published(), []);
}

/// Bodies that may expand past a megabyte are decompressed on a blocking thread: the
/// same answers as inline.
#[tokio::test]
async fn large_gzip_bodies_are_decompressed_off_the_workers_with_the_same_limits() {
    let (app, publisher) = relay_with_limit(4 << 20, "");
    let payload = format!(
        "{{\"id_webhook_data\": 9, \"pad\": \"{}\"}}",
        " ".repeat(2 << 20)
    );
    let compressed = gzip(payload.as_bytes());
    let answer = call(
        &app,
        gzipped(signed(PATH, payload.as_bytes(), SECRET), compressed),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.body);
    let message = PowensWebhookMessage::from_json(&publisher.take()[0].body).unwrap();
    assert_eq!(message.payload, payload);

    let bomb = gzip(&vec![b' '; 8 << 20]);
    let answer = call(&app, gzipped(signed(PATH, &bomb, SECRET), bomb.clone())).await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains("decompressed body exceeds"),
        "{}",
        answer.body
    );
    assert_eq!(publisher.published(), []);
}

#[tokio::test]
async fn forward_mode_relays_a_bearer_only_request_unverified() {
    let (app, publisher) = relay("");
    let request = Request::post("/powens-webhook/forward.biapi.pro/USER_CREATED")
        .header("authorization", "Bearer user-token.123")
        .body(Body::from(BODY))
        .unwrap();
    let answer = call(&app, request).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.body);
    let message = PowensWebhookMessage::from_json(&publisher.published()[0].body).unwrap();
    assert_eq!(message.user_token.unwrap().as_str(), "user-token.123");
    assert!(message.hmac_signature.is_none());

    // Forward mode still requires some authentication, as TeaL does.
    let request = Request::post("/powens-webhook/forward.biapi.pro/USER_CREATED")
        .body(Body::from(BODY))
        .unwrap();
    assert_eq!(call(&app, request).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_public_path_prefix_is_part_of_the_signed_endpoint() {
    // Powens signed the public path; the proxy stripped /hooks before the relay.
    let public = format!("/hooks{PATH}");
    let (with_prefix, published) = relay("public_path_prefix = \"/hooks\"");
    let answer = call(
        &with_prefix,
        strip_hooks(body(signed(&public, BODY, SECRET))),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.body);
    let message = PowensWebhookMessage::from_json(&published.published()[0].body).unwrap();
    assert_signed_for(&message, &public);

    let (without_prefix, _) = relay("");
    let answer = call(
        &without_prefix,
        strip_hooks(body(signed(&public, BODY, SECRET))),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    // And a request signed for the bare path is refused by the prefixed relay.
    let answer = call(&with_prefix, body(signed(PATH, BODY, SECRET))).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn probes_and_metrics() {
    let (app, _) = relay("");
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    assert_eq!(call(&app, get("/healthz")).await.status, StatusCode::OK);
    assert_eq!(call(&app, get("/readyz")).await.status, StatusCode::OK);
    call(&app, body(signed(PATH, BODY, SECRET))).await;
    call(&app, body(signed(PATH, BODY, "wrong"))).await;
    let metrics = call(&app, get("/metrics")).await;
    assert_eq!(metrics.status, StatusCode::OK);
    let route = "route=\"/powens-webhook/{domain}/{event}\"";
    for line in [
        format!("powens_relay_requests_total{{{route},outcome=\"published\"}} 1"),
        format!("powens_relay_requests_total{{{route},outcome=\"unauthorized\"}} 1"),
        "powens_relay_publish_confirm_seconds_count 1".to_owned(),
        "powens_relay_in_flight_requests 0".to_owned(),
        "powens_relay_broker_connected 1".to_owned(),
    ] {
        assert!(
            metrics.body.lines().any(|l| l == line),
            "missing {line} in\n{}",
            metrics.body
        );
    }
}
