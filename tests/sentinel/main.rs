//! The callback store behind Redis Sentinel, on servers of the test's own: a primary,
//! its replica and three sentinels. Under a steady stream of callback creations (the
//! store's API, as the dispatcher's `create` and `powens-relay callback create` use it)
//! and of `/callback` requests to a `powens-relay serve` process, the primary is killed
//! (SIGKILL). Failures may come while the sentinels elect the replica, none after the
//! relay has followed it (within a few seconds of the election), and every callback
//! whose creation was answered with success is still there afterwards. Before that, a
//! creation with the replica frozen is not answered with success (it waits for the
//! replica's acknowledgement, `WAIT`).
//!
//! Slow (the sentinels take some seconds to know each other, the election more), so not
//! part of `cargo test`; `.ci/run` runs it once: `cargo test --all-features --test
//! sentinel`.
#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

#[path = "../common/http.rs"]
mod http_client;
mod servers;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use chrono::{TimeDelta, Utc};
use http_body_util::Full;
use powens_webhooks::relay::StoreError;
use powens_webhooks::relay::testing::Store;
use tokio::time::sleep;

use servers::{MASTER, Servers};

/// Load before the kill.
const BEFORE: Duration = Duration::from_secs(2);
/// Load after the sentinels named the new primary.
const AFTER: Duration = Duration::from_secs(6);
/// The longest the sentinels may take to elect the replica.
const ELECTION: Duration = Duration::from_secs(30);
/// The longest the relay may fail after the election ("within a few seconds").
const FOLLOW: Duration = Duration::from_secs(5);
/// Concurrent browsers.
const BROWSERS: usize = 2;

/// One answer: when it came (since the start), and whether it was a success.
#[derive(Debug, Clone)]
struct Answer {
    what: &'static str,
    at: Duration,
    took: Duration,
    ok: bool,
    detail: String,
}

/// `GET path` on the relay: status and body (`None`: no answer).
async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let request = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    // Bounded: a relay that hangs fails the test rather than stalling it.
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        http_client::exchange(addr, request),
    )
    .await
    .ok()??;
    Some((answer.status, answer.body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_survive_the_loss_of_the_redis_primary_behind_sentinel() {
    let mut servers = tokio::task::spawn_blocking(Servers::start).await.unwrap();
    let url = format!("redis+sentinel://{}/{MASTER}", servers.sentinel_hosts());
    let first_primary = servers.primary.port;
    assert_eq!(servers.primary_port(), Some(first_primary));

    let relay_dir = servers.dir().join("relay");
    let logs = Arc::new(Mutex::new(Vec::new()));
    let (relay, addr) = servers::serve(
        &[
            ("POWENS_RELAY_CALLBACK_STORE", &url),
            ("POWENS_RELAY_DATA_DIR", relay_dir.to_str().unwrap()),
        ],
        logs.clone(),
    );
    servers.others.push(relay);
    // The creations' side: the store, as the dispatcher opens it.
    let store = Store::open(&url).await.unwrap();

    // A creation is answered once a replica has it (WAIT): with the replica frozen,
    // it fails rather than be answered with the primary alone having it.
    let frozen = "sentinel-frozen";
    let expires_at = Utc::now() + TimeDelta::minutes(10);
    servers.replica.signal("STOP");
    let result = store.put_callback(frozen, expires_at, None, false).await;
    servers.replica.signal("CONT");
    assert!(
        matches!(
            result,
            Err(StoreError::NotReplicated {
                wanted: 1,
                acknowledged: 0
            })
        ),
        "{result:?}"
    );
    store
        .put_callback(frozen, expires_at, None, false)
        .await
        .unwrap();

    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let created: Arc<Mutex<Vec<String>>> = Arc::default();
    let answers: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let record = move |what, sent: Instant, ok, detail: String| Answer {
        what,
        at: start.elapsed(),
        took: sent.elapsed(),
        ok,
        detail,
    };

    let creator = tokio::spawn({
        let (stop, created, answers, store) = (
            stop.clone(),
            created.clone(),
            answers.clone(),
            store.clone(),
        );
        async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let state = format!("sentinel-{n}");
                let expires_at = Utc::now() + TimeDelta::minutes(10);
                let sent = Instant::now();
                let result = store.put_callback(&state, expires_at, None, false).await;
                let answer = record("create", sent, result.is_ok(), format!("{result:?}"));
                answers.lock().unwrap().push(answer);
                if result.is_ok() {
                    created.lock().unwrap().push(state);
                }
                sleep(Duration::from_millis(10)).await;
            }
        }
    });
    let browsers: Vec<_> = (0..BROWSERS)
        .map(|_| {
            let (stop, created, answers) = (stop.clone(), created.clone(), answers.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let state = created.lock().unwrap().last().cloned();
                    if let Some(state) = state {
                        let sent = Instant::now();
                        let answer = get(addr, &format!("/callback?state={state}")).await;
                        let ok = answer.as_ref().is_some_and(|(status, _)| *status == 204);
                        answers.lock().unwrap().push(record(
                            "callback",
                            sent,
                            ok,
                            format!("{answer:?}"),
                        ));
                    }
                    sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    let probe = tokio::spawn({
        let (stop, answers) = (stop.clone(), answers.clone());
        async move {
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let answer = get(addr, "/readyz").await;
                let ok = answer.as_ref().is_some_and(|(status, _)| *status == 200);
                answers
                    .lock()
                    .unwrap()
                    .push(record("readyz", sent, ok, format!("{answer:?}")));
                sleep(Duration::from_millis(50)).await;
            }
        }
    });

    sleep(BEFORE).await;
    servers.primary.kill();
    let killed_at = start.elapsed();
    let elected_at = {
        let deadline = Instant::now() + ELECTION;
        loop {
            let named = tokio::task::block_in_place(|| servers.primary_port());
            if named.is_some_and(|p| p != first_primary) {
                break start.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "the sentinels did not elect a new primary within {ELECTION:?}"
            );
            sleep(Duration::from_millis(50)).await;
        }
    };
    let new_primary = servers.primary_port().unwrap();
    assert_eq!(new_primary, servers.replica.port, "the replica was elected");
    sleep(AFTER).await;
    stop.store(true, Ordering::Relaxed);
    creator.await.unwrap();
    for browser in browsers {
        browser.await.unwrap();
    }
    probe.await.unwrap();
    let (ready_status, ready_body) = get(addr, "/readyz").await.unwrap();

    // Every creation answered with success is there, through the new primary.
    let created = created.lock().unwrap().clone();
    let mut missing = Vec::new();
    for state in &created {
        let found = store.has_callback(state).await.unwrap();
        if !found {
            missing.push(state.clone());
        }
    }

    let answers = answers.lock().unwrap().clone();
    let of = |what| answers.iter().filter(move |a| a.what == what);
    let failed = |what| of(what).filter(|a| !a.ok).count();
    let last_failure = answers
        .iter()
        .filter(|a| !a.ok && a.what != "readyz")
        .map(|a| a.at)
        .max();
    let ms = |d: Duration| d.as_millis();
    let slowest = |what| of(what).map(|a| a.took).max().unwrap_or_default();
    let loaded = answers.iter().map(|a| a.at).max().unwrap_or_default();
    let per_second = |what| of(what).count() as f64 / loaded.as_secs_f64();
    // The relay's own account of when it had Redis again: /readyz.
    let last_unready = of("readyz").filter(|a| !a.ok).map(|a| a.at).max();
    let first_unready = of("readyz").filter(|a| !a.ok).map(|a| a.at).min();
    let ready_again = last_unready.and_then(|last| {
        of("readyz")
            .filter(|a| a.ok && a.at > last)
            .map(|a| a.at)
            .min()
    });
    eprintln!(
        "sentinel: primary :{first_primary} killed at {} ms, the sentinels named :{new_primary} \
         at {} ms ({} ms later), the relay's /readyz 503 from {} ms, 200 again at {} ms; {:.0} creations/s \
         and {:.0} /callback/s: creations {} ({} failed, slowest {} ms), /callback {} ({} \
         failed, slowest {} ms), /readyz polls {} ({} not 200); last failure: {}; {} \
         created, {} missing",
        ms(killed_at),
        ms(elected_at),
        ms(elected_at - killed_at),
        first_unready.map_or(0, ms),
        ready_again.map_or(0, ms),
        per_second("create"),
        per_second("callback"),
        of("create").count(),
        failed("create"),
        ms(slowest("create")),
        of("callback").count(),
        failed("callback"),
        ms(slowest("callback")),
        of("readyz").count(),
        failed("readyz"),
        last_failure.map_or("none".to_owned(), |t| format!("at {} ms", ms(t))),
        created.len(),
        missing.len(),
    );
    for a in answers.iter().filter(|a| !a.ok && a.what != "readyz") {
        eprintln!("  {:>6} ms {:<8} {}", ms(a.at), a.what, a.detail);
    }
    eprintln!("the relay's log, the store's lines:");
    for line in logs
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("callback store"))
    {
        eprintln!("  {line}");
    }

    assert!(
        missing.is_empty(),
        "{} callbacks created with success are gone after the fail-over: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        answers.iter().filter(|a| !a.ok).all(|a| a.at >= killed_at),
        "failures before the primary was killed"
    );
    assert!(
        last_failure.is_none_or(|t| t <= elected_at + FOLLOW),
        "failures {:?} after the election (at most {FOLLOW:?})",
        last_failure.map(|t| t - elected_at)
    );
    for what in ["create", "callback"] {
        let after = of(what)
            .filter(|a| a.ok && a.at > elected_at + FOLLOW)
            .count();
        assert!(
            after >= 20,
            "{what}: only {after} successes after the relay followed"
        );
    }
    assert!(
        ready_again.is_some_and(|t| t <= elected_at + FOLLOW),
        "the relay was not ready again within {FOLLOW:?} of the election: {:?}",
        ready_again.map(|t| t.saturating_sub(elected_at))
    );
    assert!(
        failed("readyz") > 0,
        "/readyz said ready throughout, though the relay had no Redis for a while"
    );
    assert_eq!(ready_status, 200, "{ready_body}");
    drop(servers);
}
