//! Broker faults, injected by a TCP proxy between the relay and the real RabbitMQ while
//! signed webhooks flow: every webhook answered 204 is consumed, every other answer is a
//! 5xx, `/readyz` reports the outage, and the relay is back within 5 s of the fault
//! healing, without a restart.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use http::Request;
use http_body_util::Full;
use powens_webhooks::Domain;
use powens_webhooks::relay::Relay;
use powens_webhooks::relay::consume::{Bindings, ConsumerSettings, Incoming, TealConsumer};
use tokio::time::{Instant, sleep, timeout};

use super::proxy::{Fault, FaultProxy};
use super::{broker, config, delete_exchanges, signed, try_post, unique, verify_domain};

const DOMAIN: &str = "budgea.biapi.pro";
const PATH: &str = "/powens-webhook/budgea.biapi.pro/USER_SYNCED";
/// How soon after a fault heals the relay must publish again.
const RECOVERY: Duration = Duration::from_secs(5);

/// One answer: the webhook id, the status (0 if the connection failed) and when.
type Answer = (u64, u16, Instant);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_faults_lose_no_webhook_answered_204_and_the_relay_heals_itself() {
    let prefix = unique("faults");
    let direct = broker();
    let settings = ConsumerSettings {
        exchange_prefix: prefix.clone(),
        ..ConsumerSettings::default()
    };
    let bindings = Bindings {
        domains: vec![Domain::parse(DOMAIN).unwrap()],
        ..Bindings::default()
    };
    // The consumer talks to the broker directly; only the relay goes through the proxy.
    let mut consumer = TealConsumer::connect(&direct, &settings, &bindings)
        .await
        .unwrap();
    let proxy = FaultProxy::start("127.0.0.1:5672".parse().unwrap()).await;

    let config = config(&format!(
        "exchange_prefix = \"{prefix}\"\npublish_timeout_secs = 2\n{}",
        verify_domain(DOMAIN, "s3cr3t")
    ))
    .with_amqp_url(proxy.amqp_url());
    let relay = Relay::start(&config).await.unwrap();
    let addr = relay.local_addr().unwrap();
    let server = tokio::spawn(relay.run(std::future::pending()));

    let answers: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..8u64)
        .map(|sender| tokio::spawn(send_until(addr, sender, answers.clone(), stop.clone())))
        .collect();

    sleep(Duration::from_secs(1)).await;
    assert!(ready(addr).await, "ready before any fault");

    // Each fault: the outage is seen on /readyz, lasts a while, then heals.
    let faults = [
        ("cut", Fault::Cut, Duration::from_secs(1)),
        // Nothing reports a black hole: the relay finds out when a confirm times out.
        ("black hole", Fault::BlackHole, Duration::from_secs(3)),
    ];
    for (name, fault, detection) in faults {
        proxy.inject(fault);
        let injected = Instant::now();
        let noticed = wait_until(addr, false, detection + Duration::from_secs(3)).await;
        assert!(
            noticed.is_some(),
            "{name}: /readyz never reported the outage"
        );
        eprintln!("{name}: /readyz 503 after {:?}", injected.elapsed());
        sleep(Duration::from_secs(2)).await;
        let down = answers.lock().unwrap().len();
        proxy.heal();
        let healed = Instant::now();
        let back = wait_until(addr, true, RECOVERY).await;
        let back = back.unwrap_or_else(|| panic!("{name}: not ready {RECOVERY:?} after healing"));
        // And a webhook answered 204 after the heal, within the same bound.
        let published = first_204_after(&answers, down, healed + RECOVERY).await;
        let published =
            published.unwrap_or_else(|| panic!("{name}: no 204 within {RECOVERY:?} of healing"));
        eprintln!(
            "{name}: ready {:?} and publishing {:?} after healing",
            back - healed,
            published - healed
        );
    }

    // A slow link: confirms arrive late but within the publish time-out.
    let before = answers.lock().unwrap().len();
    proxy.inject(Fault::Delay(Duration::from_millis(300)));
    sleep(Duration::from_secs(3)).await;
    proxy.heal();
    let delayed_204 = answers.lock().unwrap()[before..]
        .iter()
        .filter(|(_, status, _)| *status == 204)
        .count();
    assert!(delayed_204 > 0, "no webhook got through the slow link");
    eprintln!("slow link: {delayed_204} webhooks answered 204 in 3 s");

    sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.await.unwrap();
    }
    let answers = std::mem::take(&mut *answers.lock().unwrap());
    let accepted: BTreeSet<u64> = answers
        .iter()
        .filter(|(_, status, _)| *status == 204)
        .map(|(id, _, _)| *id)
        .collect();
    let others: Vec<_> = answers
        .iter()
        .filter(|(_, status, _)| *status != 204)
        .collect();
    let bad: Vec<_> = others
        .iter()
        .filter(|(_, status, _)| !(500..600).contains(status))
        .collect();
    assert!(bad.is_empty(), "answers neither 204 nor 5xx: {bad:?}");

    // Every 204 was consumed (some 503s may have reached the broker too: their confirm
    // was lost with the connection, and Powens would send them again).
    let mut consumed = BTreeSet::new();
    let mut deliveries = 0u64;
    while !accepted.is_subset(&consumed) {
        let received = timeout(Duration::from_secs(15), consumer.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "lost: {:?}",
                    accepted.difference(&consumed).take(20).collect::<Vec<_>>()
                )
            })
            .unwrap();
        received.ack().await.unwrap();
        let Incoming::Webhook(message) = &received.message else {
            panic!("not a webhook")
        };
        deliveries += 1;
        consumed.insert(message.id_webhook_data().unwrap());
    }
    eprintln!(
        "fault test: sent {}, 204 {}, 5xx {}, consumed {} distinct ids ({} deliveries), every 204 among them",
        answers.len(),
        accepted.len(),
        others.len(),
        consumed.len(),
        deliveries,
    );
    assert!(accepted.len() > 100, "too few webhooks got through");
    assert!(
        others.len() > 10,
        "the faults caused no 5xx: were they injected?"
    );

    server.abort();
    consumer.close().await;
    delete_exchanges(&prefix).await;
}

/// Posts signed webhooks with distinct ids until `stop`, recording every answer.
async fn send_until(
    addr: SocketAddr,
    sender: u64,
    answers: Arc<Mutex<Vec<Answer>>>,
    stop: Arc<AtomicBool>,
) {
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let id = sender * 10_000_000 + n;
        let body = format!("{{\"id_webhook_data\": {id}}}");
        let status = try_post(addr, signed(PATH, body.as_bytes(), "s3cr3t"))
            .await
            .map_or(0, |(status, _)| status);
        answers.lock().unwrap().push((id, status, Instant::now()));
        if status != 204 {
            // Powens would back off too; keep the answer log readable.
            sleep(Duration::from_millis(5)).await;
        }
    }
}

/// `GET /readyz` answered 200.
async fn ready(addr: SocketAddr) -> bool {
    let request = Request::get("/readyz")
        .body(Full::new(Bytes::new()))
        .unwrap();
    try_post(addr, request)
        .await
        .is_some_and(|(status, _)| status == 200)
}

/// Polls `/readyz` until it says `ready`; when it did, or `None` after `within`.
async fn wait_until(addr: SocketAddr, want: bool, within: Duration) -> Option<Instant> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if ready(addr).await == want {
            return Some(Instant::now());
        }
        sleep(Duration::from_millis(20)).await;
    }
    None
}

/// When the first 204 among the answers after index `from` came, waiting until
/// `deadline` for one.
async fn first_204_after(
    answers: &Mutex<Vec<Answer>>,
    from: usize,
    deadline: Instant,
) -> Option<Instant> {
    loop {
        let found = answers.lock().unwrap()[from..]
            .iter()
            .filter(|(_, status, _)| *status == 204)
            .map(|(_, _, at)| *at)
            .min();
        if found.is_some() || Instant::now() > deadline {
            return found;
        }
        sleep(Duration::from_millis(20)).await;
    }
}
