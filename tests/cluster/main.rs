//! The relay on a RabbitMQ cluster of three nodes of the test's own, with a quorum
//! queue: under load, the node the relay is connected to is killed, and every webhook
//! answered 2xx must be in the queue afterwards, the non-2xx answers confined to the
//! switch, and the relay publishing again through another node within 5 s.
//!
//! Slow (about a minute: three nodes start and cluster), so not part of `cargo test`;
//! `.ci/run` runs it once: `cargo test --all-features --test cluster`.
#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

#[path = "../common/http.rs"]
mod http_client;
mod nodes;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::Full;
use powens_webhooks::relay::Relay;
use powens_webhooks::relay::consume::{Bindings, ConsumerSettings, QueueType, TealConsumer};
use powens_webhooks::relay::testing::{Target, send};
use powens_webhooks::relay::{AmqpUrl, Overrides, RelayConfig};
use powens_webhooks::{Domain, Secret};
use tokio::time::{sleep, timeout};

use nodes::Cluster;

const DOMAIN: &str = "budgea.biapi.pro";
const SECRET: &str = "cluster-test-secret";
/// Concurrent senders, each waiting for its answer before sending again.
const SENDERS: u64 = 8;
/// Load before the kill, and after it.
const BEFORE: Duration = Duration::from_secs(3);
const AFTER: Duration = Duration::from_secs(8);
/// The longest the relay may answer non-2xx after its node is killed.
const RECOVERY: Duration = Duration::from_secs(5);

/// One webhook sent: its id, when its answer came (since the start), and the status
/// (`None`: no answer).
#[derive(Debug, Clone, Copy)]
struct Sent {
    id: u64,
    answered: Duration,
    status: Option<u16>,
}

impl Sent {
    fn is_2xx(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// `GET path` on the relay: status and body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let request = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let answer = http_client::exchange(addr, request).await.unwrap();
    (answer.status, answer.body)
}

/// The port of the broker node `/readyz` names (`broker node: amqp://127.0.0.1:P/%2f`).
async fn node_port(relay: SocketAddr) -> Option<u16> {
    let (status, body) = get(relay, "/readyz").await;
    if status != 200 {
        return None;
    }
    let node = body.lines().find_map(|l| l.strip_prefix("broker node: "))?;
    node.split("127.0.0.1:")
        .nth(1)?
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// Sends signed webhooks, each with its own `id_webhook_data`, until `stop`.
async fn sender(
    relay: SocketAddr,
    next_id: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    start: Instant,
) -> Vec<Sent> {
    let target = Target::parse(&format!(
        "http://{relay}/powens-webhook/{DOMAIN}/CONNECTION_SYNCED"
    ))
    .unwrap();
    let secret = Secret::new(SECRET).unwrap();
    let mut sent = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let body = format!("{{\"id_webhook_data\": {id}}}").into_bytes();
        let status = send(&target, body, &secret)
            .await
            .ok()
            .map(|(status, _)| status);
        sent.push(Sent {
            id,
            answered: start.elapsed(),
            status,
        });
        sleep(Duration::from_millis(2)).await;
    }
    sent
}

/// Every message in `queue` (until none comes for 3 s): their `id_webhook_data`s, as
/// many times as each was received.
async fn drain(nodes: Vec<AmqpUrl>, settings: &ConsumerSettings, bindings: &Bindings) -> Vec<u64> {
    let mut consumer = TealConsumer::connect_cluster(nodes, settings, bindings)
        .await
        .expect("a surviving node serves the quorum queue");
    let mut ids = Vec::new();
    while let Ok(next) = timeout(Duration::from_secs(3), consumer.next()).await {
        let received = next.expect("a readable message");
        let id = received
            .message_id
            .as_deref()
            .and_then(|id| id.parse().ok())
            .expect("each webhook has its id as message_id");
        received.ack().await.expect("acknowledged");
        ids.push(id);
    }
    consumer.close().await;
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_webhook_confirmed_survives_the_loss_of_the_relays_node() {
    let cluster = tokio::task::spawn_blocking(Cluster::start).await.unwrap();
    let urls: Vec<String> = cluster.nodes.iter().map(nodes::Node::url).collect();
    let nodes: Vec<AmqpUrl> = urls.iter().map(|u| AmqpUrl::parse(u).unwrap()).collect();

    // The consumers' durable exchange and quorum queue, bound to the domain.
    let prefix = format!("cluster_{}_", std::process::id());
    let settings = ConsumerSettings {
        exchange_prefix: prefix.clone(),
        exchange_durable: true,
        queue: Some(format!("{prefix}webhooks")),
        queue_type: QueueType::Quorum,
        ..ConsumerSettings::default()
    };
    let bindings = Bindings {
        domains: vec![Domain::parse(DOMAIN).unwrap()],
        ..Bindings::default()
    };
    let cluster_broker = || nodes.clone();

    // The relay, given the three nodes.
    let dir = cluster.dir().join("relay");
    std::fs::create_dir_all(&dir).unwrap();
    let secret_file = dir.join("secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let toml = format!(
        // Without the journal: this measures what the broker's fail-over costs.
        "data_dir = {:?}\njournal = \"off\"\nexchange_prefix = \"{prefix}\"\nexchange_durable = true\n\
         [domains.\"{DOMAIN}\"]\nsecrets = [\"file:{}\"]\n",
        dir.display(),
        secret_file.display()
    );
    let overrides = Overrides::new()
        .with("listen", "127.0.0.1:0")
        .with("amqp_url", urls.join(","));
    let config = RelayConfig::from_toml(&toml, &overrides).unwrap();
    assert_eq!(config.amqp_urls().len(), 3);
    let relay = Relay::start(&config).await.unwrap();
    let addr = relay.local_addr().unwrap();
    let (stop_relay, stopped) = tokio::sync::oneshot::channel::<()>();
    let relay_task = tokio::spawn(relay.run(async {
        let _ = stopped.await;
    }));
    let first_port = node_port(addr).await.expect("the relay is ready");
    // The queue declared through the relay's node, which makes it the queue's leader:
    // the node killed is then both, the worst case.
    let relays_node = cluster.node_on(first_port).url();
    let relays_node = AmqpUrl::parse(&relays_node).unwrap();
    TealConsumer::connect(&relays_node, &settings, &bindings)
        .await
        .unwrap()
        .close()
        .await;

    // Load; the relay's node killed after BEFORE.
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let next_id = Arc::new(AtomicU64::new(1));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| tokio::spawn(sender(addr, next_id.clone(), stop.clone(), start)))
        .collect();
    sleep(BEFORE).await;
    let killed = cluster.node_on(first_port);
    killed.kill();
    let killed_at = start.elapsed();
    sleep(AFTER).await;
    stop.store(true, Ordering::Relaxed);
    let mut sent = Vec::new();
    for s in senders {
        sent.extend(s.await.unwrap());
    }
    let second_port = node_port(addr).await.expect("the relay is ready again");
    let _ = stop_relay.send(());
    relay_task.await.unwrap();

    let received = drain(cluster_broker(), &settings, &bindings).await;
    let received_ids: BTreeSet<u64> = received.iter().copied().collect();
    let confirmed: Vec<&Sent> = sent.iter().filter(|s| s.is_2xx()).collect();
    let failed: Vec<&Sent> = sent.iter().filter(|s| !s.is_2xx()).collect();
    let missing: Vec<u64> = confirmed
        .iter()
        .map(|s| s.id)
        .filter(|id| !received_ids.contains(id))
        .collect();
    let last_failure = failed.iter().map(|s| s.answered).max();
    let recovery = last_failure.map(|t| t.saturating_sub(killed_at));
    let after_recovery = confirmed
        .iter()
        .filter(|s| last_failure.is_none_or(|t| s.answered > t))
        .count();
    eprintln!(
        "cluster: {} webhooks sent, {} answered 2xx, {} not ({} before the kill); \
         {} messages in the quorum queue ({} distinct), {} confirmed missing; \
         node :{first_port} killed at {:.2} s, the relay on :{second_port} again, \
         last non-2xx {:.0} ms after the kill; {after_recovery} 2xx after it",
        sent.len(),
        confirmed.len(),
        failed.len(),
        failed.iter().filter(|s| s.answered < killed_at).count(),
        received.len(),
        received_ids.len(),
        missing.len(),
        killed_at.as_secs_f64(),
        recovery.unwrap_or_default().as_secs_f64() * 1000.0,
    );

    if let Some(path) = std::env::var_os("POWENS_CLUSTER_TIMELINE") {
        write_timeline(&path, &sent, killed_at, recovery);
    }
    // Answers per half second and status, to see a failure's shape.
    let mut timeline = std::collections::BTreeMap::<(u128, Option<u16>), usize>::new();
    for s in &sent {
        *timeline
            .entry((s.answered.as_millis() / 500, s.status))
            .or_default() += 1;
    }
    eprintln!("cluster: answers by (half second, status): {timeline:?}");
    assert!(
        missing.is_empty(),
        "{} webhooks answered 2xx are not in the quorum queue: {:?}…",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    assert!(
        failed.iter().all(|s| s.answered >= killed_at),
        "non-2xx answers before the node was killed"
    );
    assert!(
        recovery.is_none_or(|r| r <= RECOVERY),
        "the relay answered non-2xx for {recovery:?} after the kill (at most {RECOVERY:?})"
    );
    assert_ne!(second_port, first_port, "the relay moved to another node");
    assert!(
        after_recovery >= 100,
        "the relay went on relaying after the switch ({after_recovery} 2xx)"
    );
    drop(cluster);
}

/// Writes the answers per 100 ms (2xx, and the others) as JSON to `path`, for the
/// broker-cut chart of `docs/performance.md` (`docs/charts/regenerate.sh`).
fn write_timeline(
    path: &std::ffi::OsStr,
    sent: &[Sent],
    killed_at: Duration,
    recovery: Option<Duration>,
) {
    let buckets = sent
        .iter()
        .map(|s| s.answered.as_millis() / 100)
        .max()
        .map_or(0, |last| last + 1);
    let mut counts = vec![[0u64; 2]; usize::try_from(buckets).unwrap()];
    for s in sent {
        let bucket = usize::try_from(s.answered.as_millis() / 100).unwrap();
        counts[bucket][usize::from(!s.is_2xx())] += 1;
    }
    let json = serde_json::json!({
        "bucket_ms": 100,
        "senders": SENDERS,
        "killed_at_s": killed_at.as_secs_f64(),
        "last_non_2xx_after_kill_ms": recovery.map(|r| r.as_secs_f64() * 1000.0),
        "sent": sent.len(),
        "answered_2xx": sent.iter().filter(|s| s.is_2xx()).count(),
        "ok_per_bucket": counts.iter().map(|c| c[0]).collect::<Vec<_>>(),
        "failed_per_bucket": counts.iter().map(|c| c[1]).collect::<Vec<_>>(),
    });
    std::fs::write(path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
}
