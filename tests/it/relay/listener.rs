//! The listener's routes through `oneshot`, with an in-memory publisher and the embedded
//! store: TeaL's contract (TEAL.md §1–4) and the defects fixed (§10).

use axum::body::Body;
use chrono::{TimeDelta, Utc};
use http::{Request, StatusCode, header};
use powens_webhooks::relay::testing::{Failure, MemoryPublisher, Published, Store, router};
use powens_webhooks::{CallbackMessage, OpenIdCibaCallbackMessage, TealMessage};
use url::Url;

use super::{config, unique};
use crate::Answer;

const PUBLIC: &str = "https://listener.example.org/teal/";

struct Listener {
    app: axum::Router,
    publisher: MemoryPublisher,
    store: Store,
}

/// A relay whose listener has its own embedded store, with `extra` configuration.
fn listener(extra: &str) -> Listener {
    let dir = std::env::temp_dir().join(unique("listener"));
    let store = Store::embedded(&dir.join("callbacks.sqlite3")).unwrap();
    let config = config(&format!(
        "public_url = \"{PUBLIC}\"\n{extra}\n[domains.\"sandbox.biapi.pro\"]\nmode = \"forward\"\n"
    ));
    let publisher = MemoryPublisher::new();
    Listener {
        app: router(&config, &publisher, Some(&store)),
        publisher,
        store,
    }
}

impl Listener {
    async fn create(&self, state: &str, redirect: Option<&str>, with_fragment: bool) {
        self.store
            .put_callback(
                state,
                Utc::now() + TimeDelta::minutes(5),
                redirect.map(|u| Url::parse(u).unwrap()),
                with_fragment,
            )
            .await
            .unwrap();
    }

    async fn get(&self, uri: &str) -> (Answer, Option<String>) {
        let request = Request::get(uri)
            .header(header::REFERER, "https://webview.powens.example/")
            .body(Body::empty())
            .unwrap();
        self.send(request).await
    }

    async fn send(&self, request: Request<Body>) -> (Answer, Option<String>) {
        use tower::ServiceExt;
        let response = self.app.clone().oneshot(request).await.unwrap();
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let retry = response.headers().get(header::RETRY_AFTER).is_some();
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        let mut answer = Answer {
            status: parts.status,
            content_type: parts
                .headers
                .get(header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap().to_owned()),
            body: String::from_utf8(body.to_vec()).unwrap(),
        };
        if retry {
            answer.body.push_str("[retry-after]");
        }
        (answer, location)
    }

    /// The one callback message published since the last call.
    fn published_callback(&self) -> (Published, CallbackMessage) {
        let published = self.publisher.take();
        assert_eq!(published.len(), 1, "{published:?}");
        let out = published.into_iter().next().unwrap();
        let message = CallbackMessage::from_json(&out.body).unwrap();
        (out, message)
    }
}

#[tokio::test]
async fn a_known_state_publishes_its_callback_then_redirects() {
    let l = listener("");
    l.create("s-302", Some("https://app.example.org/done?x=1"), false)
        .await;
    let (answer, location) = l.get("/callback?state=s-302&code=c0de").await;
    assert_eq!(answer.status, StatusCode::FOUND, "{}", answer.body);
    assert_eq!(
        location.as_deref(),
        Some("https://app.example.org/done?x=1")
    );
    let (out, message) = l.published_callback();
    assert_eq!(out.exchange, "callbacks");
    assert_eq!(out.routing_key, "s-302");
    assert_eq!(message.state, "s-302");
    assert_eq!(
        message.url,
        format!("{PUBLIC}callback?state=s-302&code=c0de")
    );
    // TeaL's shape, field for field.
    let json: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
    let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["state", "timestamp", "url"]);

    // No final URL: 204. Errback, and TeaL's `&` quirk.
    l.create("s-204", None, false).await;
    let (answer, location) = l.get("/errback&state=s-204&error=access_denied").await;
    assert_eq!((answer.status, location), (StatusCode::NO_CONTENT, None));
    let (_, message) = l.published_callback();
    assert_eq!(
        message.url,
        format!("{PUBLIC}errback?state=s-204&error=access_denied")
    );
    // Not consumed (TeaL's default): a replay publishes again.
    assert_eq!(
        l.get("/errback?state=s-204").await.0.status,
        StatusCode::NO_CONTENT
    );
    l.published_callback();
}

#[tokio::test]
async fn unknown_empty_expired_and_missing_states_are_refused_and_nothing_is_published() {
    let l = listener("");
    let (page, _) = l.get("/callback").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.content_type.as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert!(page.body.contains("raw-callback?full_url=") && page.body.contains("<noscript>"));
    let expired = Utc::now() + TimeDelta::milliseconds(50);
    l.store
        .put_callback("old", expired, None, false)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    for (uri, reason) in [
        ("/callback?state=", "Empty state"),
        ("/callback?state=nobody", "Unknown state"),
        ("/callback?state=old", "Unknown state"),
        (
            "/callback?state=a%0Ab",
            "the state holds a control character",
        ),
        (
            "/callback?state=%ff",
            "the query holds percent-escapes that are not UTF-8",
        ),
        ("/raw-callback", "Missing full URL"),
        (
            "/raw-callback?full_url=https%3A%2F%2Fevil.example.org%2Fteal%2Fcallback%3Fstate%3Dx",
            "the full URL does not point at this listener",
        ),
        (
            "/raw-callback?full_url=https%3A%2F%2Flistener.example.org%2Fteal%2Fcallback",
            "Missing state in full URL",
        ),
        ("/raw-callback?full_url=not-a-url", "Invalid full URL"),
    ] {
        let (answer, _) = l.get(uri).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(answer.body, format!("{reason}\n"), "{uri}");
        assert_eq!(
            answer.content_type.as_deref(),
            Some("text/plain; charset=utf-8")
        );
    }
    let flood = format!("/callback?{}state=x", "a=1&".repeat(10_000));
    assert_eq!(l.get(&flood).await.0.status, StatusCode::BAD_REQUEST);
    assert_eq!(l.publisher.published(), []);
}

#[tokio::test]
async fn with_fragment_goes_through_the_fragment_page_and_raw_callback() {
    let l = listener("");
    l.create("s-frag", Some("https://app.example.org/frag"), true)
        .await;
    let (page, _) = l.get("/callback?state=s-frag").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("raw-callback"));
    assert_eq!(l.publisher.published(), []);
    // What the page sends back: the whole URL, the fragment included.
    let full = format!("{PUBLIC}callback?state=s-frag#access_token=t0k&expires_in=60");
    let uri = format!("/raw-callback?full_url={}", urlencode(&full));
    let (answer, location) = l.get(&uri).await;
    assert_eq!(answer.status, StatusCode::FOUND, "{}", answer.body);
    assert_eq!(location.as_deref(), Some("https://app.example.org/frag"));
    let (_, message) = l.published_callback();
    assert_eq!((message.url, message.state), (full, "s-frag".to_owned()));
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn one_shot_states_refuse_a_replay_and_survive_a_broker_failure() {
    let l = listener("callback_one_shot = true");
    l.create("once", None, false).await;
    l.publisher.fail_with(Some(Failure::Unavailable));
    let (answer, _) = l.get("/callback?state=once").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        answer.body.ends_with("retry later\n[retry-after]"),
        "{}",
        answer.body
    );
    // Not published, so not used: the browser's retry works, once.
    l.publisher.fail_with(None);
    assert_eq!(
        l.get("/callback?state=once").await.0.status,
        StatusCode::NO_CONTENT
    );
    l.published_callback();
    let (again, _) = l.get("/callback?state=once").await;
    assert_eq!(
        (again.status, again.body.as_str()),
        (StatusCode::BAD_REQUEST, "Unknown state\n")
    );
    assert_eq!(l.publisher.published(), []);
}

#[tokio::test]
async fn the_redirect_fallback_follows_only_allowed_hosts() {
    let off = listener("");
    assert_eq!(
        off.get("/callback?state=B1033budgea_st&code=1")
            .await
            .0
            .status,
        StatusCode::BAD_REQUEST
    );
    let l = listener("redirect_fallback_hosts = \"budgea.biapi.pro\"");
    let (answer, location) = l.get("/callback?state=B1033budgea_st&code=1").await;
    assert_eq!(answer.status, StatusCode::FOUND, "{}", answer.body);
    assert_eq!(
        location.as_deref(),
        Some("https://budgea.biapi.pro/2.0/webauth/resume?code=1&state=st&auth_type=web")
    );
    let (out, _) = l.published_callback();
    assert_eq!(out.routing_key, "B1033budgea_st");
    // Anywhere else: an open redirect refused.
    let (answer, _) = l.get("/callback?state=B1001evil.example.org&code=1").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(l.publisher.published(), []);
}

fn ciba(authorization: Option<&str>, body: &str) -> Request<Body> {
    let mut request = Request::post("/openid-ciba-callback");
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    request.body(Body::from(body.to_owned())).unwrap()
}

#[tokio::test]
async fn ciba_notifications_need_a_bearer_and_publish_by_request_id() {
    let l = listener("");
    let push = r#"{"auth_req_id":"req-9","access_token":"AT","token_type":"Bearer","expires_in":600,"id_token":"ID","extra":1}"#;
    let before = Utc::now();
    let (answer, _) = l.send(ciba(Some("Bearer UPPER.case-Token_1"), push)).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.body);
    let published = l.publisher.take();
    assert_eq!(published[0].exchange, "openid_ciba_callbacks");
    assert_eq!(published[0].routing_key, "req-9");
    let message = OpenIdCibaCallbackMessage::from_json(&published[0].body).unwrap();
    assert_eq!(message.access_token.as_deref(), Some("UPPER.case-Token_1"));
    let token = message.push_token.unwrap();
    let expires = token.expires_at.to_utc();
    assert!(
        expires >= before + TimeDelta::seconds(600)
            && expires <= Utc::now() + TimeDelta::seconds(600)
    );
    assert_eq!(
        token.refresh_token, "",
        "absent: written as TeaL's consumers read it"
    );

    for (auth, body) in [
        (None, push),
        (Some("Basic abc"), push),
        (Some("Bearer "), push),
    ] {
        let request = ciba(auth, body);
        let response = {
            use tower::ServiceExt;
            l.app.clone().oneshot(request).await.unwrap()
        };
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
    for body in [
        "not json",
        r#"{"auth_req_id":""}"#,
        r#"{"auth_req_id":"r","access_token":"A"}"#,
    ] {
        let (answer, _) = l.send(ciba(Some("Bearer t"), body)).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::BAD_REQUEST, "Invalid payload\n")
        );
    }
    assert_eq!(l.publisher.published(), []);
}
