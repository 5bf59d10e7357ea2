//! The operator console over HTTP, against the real RabbitMQ: its password, its headers,
//! the live stream, the journal pages and replay (with its cross-site checks), no
//! secret in any page, nothing listening when it is off. The browser's view is in
//! `console_browser.rs`.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use base64::Engine;
use http::Request;
use http_body_util::{BodyExt, Full};
use powens_webhooks::relay::Relay;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::e2e::{consumer, next};
use super::journal::Dir;
use super::{config, delete_exchanges, secret_file, signed, try_post, unique, verify_domain};
use crate::http_client::{Answer, exchange};

pub(super) const PASSWORD: &str = "console-pa55word";
pub(super) const SECRET: &str = "console-webhook-s3cret";
pub(super) const OTHER_SECRET: &str = "other-domain-s3cret";
pub(super) const DOMAIN: &str = "budgea.biapi.pro";
pub(super) const OTHER: &str = "other.biapi.pro";

/// A relay with its console (and the journal, `always`), in this process.
pub(super) struct Console {
    pub(super) relay: SocketAddr,
    pub(super) console: SocketAddr,
    pub(super) prefix: String,
    task: JoinHandle<()>,
    _dir: Dir,
}

impl Console {
    /// `extra` is more TOML.
    pub(super) async fn start(extra: &str) -> Self {
        let prefix = unique("console");
        let dir = Dir::new("console");
        let toml = format!(
            "data_dir = {:?}\njournal = \"always\"\nexchange_prefix = \"{prefix}\"\n\
             amqp_url = \"amqp://guest:guest@127.0.0.1:5672/%2f\"\n\
             console = true\nconsole_listen = \"127.0.0.1:0\"\n\
             console_password = \"file:{}\"\n{extra}\n{}{}",
            dir.0,
            secret_file(PASSWORD).display(),
            verify_domain(DOMAIN, SECRET),
            verify_domain(OTHER, OTHER_SECRET),
        );
        let relay = Relay::start(&config(&toml)).await.unwrap();
        let addr = relay.local_addr().unwrap();
        let console = relay.console_addr().unwrap().expect("the console listens");
        Self {
            relay: addr,
            console,
            prefix,
            task: tokio::spawn(relay.run(std::future::pending())),
            _dir: dir,
        }
    }

    pub(super) async fn stop(self) {
        self.task.abort();
        delete_exchanges(&self.prefix).await;
    }

    /// `GET path` on the console with `password` (none: no credentials).
    pub(super) async fn get_as(&self, path: &str, password: Option<&str>) -> Answer {
        let mut request = Request::get(path);
        if let Some(password) = password {
            request = request.header("authorization", basic(password));
        }
        let request = request.body(Full::new(Bytes::new())).unwrap();
        exchange(self.console, request)
            .await
            .expect("the console answered")
    }

    /// `GET path` on the console, logged in.
    pub(super) async fn get(&self, path: &str) -> Answer {
        self.get_as(path, Some(PASSWORD)).await
    }

    /// `POST path` with the form `fields`, logged in, with `headers`.
    pub(super) async fn post(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Answer {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", percent(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut request = Request::post(path)
            .header("authorization", basic(PASSWORD))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("host", self.console.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body))).unwrap();
        exchange(self.console, request)
            .await
            .expect("the console answered")
    }

    /// Sends a webhook signed with `secret`: the relay's status.
    pub(super) async fn send(&self, domain: &str, body: &str, secret: &str) -> u16 {
        let path = format!("/powens-webhook/{domain}/USER_SYNCED");
        let (status, _) = try_post(self.relay, signed(&path, body.as_bytes(), secret))
            .await
            .unwrap();
        status
    }
}

fn basic(password: &str) -> String {
    let pair = format!("anonymous:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The form token of a console page.
pub(super) fn token_of(page: &str) -> String {
    let at = page
        .find("name=\"token\" value=\"")
        .expect("a form with the token");
    let rest = &page[at + "name=\"token\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_needs_its_password_and_keeps_its_pages_out_of_frames_and_caches() {
    let console = Console::start("").await;
    for password in [None, Some("wrong"), Some("")] {
        let answer = console.get_as("/", password).await;
        assert_eq!(answer.status, 401, "{password:?}");
        let challenge = answer.headers["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Basic realm="), "{challenge}");
        assert!(!answer.body.contains("Webhooks"), "{}", answer.body);
    }
    // Every page and asset is behind the password, the event stream too.
    for path in ["/journal", "/journal/1", "/events", "/assets/console.js"] {
        assert_eq!(console.get_as(path, None).await.status, 401, "{path}");
    }
    let page = console.get("/").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Webhooks"));
    let policy = page.headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"));
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert_eq!(page.headers["cache-control"], "no-store");
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_console_off_nothing_listens_on_console_listen() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let toml = format!(
        "console_listen = \"{port}\"\nconsole_password = \"env:POWENS_RELAY_UNSET_FOR_THIS_TEST\"\n{}",
        verify_domain(DOMAIN, SECRET)
    );
    let relay = Relay::start(&config(&toml)).await.unwrap();
    assert_eq!(relay.console_addr().unwrap(), None);
    let task = tokio::spawn(relay.run(std::future::pending()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let connected = tokio::net::TcpStream::connect(port).await;
    assert!(connected.is_err(), "something listens on {port}");
    task.abort();
}

/// Reads the console's event stream until an event holds `needle`: its text.
async fn event_with(console: SocketAddr, needle: &str) -> String {
    let stream = tokio::net::TcpStream::connect(console).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = Request::get("/events")
        .header("authorization", basic(PASSWORD))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let mut text = String::new();
    loop {
        let frame = timeout(Duration::from_secs(10), body.frame())
            .await
            .unwrap_or_else(|_| panic!("no event with {needle:?} within 10 s: {text}"))
            .expect("the stream goes on")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
        if let Some(at) = text.find(needle) {
            let start = text[..at].rfind("event:").unwrap_or(0);
            return text[start..].to_owned();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_appear_live_refused_ones_with_their_reason() {
    let console = Console::start("").await;
    let stream = tokio::spawn(event_with(console.console, "id_webhook_data 4242"));
    // The stream is open before the webhook is sent.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        console
            .send(DOMAIN, r#"{"id_webhook_data": 4242}"#, SECRET)
            .await,
        204
    );
    let event = stream.await.unwrap();
    assert!(event.starts_with("event: webhook"), "{event}");
    for word in [DOMAIN, "USER_SYNCED", "verified", "journaled", "204"] {
        assert!(event.contains(word), "{word} in {event}");
    }
    let refused = tokio::spawn(event_with(console.console, "<tr class=\"refused\""));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        console
            .send(DOMAIN, r#"{"id_webhook_data": 1}"#, "not-the-secret")
            .await,
        401
    );
    let event = refused.await.unwrap();
    assert!(event.contains("signature does not match"), "{event}");
    // With why: no likely cause matched.
    assert!(event.contains("the secret most likely differs"), "{event}");
    // The page that opens now lists both, newest first, and counts the refusal.
    let page = console.get("/").await.body;
    let (refused_at, verified_at) = (page.find("refused").unwrap(), page.find("4242").unwrap());
    assert!(refused_at < verified_at, "{page}");
    // Counted under the diagnosis' cause.
    assert!(page.contains("signature: secret"), "{page}");
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_entry_opens_and_replays_once_confirmed_and_never_from_another_site() {
    let console = Console::start("").await;
    let mut consumer = consumer(&console.prefix, &[DOMAIN]).await;
    let body = r#"{"id_webhook_data": 99, "user": {"id": 7, "name": "Zoë"}}"#;
    assert_eq!(console.send(DOMAIN, body, SECRET).await, 204);
    let first = next(&mut consumer).await;
    assert!(!first.replayed);

    let list = console
        .get(&format!("/journal?domain={DOMAIN}&id=99"))
        .await;
    assert_eq!(list.status, 200);
    let seq_at = list.body.find("href=\"/journal/").expect("an entry");
    let seq: String = list.body[seq_at + 15..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let entry = console.get(&format!("/journal/{seq}")).await;
    assert_eq!(entry.status, 200);
    // Pretty-printed, escaped.
    assert!(
        entry.body.contains("&quot;name&quot;: &quot;Zoë&quot;"),
        "{}",
        entry.body
    );
    let token = token_of(&entry.body);

    // Cross-site: no token, a wrong one, another origin, the browser saying so.
    let from_evil = [("origin", "https://evil.example")];
    let cross_site = [("sec-fetch-site", "cross-site")];
    for (fields, headers) in [
        (vec![("seq", seq.as_str())], &[][..]),
        (vec![("seq", seq.as_str()), ("token", "0123")], &[][..]),
        (
            vec![("seq", seq.as_str()), ("token", token.as_str())],
            &from_evil[..],
        ),
        (
            vec![("seq", seq.as_str()), ("token", token.as_str())],
            &cross_site[..],
        ),
    ] {
        let answer = console
            .post("/journal/replay/confirm", &fields, headers)
            .await;
        assert_eq!(answer.status, 403, "{fields:?} {headers:?}");
    }
    // The confirmation step publishes nothing.
    let fields = [("seq", seq.as_str()), ("token", token.as_str())];
    let own = [
        ("origin", &*format!("http://{}", console.console)),
        ("sec-fetch-site", "same-origin"),
    ];
    let confirm = console.post("/journal/replay", &fields, &own).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("Replay 1 entry?"), "{}", confirm.body);
    assert!(
        timeout(Duration::from_millis(500), consumer.next())
            .await
            .is_err(),
        "nothing is published before the confirmation"
    );
    let done = console.post("/journal/replay/confirm", &fields, &own).await;
    assert_eq!(done.status, 200);
    assert!(done.body.contains("1 of 1 replayed"), "{}", done.body);
    let replayed = next(&mut consumer).await;
    assert!(replayed.replayed);
    assert_eq!(replayed.body, first.body);
    assert_eq!(replayed.message_id, first.message_id);
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_pages_hold_no_secret() {
    let dispatcher_password = "dispatcher-pa55";
    let extra = format!(
        "dispatcher = true\ndispatcher_password = \"file:{}\"\n",
        secret_file(dispatcher_password).display()
    );
    let console = Console::start(&extra).await;
    let token = "user-bearer-token-abc";
    let path = format!("/powens-webhook/{DOMAIN}/USER_SYNCED");
    let mut request = signed(&path, br#"{"id_webhook_data": 5}"#, SECRET);
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let signature = request.headers()["bi-signature"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(try_post(console.relay, request).await.unwrap().0, 204);
    // Refused: the other domain's secret, a wrong one.
    assert_eq!(
        console
            .send(DOMAIN, r#"{"id_webhook_data": 6}"#, OTHER_SECRET)
            .await,
        401
    );
    assert_eq!(
        console
            .send(OTHER, r#"{"id_webhook_data": 7}"#, "wrong")
            .await,
        401
    );

    let mut pages = Vec::new();
    for path in [
        "/",
        "/journal",
        "/journal/1",
        "/journal?domain=budgea.biapi.pro",
        "/nowhere",
        "/assets/console.js",
        "/assets/console.css",
    ] {
        let answer = console.get(path).await;
        pages.push((path.to_owned(), answer.body));
    }
    let entry_token = token_of(&pages[2].1);
    let confirm = console
        .post(
            "/journal/replay",
            &[("seq", "1"), ("token", &entry_token)],
            &[],
        )
        .await;
    pages.push(("/journal/replay".into(), confirm.body));
    let first_events = event_with(console.console, "event: glance").await;
    pages.push(("/events".into(), first_events));
    let unauthorized = console.get_as("/", Some("wrong")).await;
    pages.push(("401".into(), unauthorized.body));

    let credentials = basic(PASSWORD);
    let secrets = [
        SECRET,
        OTHER_SECRET,
        PASSWORD,
        dispatcher_password,
        token,
        signature.as_str(),
        credentials.trim_start_matches("Basic "),
        "guest:guest",
    ];
    for (path, body) in &pages {
        assert!(!body.is_empty() || path == "401", "{path} is empty");
        for secret in secrets {
            assert!(!body.contains(secret), "{path} holds {secret:?}");
        }
    }
    // The page of the entry says the token is there, without showing it.
    assert!(
        pages[2].1.contains("in the message, not shown"),
        "{}",
        pages[2].1
    );
    console.stop().await;
}
