//! The console in a real browser: Debian's headless `chromium`, driven through
//! `chromedriver` (WebDriver). Log in, see a webhook arrive live after a `send`, see a
//! refused one with its diagnosis, open a payload, replay it and see a consumer receive
//! it, a wrong password refused. The screenshots of `docs/images/` are taken here.
//!
//! Needs `chromium` and `chromedriver` (Debian's `chromium` and `chromium-driver`;
//! `.ci/run` installs them when absent).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tokio::time::{Instant, sleep};

use super::console::{Console, DOMAIN, OTHER_SECRET, PASSWORD, SECRET};
use super::e2e::{consumer, next};

/// `chromedriver` on a port of its own, killed with the value.
struct Driver {
    child: Child,
    port: u16,
    profile: PathBuf,
}

impl Driver {
    fn start() -> Self {
        for program in ["chromium", "chromedriver"] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                found,
                "{program} is not installed: the console's browser test needs Debian's \
                 chromium and chromium-driver (apt-get install chromium chromium-driver; \
                 .ci/run installs them)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let profile = std::env::temp_dir().join(super::unique("chromium-profile"));
        Self {
            child,
            port,
            profile,
        }
    }

    /// A headless browser session: nothing leaves 127.0.0.1 (no DNS, no background
    /// traffic).
    async fn browser(&self) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1400,1000",
                    "--hide-scrollbars",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-default-apps",
                    "--disable-sync",
                    "--no-first-run",
                    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                    format!("--user-data-dir={}", self.profile.display()),
                ]
            }),
        );
        let url = format!("http://127.0.0.1:{}", self.port);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => return client,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no browser session from chromedriver within 20 s: {e}"),
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Waits until the page's element `css` holds `text`: its text.
async fn wait_for_text(browser: &Client, css: &str, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let seen = match browser.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if seen.contains(text) {
            return seen;
        }
        if Instant::now() > deadline {
            let source = browser.source().await.unwrap_or_default();
            panic!("no {text:?} in {css} within 15 s; it holds {seen:?}; the page: {source}");
        }
        sleep(Duration::from_millis(100)).await;
    }
}

/// Clicks the element `locator` finds.
async fn click(browser: &Client, locator: Locator<'_>) {
    browser.find(locator).await.unwrap().click().await.unwrap();
}

/// Saves the page as `docs/images/<name>`.
async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/images");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

fn url(console: SocketAddr, password: &str, path: &str) -> String {
    format!("http://anonymous:{password}@{console}{path}")
}

/// `powens-relay send`, as an operator would: its exit status.
fn send(relay: SocketAddr, body: &str, secret: &str) -> bool {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_powens-relay"))
        .args([
            "send",
            &format!("http://{relay}/powens-webhook/{DOMAIN}/CONNECTION_SYNCED"),
        ])
        .env("POWENS_WEBHOOK_SECRET", secret)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    child.wait().unwrap().success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_browser_shows_webhooks_live_explains_a_refusal_and_replays() {
    let driver = Driver::start();
    let console = Console::start("").await;
    let mut consumer = consumer(&console.prefix, &[DOMAIN]).await;
    let browser = driver.browser().await;

    // A wrong password: refused, nothing of the console shown.
    browser
        .goto(&url(console.console, "not-the-password", "/"))
        .await
        .unwrap();
    let refused = browser.source().await.unwrap();
    assert!(!refused.contains("Webhooks"), "{refused}");

    // Logged in: the live list is connected.
    browser
        .goto(&url(console.console, PASSWORD, "/"))
        .await
        .unwrap();
    wait_for_text(&browser, "#stream", "live").await;

    // Some traffic first, for the screenshot.
    for id in 1..=4 {
        let body = format!(r#"{{"id_webhook_data": {id}, "user": {{"id": {id}}}}}"#);
        assert_eq!(console.send(DOMAIN, &body, SECRET).await, 204);
        next(&mut consumer).await;
    }
    wait_for_text(&browser, "#live", "id_webhook_data 4").await;

    // A webhook sent with `powens-relay send` appears without a reload.
    let body =
        r#"{"id_webhook_data": 31337, "connection": {"id": 12, "state": null}, "user": {"id": 7}}"#;
    let relay = console.relay;
    let body_owned = body.to_owned();
    assert!(
        tokio::task::spawn_blocking(move || send(relay, &body_owned, SECRET))
            .await
            .unwrap()
    );
    let row = wait_for_text(&browser, "#live tr:first-child", "CONNECTION_SYNCED").await;
    assert!(row.contains("verified") && row.contains("31337"), "{row}");
    let delivered = next(&mut consumer).await;
    assert!(!delivered.replayed);

    // One signed with another domain's secret: refused, with the reason.
    assert!(
        !tokio::task::spawn_blocking(move || send(
            relay,
            r#"{"id_webhook_data": 4}"#,
            OTHER_SECRET
        ))
        .await
        .unwrap()
    );
    let row = wait_for_text(&browser, "#live tr:first-child", "refused").await;
    assert!(row.contains("signature"), "{row}");
    // Explained: the other domain's secret signed it.
    assert!(
        row.contains("signed with the secret of domain other.biapi.pro, not budgea.biapi.pro's"),
        "{row}"
    );
    // The glance, refreshed every few seconds, counts it under that cause; the rows'
    // highlight fades.
    wait_for_text(&browser, "#refusals", "signature: other domain").await;
    sleep(Duration::from_millis(2500)).await;
    screenshot(&browser, "console-live.png").await;

    // Its payload, from the journal.
    click(&browser, Locator::LinkText("in the journal")).await;
    click(&browser, Locator::Css("table.entries tbody a")).await;
    let payload = wait_for_text(&browser, "#payload", "31337").await;
    assert!(payload.contains("\"state\": null"), "{payload}");
    screenshot(&browser, "console-entry.png").await;

    // Replayed, after the confirmation; the consumer receives it again.
    click(
        &browser,
        Locator::Css("form[action='/journal/replay'] button"),
    )
    .await;
    wait_for_text(&browser, "h1", "Replay 1 entry?").await;
    click(&browser, Locator::Id("confirm")).await;
    wait_for_text(&browser, "#replayed", "1 of 1 replayed").await;
    let replayed = next(&mut consumer).await;
    assert!(replayed.replayed);
    assert_eq!(replayed.body, delivered.body);

    browser.close().await.unwrap();
    console.stop().await;
}
