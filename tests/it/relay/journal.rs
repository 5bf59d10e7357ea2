//! The journal against the real RabbitMQ through the fault proxy: a broker outage under
//! load costs no webhook (fallback and always), order per domain holds, unroutable
//! webhooks are held until a queue is bound, duplicates are published once, a full
//! journal answers 503 and loses nothing, one relay per journal.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use http::Request;
use http_body_util::Full;
use powens_webhooks::relay::consume::{Incoming, Received, TealConsumer};
use powens_webhooks::relay::{AmqpUrl, Relay, RelayConfig};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

use super::e2e::consumer;
use super::proxy::{Fault, FaultProxy};
use super::{config, delete_exchanges, signed, try_post, unique, verify_domain};

const SECRET: &str = "journal-s3cr3t";
const DOMAINS: [&str; 2] = ["budgea.biapi.pro", "other.biapi.pro"];

/// A directory of the test's own (one relay per journal), removed with the value.
pub(super) struct Dir(pub(super) PathBuf);

impl Dir {
    pub(super) fn new(what: &str) -> Self {
        let path = std::env::temp_dir().join(unique(what));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The relay of `toml` (plus the domains, `prefix` and `dir`), publishing to `broker`.
async fn start(
    toml: &str,
    prefix: &str,
    dir: &Dir,
    broker: AmqpUrl,
) -> (SocketAddr, JoinHandle<()>) {
    let config = relay_config(toml, prefix, dir).with_amqp_url(broker);
    let relay = Relay::start(&config).await.unwrap();
    let addr = relay.local_addr().unwrap();
    (addr, tokio::spawn(relay.run(std::future::pending())))
}

fn relay_config(toml: &str, prefix: &str, dir: &Dir) -> RelayConfig {
    config(&format!(
        "data_dir = {:?}\nexchange_prefix = \"{prefix}\"\n{toml}\n{}{}",
        dir.0,
        verify_domain(DOMAINS[0], SECRET),
        verify_domain(DOMAINS[1], SECRET),
    ))
}

fn webhook(domain: &str, id: u64) -> Request<Full<Bytes>> {
    let path = format!("/powens-webhook/{domain}/CONNECTION_SYNCED");
    signed(
        &path,
        format!("{{\"id_webhook_data\": {id}}}").as_bytes(),
        SECRET,
    )
}

/// GET `path` on the relay: status and body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let request = Request::get(path).body(Full::new(Bytes::new())).unwrap();
    try_post(addr, request).await.unwrap_or((0, String::new()))
}

/// A metric's value in `/metrics`.
async fn metric(addr: SocketAddr, name: &str) -> Option<f64> {
    let (_, text) = get(addr, "/metrics").await;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Polls `name` until it is `value`; panics after `within`.
async fn await_metric(addr: SocketAddr, name: &str, value: f64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = metric(addr, name).await;
        if got == Some(value) {
            return;
        }
        assert!(Instant::now() < deadline, "{name} is {got:?}, not {value}");
        sleep(Duration::from_millis(100)).await;
    }
}

/// A webhook consumed: its domain, `id_webhook_data` and AMQP `message_id`.
type Consumed = (String, u64, Option<String>);

fn consumed(received: &Received) -> Consumed {
    let Incoming::Webhook(message) = &received.message else {
        panic!("not a webhook")
    };
    (
        message.domain.to_string(),
        message.id_webhook_data().unwrap(),
        received.message_id.clone(),
    )
}

/// Receives until every `(domain, id)` of `wanted` came (duplicates kept, in order);
/// panics naming the missing ones after `within` without a message.
async fn receive_all(
    consumer: &mut TealConsumer,
    wanted: &BTreeSet<(String, u64)>,
    within: Duration,
) -> Vec<Consumed> {
    let mut seen = BTreeSet::new();
    let mut all = Vec::new();
    while !wanted.is_subset(&seen) {
        let Ok(next) = timeout(within, consumer.next()).await else {
            let missing: Vec<_> = wanted.difference(&seen).take(10).collect();
            panic!(
                "{} not consumed, e.g. {missing:?}",
                wanted.len() - seen.len().min(wanted.len())
            );
        };
        let received = next.unwrap();
        received.ack().await.unwrap();
        let one = consumed(&received);
        seen.insert((one.0.clone(), one.1));
        all.push(one);
    }
    all
}

/// Each domain's first deliveries came in the order sent (ids increase), and a
/// duplicate carries the same `message_id`.
fn assert_in_order_per_domain(all: &[Consumed]) {
    let mut last: BTreeMap<&str, u64> = BTreeMap::new();
    let mut first: BTreeSet<(&str, u64)> = BTreeSet::new();
    for (domain, id, message_id) in all {
        assert_eq!(message_id.as_deref(), Some(id.to_string().as_str()));
        if !first.insert((domain, *id)) {
            continue; // a duplicate (a confirm lost with the connection)
        }
        if let Some(previous) = last.insert(domain, *id) {
            assert!(previous < *id, "{domain}: {id} after {previous}");
        }
    }
}

/// A 30 s broker outage under load: no answer but 204, everything consumed in order
/// per domain once the broker is back, the journal empty again.
async fn outage_costs_nothing(mode: &str) {
    let prefix = unique(&format!("journal_outage_{mode}"));
    let dir = Dir::new("journal-outage");
    let mut consumer = consumer(&prefix, &DOMAINS).await;
    let proxy = FaultProxy::start("127.0.0.1:5672".parse().unwrap()).await;
    let toml = format!("journal = \"{mode}\"\npublish_timeout_secs = 2");
    let (addr, server) = start(&toml, &prefix, &dir, proxy.amqp_url()).await;

    let answers: Arc<Mutex<Vec<(String, u64, u16)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let senders: Vec<_> = DOMAINS
        .iter()
        .map(|domain| {
            let (answers, stop) = (answers.clone(), stop.clone());
            tokio::spawn(async move {
                for id in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    let status = try_post(addr, webhook(domain, id))
                        .await
                        .map_or(0, |(status, _)| status);
                    answers
                        .lock()
                        .unwrap()
                        .push((domain.to_string(), id, status));
                    sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();
    sleep(Duration::from_secs(2)).await;
    proxy.inject(Fault::Cut);
    sleep(Duration::from_secs(3)).await;
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!(
        status, 200,
        "ready while the journal takes webhooks: {body}"
    );
    assert!(body.contains("kept in the journal"), "{body}");
    sleep(Duration::from_secs(27)).await;
    proxy.heal();
    sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for sender in senders {
        sender.await.unwrap();
    }

    let answers = std::mem::take(&mut *answers.lock().unwrap());
    let refused: Vec<_> = answers.iter().filter(|a| a.2 != 204).collect();
    assert!(
        refused.is_empty(),
        "{mode}: answers other than 204: {refused:?}"
    );
    let wanted: BTreeSet<_> = answers.iter().map(|(d, id, _)| (d.clone(), *id)).collect();
    let all = receive_all(&mut consumer, &wanted, Duration::from_secs(30)).await;
    assert_in_order_per_domain(&all);
    await_metric(
        addr,
        "powens_relay_journal_pending",
        0.0,
        Duration::from_secs(10),
    )
    .await;
    eprintln!(
        "{mode}: {} webhooks, all 204, {} deliveries, in order per domain",
        answers.len(),
        all.len()
    );
    server.abort();
    consumer.close().await;
    delete_exchanges(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_in_fallback_costs_no_webhook_and_order_holds() {
    outage_costs_nothing("fallback").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_in_always_costs_no_webhook_and_order_holds() {
    outage_costs_nothing("always").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unroutable_webhook_is_held_until_a_queue_is_bound() {
    let prefix = unique("journal_hold");
    let dir = Dir::new("journal-hold");
    let (addr, server) = start("unroutable = \"hold\"", &prefix, &dir, super::broker()).await;
    // No queue is bound for the domain yet.
    let (status, body) = super::e2e::post(addr, webhook(DOMAINS[0], 41)).await;
    assert_eq!(status, 204, "{body}");
    await_metric(
        addr,
        "powens_relay_journal_held",
        1.0,
        Duration::from_secs(10),
    )
    .await;
    let mut consumer = consumer(&prefix, &DOMAINS[..1]).await;
    let wanted = BTreeSet::from([(DOMAINS[0].to_owned(), 41)]);
    // Tried again 1 s, then 2 s, 4 s… after: within the backoff's first steps.
    let all = receive_all(&mut consumer, &wanted, Duration::from_secs(20)).await;
    assert_eq!(all.len(), 1);
    server.abort();
    consumer.close().await;
    delete_exchanges(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_webhook_twice_is_published_once() {
    let prefix = unique("journal_dedup");
    let dir = Dir::new("journal-dedup");
    let mut consumer = consumer(&prefix, &DOMAINS[..1]).await;
    let (addr, server) = start("", &prefix, &dir, super::broker()).await;
    for _ in 0..2 {
        let (status, body) = super::e2e::post(addr, webhook(DOMAINS[0], 7)).await;
        assert_eq!(status, 204, "{body}");
    }
    let (status, _) = super::e2e::post(addr, webhook(DOMAINS[0], 8)).await;
    assert_eq!(status, 204);
    let wanted = BTreeSet::from([(DOMAINS[0].to_owned(), 7), (DOMAINS[0].to_owned(), 8)]);
    let all = receive_all(&mut consumer, &wanted, Duration::from_secs(10)).await;
    let ids: Vec<_> = all.iter().map(|c| c.1).collect();
    assert_eq!(ids, [7, 8], "7 once, then 8");
    assert_eq!(
        metric(addr, "powens_relay_duplicates_total").await,
        Some(1.0)
    );
    server.abort();
    consumer.close().await;
    delete_exchanges(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_journal_answers_503_loses_nothing_and_takes_webhooks_again_once_drained() {
    let prefix = unique("journal_full");
    let dir = Dir::new("journal-full");
    let mut consumer = consumer(&prefix, &DOMAINS[..1]).await;
    let proxy = FaultProxy::start("127.0.0.1:5672".parse().unwrap()).await;
    // A webhook's message is about 400 bytes: room for a few.
    let toml = "journal_max_bytes = 2000\npublish_timeout_secs = 1";
    let (addr, server) = start(toml, &prefix, &dir, proxy.amqp_url()).await;
    proxy.inject(Fault::Cut);
    let mut kept = BTreeSet::new();
    let mut full = None;
    for id in 0..50 {
        let (status, body) = super::e2e::post(addr, webhook(DOMAINS[0], id)).await;
        match status {
            204 => {
                kept.insert((DOMAINS[0].to_owned(), id));
            }
            503 => {
                assert!(body.contains("journal is full"), "{body}");
                full = Some(id);
                break;
            }
            other => panic!("{other}: {body}"),
        }
    }
    let full = full.expect("the journal filled up");
    assert!(!kept.is_empty(), "some fitted before it was full");
    proxy.heal();
    let all = receive_all(&mut consumer, &kept, Duration::from_secs(20)).await;
    assert!(all.iter().all(|c| c.1 < full), "only what was answered 204");
    await_metric(
        addr,
        "powens_relay_journal_pending",
        0.0,
        Duration::from_secs(10),
    )
    .await;
    let (status, body) = super::e2e::post(addr, webhook(DOMAINS[0], full)).await;
    assert_eq!(status, 204, "taken again once drained: {body}");
    server.abort();
    consumer.close().await;
    delete_exchanges(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_relay_per_journal_and_a_damaged_journal_stops_the_relay() {
    let prefix = unique("journal_lock");
    let dir = Dir::new("journal-lock");
    let (_, server) = start("", &prefix, &dir, super::broker()).await;
    let second = relay_config("", &prefix, &dir).with_amqp_url(super::broker());
    let error = Relay::start(&second).await.unwrap_err().to_string();
    assert!(
        error.contains("is used by process") && error.contains(&std::process::id().to_string()),
        "{error}"
    );
    server.abort();

    let damaged = Dir::new("journal-damaged");
    std::fs::write(
        damaged.0.join("journal.sqlite3"),
        b"not a database, not at all",
    )
    .unwrap();
    let config = relay_config("", &prefix, &damaged).with_amqp_url(super::broker());
    let error = Relay::start(&config).await.unwrap_err().to_string();
    assert!(
        error.contains("journal.sqlite3") && error.contains("move"),
        "names the file and what to do: {error}"
    );
    assert_eq!(
        std::fs::read(damaged.0.join("journal.sqlite3")).unwrap(),
        b"not a database, not at all",
        "left untouched"
    );
    delete_exchanges(&prefix).await;
}
