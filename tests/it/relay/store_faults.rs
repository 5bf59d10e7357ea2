//! The Redis callback store under faults: the relay's connection to the shared Redis
//! goes through the fault proxy, and is cut and healed. Database 9 and states of the
//! test's own, deleted at the end.
//!
//! `/callback` goes through the relay's routes (`oneshot`, an in-memory publisher), so
//! that a store failure shows as the browser would see it: a 503.

use std::time::Duration;

use axum::body::Body;
use chrono::{TimeDelta, Utc};
use http::{Request, StatusCode, header};
use powens_webhooks::relay::testing::{MemoryPublisher, Store, router};
use redis::AsyncCommands;
use tokio::time::{Instant, sleep};

use super::proxy::{Fault, FaultProxy};
use super::{config, redis_url, unique};

/// The shared Redis's database these tests write to.
const DB: u8 = 9;

/// A relay's listener on `store`, each state used once or not.
fn relay(store: &Store, one_shot: bool) -> axum::Router {
    let config = config(&format!(
        "callback_one_shot = {one_shot}\n[domains.\"sandbox.biapi.pro\"]\nmode = \"forward\"\n"
    ));
    router(&config, &MemoryPublisher::new(), Some(store))
}

/// `GET uri` on `app`: the status, whether it carried `Retry-After`, and the body.
async fn get(app: &axum::Router, uri: &str) -> (StatusCode, bool, String) {
    use tower::ServiceExt;
    let request = Request::get(uri).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let retry_after = response.headers().contains_key(header::RETRY_AFTER);
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    (
        status,
        retry_after,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// Polls `/readyz` until it answers `status`; panics after `within`.
async fn await_readyz(app: &axum::Router, status: StatusCode, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let (got, _, body) = get(app, "/readyz").await;
        if got == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still {got} ({body:?}) after {within:?}, waiting for {status}"
        );
        sleep(Duration::from_millis(20)).await;
    }
}

/// The states written, deleted from the shared Redis when dropped (a failing test
/// included).
struct Written(Vec<String>);

impl Written {
    async fn create(&mut self, store: &Store, what: &str) -> String {
        let state = unique(what);
        store
            .put_callback(&state, Utc::now() + TimeDelta::minutes(5), None, false)
            .await
            .unwrap();
        self.0.push(format!("callback_{state}"));
        state
    }
}

impl Drop for Written {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let client = redis::Client::open(format!("{}{DB}", redis_url())).unwrap();
        if let Ok(mut connection) = client.get_connection() {
            let _: Result<(), _> = redis::Commands::del(&mut connection, &self.0);
        }
    }
}

/// The case: the connection cut for 0.3 s and healed, four times, the relay
/// idle meanwhile; then two cuts with a browser arriving during each. Without retries,
/// the first request after each cut (or the one during it) got 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_connection_cut_and_healed_costs_no_callback_a_503() {
    let upstream = redis_url()
        .trim_start_matches("redis://")
        .trim_end_matches('/');
    let proxy = FaultProxy::start(upstream.parse().unwrap()).await;
    let store = Store::open(&proxy.redis_url(DB)).await.unwrap();
    let replayable = relay(&store, false);
    let one_shot = relay(&store, true);
    let mut written = Written(Vec::new());

    let mut answers = Vec::new();
    for cycle in 0..6 {
        let kept = written.create(&store, "kept").await;
        let taken = written.create(&store, "taken").await;
        let kept_uri = format!("/callback?state={kept}");
        let taken_uri = format!("/callback?state={taken}");
        proxy.inject(Fault::Cut);
        // In the last cycles, a browser arrives during the cut: it waits for the
        // connection to come back.
        let during = (cycle >= 4).then(|| {
            let app = replayable.clone();
            let uri = kept_uri.clone();
            tokio::spawn(async move { get(&app, &uri).await })
        });
        sleep(Duration::from_millis(300)).await;
        proxy.heal();
        if let Some(during) = during {
            answers.push((cycle, "during the cut", 204, during.await.unwrap()));
        } else {
            // The case: the relay idle until its connection is back (the
            // readiness probe says when), then the first request.
            await_readyz(&replayable, StatusCode::OK, Duration::from_secs(5)).await;
        }
        let (first, other) = if cycle % 2 == 0 {
            ((&replayable, &kept_uri), (&one_shot, &taken_uri))
        } else {
            ((&one_shot, &taken_uri), (&replayable, &kept_uri))
        };
        answers.push((cycle, "the first after", 204, get(first.0, first.1).await));
        answers.push((cycle, "the next", 204, get(other.0, other.1).await));
        answers.push((cycle, "replayed", 204, get(&replayable, &kept_uri).await));
        let again = get(&one_shot, &taken_uri).await;
        answers.push((cycle, "one-shot, used again", 400, again));
    }
    let unexpected: Vec<_> = answers
        .iter()
        .filter(|(_, _, expected, (status, _, _))| status.as_u16() != *expected)
        .collect();
    assert!(
        unexpected.is_empty(),
        "{} of {} callback answers unexpected across cuts (cycle, request, expected, \
         answer): {unexpected:#?}",
        unexpected.len(),
        answers.len()
    );
}

/// Redis gone for longer than a request may wait: 503 with `Retry-After`, `/readyz`
/// says the store is unavailable; back once Redis is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_gone_for_longer_gives_503_and_readyz_says_so_until_it_is_back() {
    let upstream = redis_url()
        .trim_start_matches("redis://")
        .trim_end_matches('/');
    let proxy = FaultProxy::start(upstream.parse().unwrap()).await;
    let store = Store::open(&proxy.redis_url(DB)).await.unwrap();
    let app = relay(&store, false);
    let mut written = Written(Vec::new());
    let state = written.create(&store, "down").await;
    let uri = format!("/callback?state={state}");
    assert_eq!(get(&app, &uri).await.0, StatusCode::NO_CONTENT);

    proxy.inject(Fault::Cut);
    let body = await_readyz(
        &app,
        StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_secs(5),
    )
    .await;
    assert!(body.contains("callback store"), "{body:?}");
    let started = Instant::now();
    let (status, retry_after, body) = get(&app, &uri).await;
    let waited = started.elapsed();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(retry_after, "503 with Retry-After");
    assert!(
        waited < Duration::from_secs(10),
        "a request waits a bounded time, not {waited:?}"
    );

    proxy.heal();
    await_readyz(&app, StatusCode::OK, Duration::from_secs(5)).await;
    assert_eq!(get(&app, &uri).await.0, StatusCode::NO_CONTENT);
    // Nothing was lost meanwhile.
    let read = store.has_callback(&state).await.unwrap();
    assert!(read);
    // The store's own connection to Redis, and the test's, on the same database.
    let client = redis::Client::open(format!("{}{DB}", redis_url())).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let exists: bool = connection
        .exists(format!("callback_{state}"))
        .await
        .unwrap();
    assert!(exists);
}
