//! Hostile input, over a real socket to the relay's own HTTP server (so that framing,
//! chunking, raw header bytes and time-outs are those of the wire): one row per case,
//! each checked for its status, its one-line reason, and that nothing was published.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use powens_webhooks::relay::testing::{self, MemoryPublisher, signature_date};
use powens_webhooks::{Secret, SignedPrefix, sign};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

use super::{config, gzip, verify_domain};

const SECRET: &str = "s3cr3t";
const PATH: &str = "/powens-webhook/budgea.biapi.pro/USER_SYNCED";
const FORWARD: &str = "/powens-webhook/forward.biapi.pro/USER_SYNCED";
const BODY: &[u8] = br#"{"id_webhook_data": 1}"#;
const LIMIT: usize = 4096;

/// A relay on its real HTTP server: `budgea.biapi.pro` verified, `forward.biapi.pro`
/// forwarded, a 4 KiB body limit, a read time-out of `read_timeout` seconds,
/// publishing to memory.
async fn relay(read_timeout: u64, extra: &str) -> (SocketAddr, MemoryPublisher) {
    let toml = format!(
        "body_limit_bytes = {LIMIT}\nread_timeout_secs = {read_timeout}\n{extra}\n{}\
         [domains.\"forward.biapi.pro\"]\nmode = \"forward\"\n",
        verify_domain("budgea.biapi.pro", SECRET)
    );
    let publisher = MemoryPublisher::new();
    let relay = testing::relay(&config(&toml), &publisher).await.unwrap();
    let addr = relay.local_addr().unwrap();
    tokio::spawn(relay.run(std::future::pending()));
    (addr, publisher)
}

/// How the body is framed on the wire.
#[derive(Clone, Copy)]
enum Framing {
    /// `Content-Length` with the body's length.
    Length,
    /// `Transfer-Encoding: chunked`, in chunks of this size.
    Chunked(usize),
}

/// A request written byte by byte: any header value, any path.
#[derive(Clone)]
struct Raw {
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    framing: Framing,
}

impl Raw {
    /// `POST path` signed as Powens signs it, with `date` as BI-Signature-Date.
    fn signed_with_date(path: &str, body: &[u8], date: &str) -> Self {
        let signature = sign(
            &Secret::new(SECRET).unwrap(),
            &SignedPrefix::new("POST", path, date),
            body,
        )
        .to_base64();
        Self {
            path: path.to_owned(),
            headers: vec![
                ("Content-Type".into(), b"application/json".to_vec()),
                ("BI-Signature-Date".into(), date.as_bytes().to_vec()),
                ("BI-Signature".into(), signature.into_bytes()),
            ],
            body: body.to_vec(),
            framing: Framing::Length,
        }
    }

    fn signed_at(path: &str, body: &[u8], at: DateTime<Utc>) -> Self {
        Self::signed_with_date(path, body, &signature_date(at))
    }

    fn signed(path: &str, body: &[u8]) -> Self {
        Self::signed_at(path, body, Utc::now())
    }

    /// `POST path` with `body` and no HMAC headers.
    fn unsigned(path: &str, body: &[u8]) -> Self {
        Self::signed(path, body)
            .without("BI-Signature")
            .without("BI-Signature-Date")
    }

    /// The `BI-Signature` value.
    fn signature(&self) -> Vec<u8> {
        self.headers
            .iter()
            .find(|(n, _)| n == "BI-Signature")
            .map(|(_, v)| v.clone())
            .expect("signed")
    }

    /// Replaces header `name` (all its values) with `value`.
    fn set(mut self, name: &str, value: &[u8]) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_vec()));
        self
    }

    /// Adds one more `name` header.
    fn add(mut self, name: &str, value: &[u8]) -> Self {
        self.headers.push((name.to_owned(), value.to_vec()));
        self
    }

    /// Removes header `name`.
    fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    fn chunked(mut self, size: usize) -> Self {
        self.framing = Framing::Chunked(size);
        self
    }

    /// The request line and head, ending with the blank line.
    fn head(&self) -> Vec<u8> {
        let mut out = format!(
            "POST {} HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n",
            self.path
        )
        .into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        match self.framing {
            Framing::Length => {
                out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes())
            }
            Framing::Chunked(_) => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    fn wire_body(&self) -> Vec<u8> {
        match self.framing {
            Framing::Length => self.body.clone(),
            Framing::Chunked(size) => {
                let mut out = Vec::new();
                for chunk in self.body.chunks(size) {
                    out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
                out
            }
        }
    }
}

/// A response: status, headers (lower-cased names), body.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Writes `head` then `body` (the server may answer and close before it has read the
/// body: a write error then is expected), reads until the server closes.
async fn exchange(addr: SocketAddr, head: &[u8], body: &[u8]) -> Option<Response> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head).await.ok()?;
    let _ = stream.write_all(body).await;
    read_response(&mut stream).await
}

async fn read_response(stream: &mut TcpStream) -> Option<Response> {
    let mut raw = Vec::new();
    // A reset after the answer (the server closed with unread body bytes) ends it too.
    let _ = timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("the relay neither answered nor closed within 10 s");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = String::from_utf8_lossy(&raw[end + 4..]).into_owned();
    Some(Response {
        status,
        headers,
        body,
    })
}

fn base64_of(len: usize) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .encode(vec![7u8; len])
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_refused_with_a_clear_status_and_nothing_is_published() {
    let oversize = vec![b' '; LIMIT + 1];
    // 2 MiB of spaces: 500 times the limit, compressed below it.
    let bomb = gzip(&vec![b' '; 2 << 20]);
    assert!(
        bomb.len() < LIMIT,
        "the bomb must pass the compressed limit"
    );
    let now = Utc::now();
    let long_domain = format!("/powens-webhook/{}.biapi.pro/USER_SYNCED", "a".repeat(4096));
    let long_event = format!("/powens-webhook/budgea.biapi.pro/{}", "E".repeat(1024));

    let rows: Vec<(&str, Raw, u16, &str)> = vec![
        (
            "oversize body with Content-Length",
            Raw::signed(PATH, &oversize),
            413,
            "exceeds the relay's limit of 4096 bytes",
        ),
        (
            "oversize body without Content-Length, one chunk",
            Raw::signed(PATH, &oversize).chunked(oversize.len()),
            413,
            "exceeds the relay's limit of 4096 bytes",
        ),
        (
            "chunked body over the limit, small chunks",
            Raw::signed(PATH, &oversize).chunked(100),
            413,
            "exceeds the relay's limit of 4096 bytes",
        ),
        (
            "gzip bomb",
            Raw::signed(PATH, &bomb).set("Content-Encoding", b"gzip"),
            413,
            "decompressed body exceeds the relay's limit of 4096 bytes",
        ),
        (
            "corrupt gzip",
            Raw::signed(PATH, BODY).set("Content-Encoding", b"gzip"),
            400,
            "not valid gzip",
        ),
        (
            "unknown encoding",
            Raw::signed(PATH, BODY).set("Content-Encoding", b"br"),
            415,
            "only gzip (or none) is accepted",
        ),
        (
            "two encodings",
            Raw::signed(PATH, BODY).set("Content-Encoding", b"gzip, gzip"),
            415,
            "only gzip (or none) is accepted",
        ),
        (
            "invalid base64 signature",
            Raw::signed(PATH, BODY).set("BI-Signature", b"not base64!"),
            400,
            "not valid base64",
        ),
        (
            "31-byte signature",
            Raw::signed(PATH, BODY).set("BI-Signature", &base64_of(31)),
            400,
            "decodes to 31 bytes",
        ),
        (
            "33-byte signature",
            Raw::signed(PATH, BODY).set("BI-Signature", &base64_of(33)),
            400,
            "decodes to 33 bytes",
        ),
        (
            "date without timezone",
            Raw::signed_with_date(PATH, BODY, "2026-11-23T10:00:00.123456"),
            400,
            "no timezone",
        ),
        (
            "date 10 years ahead",
            Raw::signed_at(PATH, BODY, now + chrono::Duration::days(3653)),
            401,
            "in the future",
        ),
        (
            "year 9999",
            Raw::signed_with_date(PATH, BODY, "9999-12-31T23:59:59.999999Z"),
            401,
            "in the future",
        ),
        (
            "year 0",
            Raw::signed_with_date(PATH, BODY, "0000-01-01T00:00:00Z"),
            401,
            "s old",
        ),
        (
            "stale date",
            Raw::signed_at(PATH, BODY, now - chrono::Duration::minutes(16)),
            401,
            "s old",
        ),
        (
            "duplicated BI-Signature",
            {
                let good = Raw::signed(PATH, BODY);
                let signature = good.signature();
                good.add("BI-Signature", &signature)
            },
            400,
            "BI-Signature header appears more than once",
        ),
        (
            "non-ASCII header bytes",
            Raw::signed(PATH, BODY).set("BI-Signature-Date", "2026-11-23T10:00:00Zé".as_bytes()),
            400,
            "BI-Signature-Date header holds bytes that are not visible ASCII",
        ),
        (
            "wrong secret",
            Raw::signed(PATH, BODY).set("BI-Signature", &Raw::signed(PATH, b"{}").signature()),
            401,
            "does not match any key for budgea.biapi.pro",
        ),
        (
            "Authorization not Bearer",
            Raw::unsigned(FORWARD, BODY).set("Authorization", b"Basic dXNlcjpwYXNz"),
            400,
            "not a Bearer token",
        ),
        (
            "empty bearer",
            Raw::unsigned(FORWARD, BODY).set("Authorization", b"Bearer "),
            400,
            "empty Bearer token",
        ),
        (
            "bearer only, on a verify domain",
            Raw::unsigned(PATH, BODY).set("Authorization", b"Bearer abc.def"),
            401,
            "required for this domain",
        ),
        (
            "no authentication at all",
            Raw::unsigned(PATH, BODY),
            401,
            "neither BI-Signature",
        ),
        (
            "domain not ending in .biapi.pro",
            Raw::signed("/powens-webhook/example.com/USER_SYNCED", BODY),
            400,
            "does not end in .biapi.pro",
        ),
        (
            "domain with ..",
            Raw::signed("/powens-webhook/budgea..biapi.pro/USER_SYNCED", BODY),
            400,
            "invalid label",
        ),
        (
            "domain with / (encoded)",
            Raw::signed("/powens-webhook/budgea%2F.biapi.pro/USER_SYNCED", BODY),
            400,
            "invalid label",
        ),
        (
            "domain with / (a path segment more)",
            Raw::signed("/powens-webhook/x/budgea.biapi.pro/USER_SYNCED", BODY),
            404,
            "not found",
        ),
        (
            "domain 4 KiB long",
            Raw::signed(&long_domain, BODY),
            400,
            "more than the 253 a DNS name allows",
        ),
        (
            "unconfigured domain",
            Raw::signed("/powens-webhook/other.biapi.pro/USER_SYNCED", BODY),
            404,
            "no webhook is configured for other.biapi.pro",
        ),
        (
            "event with spaces",
            Raw::signed("/powens-webhook/budgea.biapi.pro/USER%20SYNCED", BODY),
            400,
            "event name may only hold",
        ),
        (
            "event 1 KiB long",
            Raw::signed(&long_event, BODY),
            400,
            "more than the 64 allowed",
        ),
        (
            "non-UTF-8 body",
            Raw::signed(PATH, b"{\"a\": \"\xff\xfe\"}"),
            400,
            "not UTF-8",
        ),
        ("empty body", Raw::signed(PATH, b""), 400, "body is empty"),
        (
            "bad Content-Length",
            Raw::signed(PATH, BODY).set("Content-Length", b"12x"),
            400,
            "",
        ),
    ];
    let (addr, publisher) = relay(1, "").await;
    for (name, request, status, reason) in rows {
        let response = exchange(addr, &request.head(), &request.wire_body())
            .await
            .unwrap_or_else(|| panic!("{name}: no response"));
        assert_eq!(response.status, status, "{name}: {response:?}");
        assert!(response.body.contains(reason), "{name}: {response:?}");
        if !reason.is_empty() {
            assert!(
                response.body.ends_with('\n') && response.body.lines().count() == 1,
                "{name}: {response:?}"
            );
            assert_eq!(
                response.header("content-type"),
                Some("text/plain; charset=utf-8"),
                "{name}"
            );
        }
        assert!(!response.body.contains(SECRET), "{name}");
        assert_eq!(publisher.published(), [], "{name}: something was published");
    }

    // And the relay still works: the same request, well-formed, is published.
    let good = Raw::signed(PATH, BODY);
    let response = exchange(addr, &good.head(), &good.wire_body())
        .await
        .unwrap();
    assert_eq!(response.status, 204, "{response:?}");
    assert_eq!(publisher.published().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_or_oversize_requests_are_cut_off_by_the_server() {
    let (addr, publisher) = relay(1, "max_header_bytes = 2048").await;

    // A head larger than max_header_bytes: 431 from the HTTP layer.
    let big = Raw::signed(PATH, BODY).set("X-Padding", &vec![b'p'; 4096]);
    let response = exchange(addr, &big.head(), &big.wire_body()).await.unwrap();
    assert_eq!(response.status, 431, "{response:?}");

    // A body that stops coming (slow loris on the body): 408 after read_timeout.
    let slow = Raw::signed(PATH, BODY);
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(&slow.head()).await.unwrap();
    stream.write_all(&slow.body[..5]).await.unwrap();
    let started = Instant::now();
    let response = read_response(&mut stream).await.unwrap();
    assert_eq!(response.status, 408, "{response:?}");
    assert!(
        response.body.contains("did not arrive within 1 s"),
        "{response:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // A head that stops coming (slow loris on the headers): the connection is closed
    // after read_timeout, with no request handled.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /powens-webhook/budgea.biapi.pro/USER_SYNCED HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let closed = timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection was kept open");
    assert!(started.elapsed() >= Duration::from_millis(900));
    // An idle keep-alive connection is closed the same way.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let closed = timeout(Duration::from_secs(5), idle.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "an idle connection was kept open");

    assert_eq!(publisher.published(), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_in_flight_cap_a_webhook_gets_503_with_retry_after() {
    let (addr, publisher) = relay(10, "max_in_flight = 1").await;
    // The first webhook holds the only slot: its body is still on its way.
    let first = Raw::signed(PATH, BODY);
    let mut holder = TcpStream::connect(addr).await.unwrap();
    holder.write_all(&first.head()).await.unwrap();
    holder.write_all(&first.body[..5]).await.unwrap();
    sleep(Duration::from_millis(200)).await;

    let second = Raw::signed(PATH, br#"{"id_webhook_data": 2}"#);
    let response = exchange(addr, &second.head(), &second.wire_body())
        .await
        .unwrap();
    assert_eq!(response.status, 503, "{response:?}");
    assert_eq!(response.header("retry-after"), Some("1"));
    assert!(
        response
            .body
            .contains("too many webhooks in flight (max_in_flight = 1)"),
        "{response:?}"
    );

    // The first completes and is published; the slot is free again.
    holder.write_all(&first.body[5..]).await.unwrap();
    let response = read_response(&mut holder).await.unwrap();
    assert_eq!(response.status, 204, "{response:?}");
    let response = exchange(addr, &second.head(), &second.wire_body())
        .await
        .unwrap();
    assert_eq!(response.status, 204, "{response:?}");
    assert_eq!(publisher.published().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_max_connections_a_new_connection_waits_for_a_free_one() {
    let (addr, publisher) = relay(1, "max_connections = 1").await;
    // An idle connection takes the only slot, until the idle time-out (1 s) closes it.
    let idle = TcpStream::connect(addr).await.unwrap();
    sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let request = Raw::signed(PATH, BODY);
    let response = exchange(addr, &request.head(), &request.wire_body())
        .await
        .unwrap();
    assert_eq!(response.status, 204, "{response:?}");
    // Served only once the idle one was closed: not before its time-out.
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "served after {:?}, while the only slot was taken",
        started.elapsed()
    );
    assert_eq!(publisher.published().len(), 1);
    drop(idle);
}

/// The listener's routes, over the same socket: hostile queries, states, `full_url`s
/// and CIBA notifications are refused with their reason, and nothing is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_callbacks_are_refused_and_nothing_is_published() {
    let public = "public_url = \"https://listener.example.org/\"\nmax_header_bytes = 131072";
    let (addr, publisher) = relay(1, public).await;
    let get =
        |path: String| format!("GET {path} HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n");
    let ciba = |authorization: &str, body: &str| {
        format!(
            "POST /openid-ciba-callback HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\
             {authorization}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let many = "a=1&".repeat(10_000);
    let rows: Vec<(&str, String, u16, &str)> = vec![
        (
            "10 000 parameters",
            get(format!("/callback?{many}state=s")),
            400,
            "more than 256 parameters",
        ),
        (
            "a 200 KiB query",
            get(format!("/callback?state={}", "x".repeat(200 << 10))),
            431,
            "",
        ),
        (
            "invalid UTF-8 escapes",
            get("/callback?state=%C3%28".into()),
            400,
            "not UTF-8",
        ),
        (
            "a state with a newline",
            get("/callback?state=a%0Ab".into()),
            400,
            "control character",
        ),
        (
            "a state with a NUL",
            get("/errback&state=a%00b".into()),
            400,
            "control character",
        ),
        (
            "an empty state",
            get("/callback?state=".into()),
            400,
            "Empty state",
        ),
        (
            "an unknown state",
            get("/callback?state=nobody".into()),
            400,
            "Unknown state",
        ),
        (
            "full_url to another host",
            get(
                "/raw-callback?full_url=https%3A%2F%2Fevil.example.org%2Fcallback%3Fstate%3Dx"
                    .into(),
            ),
            400,
            "does not point at this listener",
        ),
        (
            "full_url not a URL",
            get("/raw-callback?full_url=%ff%fe".into()),
            400,
            "not UTF-8",
        ),
        (
            "CIBA without a token",
            ciba("", r#"{"auth_req_id":"r"}"#),
            401,
            "Invalid authentication",
        ),
        (
            "CIBA with a malformed token",
            ciba("Authorization: Bearer a b\r\n", r#"{"auth_req_id":"r"}"#),
            401,
            "Invalid authentication",
        ),
        (
            "CIBA, not JSON",
            ciba("Authorization: Bearer t\r\n", "auth_req_id=r"),
            400,
            "Invalid payload",
        ),
        (
            "CIBA, 1 MiB body",
            ciba("Authorization: Bearer t\r\n", &"x".repeat(1 << 20)),
            413,
            "too large",
        ),
    ];
    for (name, request, status, reason) in rows {
        let response = exchange(addr, request.as_bytes(), b"")
            .await
            .unwrap_or_else(|| panic!("{name}: no response"));
        assert_eq!(response.status, status, "{name}: {response:?}");
        assert!(response.body.contains(reason), "{name}: {response:?}");
        if status == 401 {
            assert_eq!(
                response.header("www-authenticate"),
                Some("Bearer"),
                "{name}"
            );
        }
        assert_eq!(publisher.published(), [], "{name}: something was published");
    }
}
