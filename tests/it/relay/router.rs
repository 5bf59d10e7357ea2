//! The router through `oneshot`, with an in-memory publisher: each status of SPEC §4.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use chrono::{Duration, Utc};
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::BodyExt;
use powens_webhooks::relay::http::{AppState, router};
use powens_webhooks::relay::publish::{MemoryPublisher, PublishError};
use powens_webhooks::{PowensWebhookMessage, TealMessage};
use tower::ServiceExt;

use super::{assert_signed_for, config, signed, signed_at, strip_hooks, verify_domain};

const DOMAIN: &str = "budgea.biapi.pro";
const PATH: &str = "/powens-webhook/budgea.biapi.pro/CONNECTION_SYNCED";
const SECRET: &str = "s3cr3t";
const BODY: &[u8] = br#"{"id_webhook_data": 42, "connection": {"id": 7}}"#;

/// A relay for `budgea.biapi.pro` (verify) and `forward.biapi.pro` (forward), a 1 KiB
/// body limit and `extra` configuration, publishing to memory.
fn relay(extra: &str) -> (axum::Router, MemoryPublisher) {
    let toml = format!(
        "body_limit_bytes = 1024\n{extra}\n{}[domains.\"forward.biapi.pro\"]\nmode = \"forward\"\n",
        verify_domain(DOMAIN, SECRET)
    );
    let publisher = MemoryPublisher::new();
    let state = AppState::new(&config(&toml), Arc::new(publisher.clone()));
    (router(state), publisher)
}

struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    body: String,
}

async fn call(app: &axum::Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        content_type,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

fn body(request: Request<http_body_util::Full<Bytes>>) -> Request<Body> {
    request.map(Body::new)
}

/// `request` with header `name` set to `value` (or removed, with `None`).
fn with_header(
    mut request: Request<Body>,
    name: &'static str,
    value: Option<&[u8]>,
) -> Request<Body> {
    match value {
        Some(v) => {
            request
                .headers_mut()
                .insert(name, HeaderValue::from_bytes(v).unwrap());
        }
        None => {
            request.headers_mut().remove(name);
        }
    }
    request
}

#[tokio::test]
async fn a_signed_webhook_is_published_then_answered_204() {
    let (app, publisher) = relay("");
    let answer = call(&app, body(signed(PATH, BODY, SECRET))).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.body);
    assert_eq!(answer.body, "");

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

/// One row per refusal: the request, the status, a part of the one-line reason.
#[tokio::test]
async fn every_refusal_has_its_status_a_one_line_reason_and_publishes_nothing() {
    let good = || body(signed(PATH, BODY, SECRET));
    let stale = body(signed_at(
        PATH,
        BODY,
        SECRET,
        Utc::now() - Duration::hours(1),
    ));
    let future = body(signed_at(
        PATH,
        BODY,
        SECRET,
        Utc::now() + Duration::hours(1),
    ));
    let oversize = vec![b'x'; 1025];
    let streamed_oversize = {
        let mut request = body(signed(PATH, &oversize, SECRET));
        request.headers_mut().remove(header::CONTENT_LENGTH);
        // A body of unknown length, streamed in chunks.
        let chunks = futures_chunks(&oversize);
        *request.body_mut() = Body::from_stream(chunks);
        request
    };
    let bearer_only = with_header(
        with_header(good(), "BI-Signature", None),
        "BI-Signature-Date",
        None,
    );
    let bearer_only = with_header(bearer_only, "authorization", Some(b"Bearer abc.def"));

    let rows: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
        (
            "domain not Powens",
            body(signed(
                "/powens-webhook/example.com/USER_SYNCED",
                BODY,
                SECRET,
            )),
            StatusCode::BAD_REQUEST,
            "does not end in .biapi.pro",
        ),
        (
            "event with a space",
            body(signed(
                "/powens-webhook/budgea.biapi.pro/USER%20SYNCED",
                BODY,
                SECRET,
            )),
            StatusCode::BAD_REQUEST,
            "event name",
        ),
        (
            "signature not base64",
            with_header(good(), "BI-Signature", Some(b"not base64!")),
            StatusCode::BAD_REQUEST,
            "not valid base64",
        ),
        (
            "date without timezone",
            with_header(good(), "BI-Signature-Date", Some(b"2022-06-27T11:08:52")),
            StatusCode::BAD_REQUEST,
            "no timezone",
        ),
        (
            "bad Content-Length",
            with_header(good(), "content-length", Some(b"12x")),
            StatusCode::BAD_REQUEST,
            "Content-Length",
        ),
        (
            "non-UTF-8 body",
            body(signed(PATH, b"\xff\xfe", SECRET)),
            StatusCode::BAD_REQUEST,
            "not UTF-8",
        ),
        (
            "no authentication",
            with_header(
                with_header(good(), "BI-Signature", None),
                "BI-Signature-Date",
                None,
            ),
            StatusCode::UNAUTHORIZED,
            "neither BI-Signature",
        ),
        (
            "bearer only, verify mode",
            bearer_only,
            StatusCode::UNAUTHORIZED,
            "required for this domain",
        ),
        (
            "wrong secret",
            body(signed(PATH, BODY, "other")),
            StatusCode::UNAUTHORIZED,
            "does not match any key for budgea.biapi.pro",
        ),
        ("stale date", stale, StatusCode::UNAUTHORIZED, "old"),
        (
            "date ahead",
            future,
            StatusCode::UNAUTHORIZED,
            "in the future",
        ),
        (
            "signed for another path",
            body(signed(
                "/other/powens-webhook/budgea.biapi.pro/CONNECTION_SYNCED",
                BODY,
                SECRET,
            ))
            .map(|b| b),
            StatusCode::NOT_FOUND,
            "not found",
        ),
        (
            "unknown domain",
            body(signed(
                "/powens-webhook/unknown.biapi.pro/USER_SYNCED",
                BODY,
                SECRET,
            )),
            StatusCode::NOT_FOUND,
            "no webhook is configured for unknown.biapi.pro",
        ),
        (
            "announced oversize",
            body(signed(PATH, &oversize, SECRET)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "limit of 1024 bytes",
        ),
        (
            "streamed oversize",
            streamed_oversize,
            StatusCode::PAYLOAD_TOO_LARGE,
            "limit of 1024 bytes",
        ),
    ];
    let (app, publisher) = relay("");
    for (name, request, status, reason) in rows {
        let answer = call(&app, request).await;
        assert_eq!(answer.status, status, "{name}: {}", answer.body);
        assert!(answer.body.contains(reason), "{name}: {:?}", answer.body);
        assert!(
            answer.body.ends_with('\n') && answer.body.lines().count() == 1,
            "{name}: {:?}",
            answer.body
        );
        assert_eq!(
            answer.content_type.as_deref(),
            Some("text/plain; charset=utf-8"),
            "{name}"
        );
        assert!(!answer.body.contains(SECRET), "{name}");
    }
    assert_eq!(publisher.published(), [], "a refused webhook was published");
}

fn futures_chunks(
    bytes: &[u8],
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + use<> {
    let chunks: Vec<Result<Bytes, std::io::Error>> = bytes
        .chunks(100)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures_util::stream::iter(chunks)
}

#[tokio::test]
async fn a_publisher_failure_is_a_503_never_a_2xx() {
    let (app, publisher) = relay("");
    for failure in [
        PublishError::Unavailable,
        PublishError::Nacked,
        PublishError::Unroutable,
        PublishError::Timeout,
        PublishError::Failed("channel closed".into()),
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
