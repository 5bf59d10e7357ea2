//! The journal across processes: `serve` killed while it drains and started again,
//! `journal stats`, `list` and `replay` while `serve` runs, bad input to the journal's
//! keys and commands.

use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use powens_webhooks::relay::consume::Incoming;
use tokio::time::{Instant, sleep, timeout};

use super::e2e::consumer;
use super::journal::Dir;
use super::proxy::{Fault, FaultProxy};
use super::{AMQP_URL, Serve, delete_exchanges, secret_file, signed, try_post, unique};

const SECRET: &str = "journal-cli-s3cr3t";
const DOMAIN: &str = "budgea.biapi.pro";
const OTHER: &str = "other.biapi.pro";

fn webhook(domain: &str, id: u64) -> http::Request<http_body_util::Full<axum::body::Bytes>> {
    let path = format!("/powens-webhook/{domain}/CONNECTION_SYNCED");
    signed(
        &path,
        format!("{{\"id_webhook_data\": {id}}}").as_bytes(),
        SECRET,
    )
}

/// `powens-relay journal …` on `dir` with the broker at `amqp_url` and `prefix`.
fn journal(args: &[&str], dir: &Dir, amqp_url: &str, prefix: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_powens-relay"))
        .arg("journal")
        .args(args)
        .env("POWENS_RELAY_DATA_DIR", &dir.0)
        .env("POWENS_RELAY_AMQP_URL", amqp_url)
        .env("POWENS_RELAY_EXCHANGE_PREFIX", prefix)
        .output()
        .unwrap()
}

/// `journal stats` as JSON.
fn stats(dir: &Dir, prefix: &str) -> serde_json::Value {
    let output = journal(&["stats"], dir, AMQP_URL, prefix);
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `serve` on `dir` with the journal, its broker at `amqp_url`.
fn serve(dir: &Dir, amqp_url: &str, prefix: &str, domains: &str) -> Serve {
    Serve::spawn(&[
        ("POWENS_RELAY_JOURNAL", "fallback"),
        ("POWENS_RELAY_DATA_DIR", dir.0.to_str().unwrap()),
        ("POWENS_RELAY_AMQP_URL", amqp_url),
        ("POWENS_RELAY_EXCHANGE_PREFIX", prefix),
        ("POWENS_RELAY_PUBLISH_TIMEOUT_SECS", "1"),
        ("POWENS_RELAY_DOMAINS", domains),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_killed_while_it_drains_loses_nothing_once_started_again() {
    const WEBHOOKS: u64 = 6000;
    let prefix = unique("journal_kill");
    let dir = Dir::new("journal-kill");
    let domains = format!("{DOMAIN}=file:{}", secret_file(SECRET).display());
    let proxy = FaultProxy::start("127.0.0.1:5672".parse().unwrap()).await;
    let through = proxy.amqp_url_text();
    let mut consumer = consumer(&prefix, &[DOMAIN]).await;
    let first = serve(&dir, &through, &prefix, &domains);
    let addr = first.addr;

    // The broker cut: every webhook goes to the journal, answered 204.
    proxy.inject(Fault::Cut);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let senders: Vec<_> = (0..32)
        .map(|_| {
            let next = next.clone();
            tokio::spawn(async move {
                loop {
                    let id = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if id >= WEBHOOKS {
                        return;
                    }
                    let answer = try_post(addr, webhook(DOMAIN, id)).await;
                    assert_eq!(answer.map(|a| a.0), Some(204), "webhook {id}");
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }

    // The broker back: killed as soon as the drain has published something.
    proxy.heal();
    let mut received = Vec::new();
    let first_one = timeout(Duration::from_secs(20), consumer.next())
        .await
        .expect("the drain published")
        .unwrap();
    let kill = Command::new("kill")
        .args(["-KILL", &first.child_id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    first_one.ack().await.unwrap();
    received.push(first_one);
    drop(first);
    // What was published before the kill, then what comes once started again.
    while let Ok(Ok(one)) = timeout(Duration::from_secs(2), consumer.next()).await {
        one.ack().await.unwrap();
        received.push(one);
    }
    let before_restart = received.len();
    assert!(
        (before_restart as u64) < WEBHOOKS,
        "killed while draining, not after ({before_restart} published)"
    );
    let second = serve(&dir, &through, &prefix, &domains);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ids = BTreeSet::new();
    for one in &received {
        let Incoming::Webhook(message) = &one.message else {
            panic!()
        };
        ids.insert(message.id_webhook_data().unwrap());
    }
    while (ids.len() as u64) < WEBHOOKS {
        assert!(
            Instant::now() < deadline,
            "{} of {WEBHOOKS} consumed",
            ids.len()
        );
        let Ok(Ok(one)) = timeout(Duration::from_secs(10), consumer.next()).await else {
            continue;
        };
        one.ack().await.unwrap();
        let Incoming::Webhook(message) = &one.message else {
            panic!()
        };
        ids.insert(message.id_webhook_data().unwrap());
        received.push(one);
    }
    // Every delivery, a duplicate included, carries its webhook's message_id.
    for one in &received {
        let Incoming::Webhook(message) = &one.message else {
            panic!()
        };
        let id = message.id_webhook_data().unwrap().to_string();
        assert_eq!(one.message_id.as_deref(), Some(id.as_str()));
    }
    // Nothing waits in the journal any more (read while serve runs).
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats(&dir, &prefix)["pending"] != 0 {
        assert!(Instant::now() < deadline, "{}", stats(&dir, &prefix));
        sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "killed after {before_restart} of {WEBHOOKS} published; {} deliveries in all",
        received.len()
    );
    second.terminate();
    consumer.close().await;
    delete_exchanges(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_replay_publishes_again_exactly_the_matching_webhooks() {
    let prefix = unique("journal_replay");
    let dir = Dir::new("journal-replay");
    let secret = secret_file(SECRET);
    let domains = format!("{DOMAIN}=file:{0};{OTHER}=file:{0}", secret.display());
    let relay = Serve::spawn(&[
        ("POWENS_RELAY_JOURNAL", "always"),
        ("POWENS_RELAY_DATA_DIR", dir.0.to_str().unwrap()),
        ("POWENS_RELAY_AMQP_URL", AMQP_URL),
        ("POWENS_RELAY_EXCHANGE_PREFIX", &prefix),
        ("POWENS_RELAY_DOMAINS", &domains),
    ]);
    let mut consumer = consumer(&prefix, &[DOMAIN, OTHER]).await;
    let addr = relay.addr;
    let post = |domain: &'static str, id| async move {
        assert_eq!(
            try_post(addr, webhook(domain, id)).await.map(|a| a.0),
            Some(204)
        );
    };
    for id in [1, 2] {
        post(DOMAIN, id).await;
    }
    post(OTHER, 3).await;
    sleep(Duration::from_millis(50)).await;
    let since = Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    for id in [4, 5] {
        post(DOMAIN, id).await;
    }
    post(OTHER, 6).await;
    for _ in 0..6 {
        let one = timeout(Duration::from_secs(10), consumer.next())
            .await
            .unwrap()
            .unwrap();
        assert!(!one.replayed);
        one.ack().await.unwrap();
    }

    let output = journal(
        &["replay", "--domain", DOMAIN, "--since", &since],
        &dir,
        AMQP_URL,
        &prefix,
    );
    assert!(output.status.success(), "{output:?}");
    let mut replayed = Vec::new();
    while let Ok(Ok(one)) = timeout(Duration::from_secs(2), consumer.next()).await {
        one.ack().await.unwrap();
        let Incoming::Webhook(message) = &one.message else {
            panic!()
        };
        let id = message.id_webhook_data().unwrap();
        assert!(one.replayed, "the replay header");
        assert_eq!(
            one.message_id,
            Some(id.to_string()),
            "the original message_id"
        );
        replayed.push((message.domain.to_string(), id));
    }
    assert_eq!(replayed, [(DOMAIN.to_owned(), 4), (DOMAIN.to_owned(), 5)]);

    // `list` sees the same, one JSON object per line, no payload unless asked.
    let output = journal(
        &["list", "--domain", DOMAIN, "--since", &since],
        &dir,
        AMQP_URL,
        &prefix,
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<_> = lines
        .iter()
        .map(|l| l["id_webhook_data"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [4, 5]);
    assert!(
        lines
            .iter()
            .all(|l| l.get("message").is_none() && l["state"] == "confirmed")
    );
    let output = journal(&["list", "--id", "6", "--payload"], &dir, AMQP_URL, &prefix);
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(line["message"]["domain"], OTHER);
    relay.terminate();
    consumer.close().await;
    delete_exchanges(&prefix).await;
}

/// A command line, its environment, and a line its error must hold.
type Case = (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[test]
fn bad_input_to_the_journal_keys_and_commands_is_named_and_quotes_no_secret() {
    let dir = Dir::new("journal-bad");
    const WITH_PASSWORD: &str = "amqp://guest:pa55word@127.0.0.1:1/%2f";
    let with_password = WITH_PASSWORD;
    let cases: [Case; 6] = [
        (
            &["journal", "list", "--since", "yesterday"],
            &[],
            "--since must be an ISO 8601",
        ),
        (&["journal", "list", "--until=-5m"], &[], "--until must be"),
        (
            &["journal", "stats"],
            &[("POWENS_RELAY_JOURNAL_MAX_BYTES", "0")],
            "journal_max_bytes: must be between 1",
        ),
        (
            &["serve", "--journal", "maybe"],
            &[],
            "journal: must be one of: fallback, always, off",
        ),
        (
            &["serve", "--journal", "off", "--unroutable", "hold"],
            &[],
            "unroutable: hold keeps webhooks in the journal",
        ),
        (
            &["journal", "drain"],
            &[("POWENS_RELAY_AMQP_URL", WITH_PASSWORD)],
            "cannot connect to the broker at amqp://127.0.0.1:1/%2f",
        ),
    ];
    for (args, env, expected) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_powens-relay"))
            .args(args)
            .env("POWENS_RELAY_DATA_DIR", &dir.0)
            .env_remove("POWENS_RELAY_AMQP_URL")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("pa55word"), "{args:?}: {stderr}");
    }
    // No journal there yet: a clear word, not an empty listing.
    let output = Command::new(env!("CARGO_BIN_EXE_powens-relay"))
        .args(["journal", "replay"])
        .env("POWENS_RELAY_DATA_DIR", dir.0.join("none"))
        .env("POWENS_RELAY_AMQP_URL", with_password)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("there is no journal at"), "{stderr}");
    assert!(!stderr.contains("pa55word"), "{stderr}");
}

/// One writer per journal across processes: `journal drain` on the directory `serve`
/// holds is refused, naming `serve`'s process, and leaves the journal to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_a_held_journal_is_refused_naming_the_holder() {
    let prefix = unique("journal_held");
    let dir = Dir::new("journal-held");
    let domains = format!("{DOMAIN}=file:{}", secret_file(SECRET).display());
    let serve = serve(&dir, AMQP_URL, &prefix, &domains);
    let output = journal(&["drain"], &dir, AMQP_URL, &prefix);
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("process {} (", serve.child_id())),
        "names serve's process: {stderr}"
    );
    // serve goes on.
    let mut consumer = consumer(&prefix, &[DOMAIN]).await;
    let (status, _) = try_post(serve.addr, webhook(DOMAIN, 1)).await.unwrap();
    assert_eq!(status, 204);
    assert!(
        timeout(Duration::from_secs(10), consumer.next())
            .await
            .is_ok()
    );
    serve.terminate();
    consumer.close().await;
    delete_exchanges(&prefix).await;
}
