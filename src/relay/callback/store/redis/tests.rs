//! The Redis store against a fake Redis, for what the real one cannot be made to do on
//! cue: a connection closed before its answer, a write refused by a demoted primary.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use http::{Request, StatusCode, header};

use super::super::{CallbackStore, Lookup, StoreError, StoreSpec};
use crate::relay::callback::{CallbackRecord, CallbackState};
use crate::relay::testing::MemoryPublisher;
use crate::relay::{Overrides, RelayConfig};

/// The relay's routes, reading callbacks from `store`, each state used once.
fn one_shot_relay(store: &Arc<dyn CallbackStore>) -> axum::Router {
    let config = RelayConfig::from_toml(
        "callback_one_shot = true\n[domains.\"sandbox.biapi.pro\"]\nmode = \"forward\"\n",
        &Overrides::new().with("listen", "127.0.0.1:0"),
    )
    .unwrap();
    crate::relay::app::router(
        &config,
        Arc::new(MemoryPublisher::new()),
        Some(store.clone()),
        None,
    )
}

/// `GET uri` on `app`: its status, and whether it carried `Retry-After`.
async fn get(app: &axum::Router, uri: &str) -> (StatusCode, bool) {
    use tower::ServiceExt;
    let request = Request::get(uri).body(axum::body::Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    (
        response.status(),
        response.headers().contains_key(header::RETRY_AFTER),
    )
}

/// What [`FakeRedis`] does with a data command.
#[derive(Debug, Clone, Copy)]
enum Then {
    /// Answers this (RESP).
    Answer(&'static str),
    /// Closes the connection without answering (after the command ran, or not: the
    /// client cannot tell).
    Close,
}

/// A fake Redis on a port of its own, for what the real one cannot be made to do on
/// cue: it answers a connection's set-up (`CLIENT`, `SELECT`) and `PING`, and the
/// data commands by `script`, in order, recording them.
struct FakeRedis {
    addr: std::net::SocketAddr,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for FakeRedis {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl FakeRedis {
    async fn start(script: &[(&'static str, Then)]) -> Self {
        use std::collections::VecDeque;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let script = Arc::new(std::sync::Mutex::new(
            script.iter().copied().collect::<VecDeque<_>>(),
        ));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let accept = tokio::spawn({
            let seen = seen.clone();
            async move {
                while let Ok((socket, _)) = listener.accept().await {
                    tokio::spawn(serve_fake(socket, script.clone(), seen.clone()));
                }
            }
        });
        Self { addr, seen, accept }
    }

    fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// One connection of [`FakeRedis`].
async fn serve_fake(
    socket: tokio::net::TcpStream,
    script: Arc<std::sync::Mutex<std::collections::VecDeque<(&'static str, Then)>>>,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    loop {
        // A command: *N\r\n then N times $len\r\n<bytes>\r\n.
        let mut line = String::new();
        if read.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let count: usize = line.trim().trim_start_matches('*').parse().unwrap();
        let mut words = Vec::new();
        for _ in 0..count {
            line.clear();
            read.read_line(&mut line).await.unwrap();
            let len: usize = line.trim().trim_start_matches('$').parse().unwrap();
            let mut word = vec![0; len + 2];
            read.read_exact(&mut word).await.unwrap();
            word.truncate(len);
            words.push(String::from_utf8(word).unwrap());
        }
        let name = words[0].to_ascii_uppercase();
        let answer = match name.as_str() {
            "CLIENT" | "SELECT" => "+OK\r\n",
            "PING" => "+PONG\r\n",
            _ => {
                seen.lock().unwrap().push(name.clone());
                let next = script.lock().unwrap().pop_front();
                match next {
                    Some((expected, Then::Answer(answer))) if expected == name => answer,
                    Some((expected, Then::Close)) if expected == name => return,
                    other => panic!("the fake Redis got {words:?}, its script says {other:?}"),
                }
            }
        };
        if write.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// `CallbackRecord`'s JSON as RESP, for the fake's answers.
const RECORD: &str = "$91\r\n{\"expires_at\":\"2999-01-01T00:00:00.000000\",\"final_redirect_url\":null,\"with_fragment\":false}\r\n";

async fn fake_store(fake: &FakeRedis) -> Arc<dyn CallbackStore> {
    let spec = StoreSpec::parse(&fake.url(), std::path::Path::new("unused")).unwrap();
    spec.open().await.unwrap()
}

/// A one-shot state's take whose answer is lost with the connection: sent again, which
/// cannot take it twice. Found then: it was not taken before, and is now, once. Not
/// found: the lost take probably took it, which nobody can tell, so the request fails
/// (503) rather than saying `Unknown state`.
#[tokio::test]
async fn a_take_whose_answer_was_lost_is_sent_again_and_never_misread_as_unknown() {
    let state = CallbackState::parse("lost-take").unwrap();
    let take = Lookup::take(Utc::now());

    let fake = FakeRedis::start(&[("GETDEL", Then::Close), ("GETDEL", Then::Answer(RECORD))]).await;
    let store = fake_store(&fake).await;
    let record = store.read(&state, take).await.unwrap();
    assert!(record.is_some(), "taken on the second try");
    assert_eq!(fake.seen(), ["GETDEL", "GETDEL"]);

    let fake =
        FakeRedis::start(&[("GETDEL", Then::Close), ("GETDEL", Then::Answer("$-1\r\n"))]).await;
    let store = fake_store(&fake).await;
    let error = store.read(&state, take).await.unwrap_err();
    assert!(matches!(error, StoreError::TakeUncertain(_)), "{error:?}");
    assert_eq!(fake.seen(), ["GETDEL", "GETDEL"]);
    // Through the route: a 503 with Retry-After, not a 400.
    let fake = FakeRedis::start(&[
        ("GET", Then::Answer(RECORD)),
        ("GETDEL", Then::Close),
        ("GETDEL", Then::Answer("$-1\r\n")),
    ])
    .await;
    let store = fake_store(&fake).await;
    let (status, retry_after) = get(&one_shot_relay(&store), "/callback?state=lost-take").await;
    assert_eq!(
        (status, retry_after),
        (StatusCode::SERVICE_UNAVAILABLE, true)
    );

    // A take that found nothing, its answer received: unknown, as ever.
    let fake = FakeRedis::start(&[("GETDEL", Then::Answer("$-1\r\n"))]).await;
    let store = fake_store(&fake).await;
    assert_eq!(store.read(&state, take).await.unwrap(), None);
}

/// Commands that are safe to repeat are repeated: a read whose connection died, a write
/// a demoted primary refused (`READONLY`, after a fail-over).
#[tokio::test]
async fn reads_and_writes_are_sent_again_on_a_new_connection() {
    let state = CallbackState::parse("again").unwrap();
    let fake = FakeRedis::start(&[
        ("GET", Then::Close),
        ("GET", Then::Answer(RECORD)),
        (
            "SET",
            Then::Answer("-READONLY You can't write against a read only replica.\r\n"),
        ),
        ("SET", Then::Answer("+OK\r\n")),
    ])
    .await;
    let store = fake_store(&fake).await;
    let read = store.read(&state, Lookup::get(Utc::now())).await.unwrap();
    assert!(read.is_some());
    let record = CallbackRecord::new(Utc::now() + TimeDelta::minutes(5), None, false);
    store.put(&state, &record).await.unwrap();
    assert_eq!(fake.seen(), ["GET", "GET", "SET", "SET"]);
}
