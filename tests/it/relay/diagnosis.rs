//! Refused signatures explained, each mistake made for real against `powens-relay
//! serve`: a path prefix stripped by a reverse proxy of the test's own, another
//! domain's secret, an expired secret (and after SIGHUP), a body a proxy decoded (or
//! left compressed without its header), a skewed clock. Each time the relay's log line
//! and its console give the sentence, the HTTP answer does not; the rate limit holds;
//! no secret shows anywhere.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use base64::Engine;
use chrono::{TimeDelta, Utc};
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::net::TcpListener;

use super::{Serve, gzip, secret_file, signed, signed_at};
use crate::http_client::{Answer, exchange};

const DOMAIN: &str = "budgea.biapi.pro";
const OTHER: &str = "other.biapi.pro";
const CURRENT: &str = "current-s3cret-7d1e";
const OLD: &str = "old-s3cret-41aa";
const OTHER_SECRET: &str = "other-s3cret-99c0";
const PASSWORD: &str = "diagnosis-console-pa55";
const BODY: &[u8] = br#"{"id_webhook_data": 8}"#;

fn path() -> String {
    format!("/powens-webhook/{DOMAIN}/USER_SYNCED")
}

/// When the old secret expired: an hour ago, to the second.
fn expired_at() -> String {
    (Utc::now() - TimeDelta::hours(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// `powens-relay serve` with its console, budgea's current secret and its old one
/// (expired at `expired`), other's secret, and `extra` TOML.
struct Relay {
    serve: Serve,
    console: SocketAddr,
}

impl Relay {
    fn start(extra: &str, expired: &str) -> Self {
        let file = |secret: &str| secret_file(secret).display().to_string();
        let toml = format!(
            "console = true\nconsole_listen = \"127.0.0.1:0\"\n\
             console_password = \"file:{}\"\n{extra}\n\
             [domains.\"{DOMAIN}\"]\nsecrets = [\"file:{}\", \
             {{ ref = \"file:{}\", expires_at = \"{expired}\" }}]\n\
             [domains.\"{OTHER}\"]\nsecrets = [\"file:{}\"]\n",
            file(PASSWORD),
            file(CURRENT),
            file(OLD),
            file(OTHER_SECRET),
        );
        let config = secret_file(&toml);
        let serve = Serve::spawn(&[("POWENS_RELAY_CONFIG", &config.display().to_string())]);
        let console = wait_for(|| {
            serve.logs_so_far().iter().find_map(|line| {
                let rest = line.split("the console is at http://").nth(1)?;
                rest.split('/').next()?.parse().ok()
            })
        });
        Self { serve, console }
    }

    /// Sends `request` to `to` (the relay or a proxy in front of it): it is refused 401
    /// with the one-line status, which holds no diagnosis. Its request id.
    async fn refused(&self, to: SocketAddr, request: Request<Full<Bytes>>) -> String {
        let answer = exchange(to, request).await.expect("an answer");
        assert_eq!(answer.status, 401, "{}", answer.body);
        assert_eq!(answer.body.lines().count(), 1, "{}", answer.body);
        for word in [
            "signed",
            "secret of",
            "prefix",
            "relay's clock",
            "NTP",
            "Content-Encoding",
        ] {
            assert!(
                !answer.body.contains(word),
                "the answer holds {word:?}: {}",
                answer.body
            );
        }
        answer.request_id.expect("an x-request-id")
    }

    /// The `diagnosis` of the log line of the request `id`.
    fn logged(&self, id: &str) -> String {
        wait_for(|| {
            self.serve.logs_so_far().iter().find_map(|line| {
                let event: serde_json::Value = serde_json::from_str(line).ok()?;
                (event["request_id"] == id && event["message"] == "webhook handled")
                    .then(|| event["diagnosis"].as_str().unwrap_or("(none)").to_owned())
            })
        })
    }

    /// The console's live page.
    async fn console_page(&self) -> String {
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("anonymous:{PASSWORD}"));
        let request = Request::get("/")
            .header("authorization", format!("Basic {credentials}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let answer = exchange(self.console, request).await.expect("the console");
        assert_eq!(answer.status, 200);
        answer.body
    }

    /// The request `id` was refused with a diagnosis starting with `sentence`, in the log
    /// and on the console (in the row of that request): the whole diagnosis.
    async fn diagnosed(&self, id: &str, sentence: &str) -> String {
        let logged = self.logged(id);
        assert!(
            logged.starts_with(sentence),
            "log: {logged}\nexpected: {sentence}"
        );
        let page = self.console_page().await;
        let row_at = page
            .find(&format!("data-request-id=\"{id}\""))
            .unwrap_or_else(|| panic!("no row for {id}: {page}"));
        let row = &page[row_at
            ..page[row_at..]
                .find("</tr>")
                .map_or(page.len(), |e| row_at + e)];
        assert!(row.contains(&escaped(&logged)), "row: {row}\nlog: {logged}");
        logged
    }

    /// `powens_relay_signature_diagnoses_total{cause}`.
    async fn diagnoses(&self, cause: &str) -> u64 {
        let request = Request::get("/metrics")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let text = exchange(self.serve.addr, request).await.unwrap().body;
        let series = format!("powens_relay_signature_diagnoses_total{{cause=\"{cause}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .unwrap_or_else(|| panic!("no {series}in {text}"))
            .parse()
            .unwrap()
    }
}

/// `text` as maud writes it in a page.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Polls `found` for up to 10 s.
fn wait_for<T>(mut found: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = found() {
            return value;
        }
        assert!(Instant::now() < deadline, "not found within 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A reverse proxy of the test's own on 127.0.0.1: each request, `rewrite`n, forwarded
/// to `upstream` on a new connection; the answer returned with its status, its
/// `x-request-id` and its body.
async fn proxy(upstream: SocketAddr, rewrite: fn(Request<Bytes>) -> Request<Bytes>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service =
                hyper::service::service_fn(move |request: Request<Incoming>| async move {
                    let (parts, body) = request.into_parts();
                    let body = body.collect().await.unwrap().to_bytes();
                    let (mut parts, body) = rewrite(Request::from_parts(parts, body)).into_parts();
                    parts.headers.remove("content-length");
                    let answer: Answer =
                        exchange(upstream, Request::from_parts(parts, Full::new(body)))
                            .await
                            .expect("the relay answered");
                    let mut response = Response::builder().status(answer.status);
                    if let Some(id) = answer.request_id {
                        response = response.header("x-request-id", id);
                    }
                    Ok::<_, Infallible>(response.body(Full::new(Bytes::from(answer.body))).unwrap())
                });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    addr
}

/// Strips the leading `/hooks`, as `location /hooks/ { proxy_pass http://relay/; }`.
fn strip_hooks(mut request: Request<Bytes>) -> Request<Bytes> {
    let path = request
        .uri()
        .path()
        .strip_prefix("/hooks")
        .unwrap()
        .to_owned();
    *request.uri_mut() = path.parse().unwrap();
    request
}

/// Strips `/gateway-7`, saying so in `X-Forwarded-Prefix`.
fn strip_gateway(mut request: Request<Bytes>) -> Request<Bytes> {
    let path = request
        .uri()
        .path()
        .strip_prefix("/gateway-7")
        .unwrap()
        .to_owned();
    *request.uri_mut() = path.parse().unwrap();
    request
        .headers_mut()
        .insert("x-forwarded-prefix", HeaderValue::from_static("/gateway-7"));
    request
}

/// Decodes a gzip body and drops its `Content-Encoding`, as a proxy with gunzip on.
fn gunzip(request: Request<Bytes>) -> Request<Bytes> {
    use std::io::Read;
    let (mut parts, body) = request.into_parts();
    assert!(parts.headers.remove("content-encoding").is_some());
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut decoded)
        .unwrap();
    Request::from_parts(parts, Bytes::from(decoded))
}

/// Drops the `Content-Encoding` header, leaving the body compressed.
fn drop_encoding(request: Request<Bytes>) -> Request<Bytes> {
    let (mut parts, body) = request.into_parts();
    assert!(parts.headers.remove("content-encoding").is_some());
    Request::from_parts(parts, body)
}

fn with_gzip(mut request: Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    request
        .headers_mut()
        .insert("content-encoding", HeaderValue::from_static("gzip"));
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_stripped_by_a_proxy_is_diagnosed_with_the_prefix_to_set() {
    let relay = Relay::start("", &expired_at());
    // Powens calls the public URL, under /hooks; the proxy strips it.
    let hooks = proxy(relay.serve.addr, strip_hooks).await;
    let public = format!("/hooks{}", path());
    let id = relay.refused(hooks, signed(&public, BODY, CURRENT)).await;
    relay
        .diagnosed(
            &id,
            "signed as /hooks/powens-webhook/…: set public_path_prefix = \"/hooks\"",
        )
        .await;
    // A prefix no one would guess, which the proxy names in X-Forwarded-Prefix.
    let gateway = proxy(relay.serve.addr, strip_gateway).await;
    let public = format!("/gateway-7{}", path());
    let id = relay.refused(gateway, signed(&public, BODY, CURRENT)).await;
    relay
        .diagnosed(
            &id,
            "signed as /gateway-7/powens-webhook/…: set public_path_prefix = \"/gateway-7\"",
        )
        .await;
    assert_eq!(relay.diagnoses("path_prefix").await, 2);
    relay.serve.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_put_back_that_the_proxy_does_not_strip_is_diagnosed() {
    let relay = Relay::start("public_path_prefix = \"/hooks\"", &expired_at());
    let id = relay
        .refused(relay.serve.addr, signed(&path(), BODY, CURRENT))
        .await;
    relay
        .diagnosed(
            &id,
            "signed as /powens-webhook/…, without the prefix \"/hooks\" put back: the proxy \
             does not strip it; remove public_path_prefix",
        )
        .await;
    relay.serve.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_domains_secret_is_diagnosed() {
    let relay = Relay::start("", &expired_at());
    let id = relay
        .refused(relay.serve.addr, signed(&path(), BODY, OTHER_SECRET))
        .await;
    relay
        .diagnosed(
            &id,
            "signed with the secret of domain other.biapi.pro, not budgea.biapi.pro's: the \
             webhook URL set at Powens for other.biapi.pro names budgea.biapi.pro",
        )
        .await;
    assert_eq!(relay.diagnoses("other_domain").await, 1);
    relay.serve.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_secret_is_diagnosed_with_its_date_and_still_after_sighup() {
    let expired = expired_at();
    let relay = Relay::start("", &expired);
    let sentence = format!(
        "signed with a secret of this domain that expired at {expired} (secrets[1]): Powens \
         still signs with it"
    );
    let id = relay
        .refused(relay.serve.addr, signed(&path(), BODY, OLD))
        .await;
    relay.diagnosed(&id, &sentence).await;
    // SIGHUP re-reads the secrets and keeps their expiry.
    let hup = Command::new("kill")
        .args(["-HUP", &relay.serve.child_id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_for(|| {
        (relay
            .serve
            .logs_so_far()
            .iter()
            .any(|l| l.contains("SIGHUP: secrets re-read")))
        .then_some(())
    });
    let id = relay
        .refused(relay.serve.addr, signed(&path(), BODY, OLD))
        .await;
    relay.diagnosed(&id, &sentence).await;
    let current = exchange(relay.serve.addr, signed(&path(), BODY, CURRENT))
        .await
        .unwrap();
    assert_eq!(current.status, 204, "{}", current.body);
    relay.serve.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_a_proxy_decoded_or_left_compressed_is_diagnosed() {
    let relay = Relay::start("", &expired_at());
    // Signed over the gzip bytes Powens sent; the proxy decompressed them.
    let compressed = gzip(BODY);
    let decoding = proxy(relay.serve.addr, gunzip).await;
    let request = with_gzip(signed(&path(), &compressed, CURRENT));
    let id = relay.refused(decoding, request).await;
    relay
        .diagnosed(
            &id,
            "signed over the gzip-compressed body, which arrived decompressed: a proxy \
             decoded the Content-Encoding",
        )
        .await;
    // Signed decompressed; the proxy dropped the header and left the body compressed.
    let dropping = proxy(relay.serve.addr, drop_encoding).await;
    let mut request = signed(&path(), BODY, CURRENT);
    *request.body_mut() = Full::new(Bytes::from(compressed));
    let id = relay.refused(dropping, with_gzip(request)).await;
    relay
        .diagnosed(
            &id,
            "the body arrived gzip-compressed without Content-Encoding: gzip, and was signed \
             decompressed",
        )
        .await;
    assert_eq!(relay.diagnoses("content_encoding").await, 2);
    relay.serve.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skewed_clock_is_diagnosed_with_by_how_much() {
    let relay = Relay::start("signature_max_age_secs = 300", &expired_at());
    let at = Utc::now() - TimeDelta::seconds(7 * 60 + 12);
    let id = relay
        .refused(relay.serve.addr, signed_at(&path(), BODY, CURRENT, at))
        .await;
    let logged = relay
        .diagnosed(&id, "the BI-Signature-Date is 7 min 1")
        .await;
    assert!(
        logged.contains(
            " behind this relay's clock; the window is 5 min behind to 2 min ahead; check the \
             clock of this host and of the sender (NTP)"
        ),
        "{logged}"
    );
    let ahead = Utc::now() + TimeDelta::seconds(10 * 60);
    let id = relay
        .refused(relay.serve.addr, signed_at(&path(), BODY, CURRENT, ahead))
        .await;
    relay
        .diagnosed(&id, "the BI-Signature-Date is 9 min 5")
        .await;
    assert_eq!(relay.diagnoses("clock").await, 2);
    relay.serve.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_diagnosis_rate_refusals_are_logged_as_skipped_and_not_counted() {
    let relay = Relay::start("diagnosis_rate = 2", &expired_at());
    let mut logged = Vec::new();
    for _ in 0..8 {
        let id = relay
            .refused(relay.serve.addr, signed(&path(), BODY, "not-any-secret"))
            .await;
        logged.push(relay.logged(&id));
    }
    let diagnosed = logged
        .iter()
        .filter(|l| l.contains("the secret most likely differs"))
        .count();
    let skipped = logged
        .iter()
        .filter(|l| *l == "skipped: more refused signatures than diagnosis_rate = 2 a second")
        .count();
    assert_eq!(diagnosed + skipped, 8, "{logged:#?}");
    // Two at once, and what the bucket refilled while the others came.
    assert!((2..=4).contains(&diagnosed), "{logged:#?}");
    assert_eq!(relay.diagnoses("secret").await, diagnosed as u64);
    assert!(
        relay
            .console_page()
            .await
            .contains("skipped: more refused signatures")
    );
    relay.serve.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_signature_shows_in_the_log_or_the_console() {
    let relay = Relay::start("", &expired_at());
    let mut signatures = Vec::new();
    for secret in [CURRENT, OLD, OTHER_SECRET, "wrong-s3cret-0000"] {
        // The current secret over the public path, the proxy's prefix stripped.
        let signed_for = match secret {
            CURRENT => format!("/hooks{}", path()),
            _ => path(),
        };
        let mut request = signed(&signed_for, BODY, secret);
        *request.uri_mut() = path().parse().unwrap();
        signatures.push(
            request.headers()["bi-signature"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
        relay.refused(relay.serve.addr, request).await;
    }
    let page = relay.console_page().await;
    for cause in ["path prefix", "expired secret", "other domain", "secret"] {
        assert!(
            page.contains(&format!("signature: {cause}")),
            "{cause}: {page}"
        );
    }
    let (_, logs) = relay.serve.terminate();
    let logs = logs.join("\n");
    assert!(logs.contains("\"diagnosis\":\"signed as /hooks/"), "{logs}");
    for secret in [CURRENT, OLD, OTHER_SECRET, "wrong-s3cret-0000", PASSWORD] {
        assert!(!logs.contains(secret) && !page.contains(secret), "{secret}");
    }
    for signature in &signatures {
        assert!(!logs.contains(signature.as_str()) && !page.contains(signature.as_str()));
    }
}
