//! The relay: router tests with an in-memory publisher, end-to-end tests against the
//! real RabbitMQ on 127.0.0.1:5672, and graceful shutdown of the binary.

mod callbacks_e2e;
mod commands;
mod console;
mod console_browser;
mod consume;
mod diagnosis;
mod dispatch;
mod dispatch_local;
mod e2e;
mod faults;
mod flags;
mod hostile;
mod journal;
mod journal_cli;
mod listener;
mod nodes;
mod proxy;
mod replicas;
mod router;
mod secrets;
mod shutdown;
mod store_faults;
mod truthful;

use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use http::Request;
use http_body_util::Full;
use powens_webhooks::Secret;
use powens_webhooks::relay::testing::{Target, signature_date, signed_request};
use powens_webhooks::relay::{AmqpUrl, Overrides, RelayConfig};

pub use powens_webhooks::relay::testing::redis_url;

/// The broker every relay test uses.
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The broker's URL, after checking that it answers: a test that needs RabbitMQ fails,
/// saying how to start it, rather than passing without it.
pub fn broker() -> AmqpUrl {
    if TcpStream::connect_timeout(&"127.0.0.1:5672".parse().unwrap(), Duration::from_secs(2))
        .is_err()
    {
        panic!(
            "RabbitMQ is not reachable on 127.0.0.1:5672; start it with \
             `rabbitmq-server -detached && rabbitmqctl await_startup` (or run `bash .ci/run`)"
        );
    }
    AmqpUrl::parse(AMQP_URL).unwrap()
}

/// A name no other test (or earlier run) uses, for exchange prefixes and queues.
pub fn unique(what: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!(
        "test_{what}_{}_{nanos:x}_{}_",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Writes `secret` to a new file and returns its path, for `file:` references.
pub fn secret_file(secret: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique("secrets"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("secret");
    std::fs::write(&path, secret).unwrap();
    path
}

/// A configuration from TOML text (secrets as `file:` references), listening on port 0.
/// Without the journal unless the test asks for it (with a `data_dir` of its own: one
/// relay per journal).
pub fn config(toml: &str) -> RelayConfig {
    let overrides = Overrides::new().with("listen", "127.0.0.1:0");
    // The embedded store out of the repository, unless the test picks its own.
    let data_dir = if toml.contains("data_dir") {
        String::new()
    } else {
        format!("data_dir = {:?}\n", crate::test_data_dir())
    };
    let journal = if toml.contains("journal") {
        ""
    } else {
        "journal = \"off\"\n"
    };
    RelayConfig::from_toml(&format!("{data_dir}{journal}{toml}"), &overrides).unwrap()
}

/// `[domains."<domain>"]` in verify mode with `secret`.
pub fn verify_domain(domain: &str, secret: &str) -> String {
    format!(
        "[domains.\"{domain}\"]\nsecrets = [\"file:{}\"]\n",
        secret_file(secret).display()
    )
}

/// A request as Powens signs it: `POST path`, date `at`, body, signed with `secret`.
pub fn signed_at(path: &str, body: &[u8], secret: &str, at: DateTime<Utc>) -> Request<Full<Bytes>> {
    signed_request(
        &Target::parse(&format!("http://127.0.0.1:1{path}")).unwrap(),
        Bytes::copy_from_slice(body),
        &Secret::new(secret).unwrap(),
        &signature_date(at),
    )
    .unwrap()
}

/// [`signed_at`] now.
pub fn signed(path: &str, body: &[u8], secret: &str) -> Request<Full<Bytes>> {
    signed_at(path, body, secret, Utc::now())
}

/// `data` gzip-compressed (best compression, so that a "bomb" is as small as it gets).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// Deletes the TeaL exchanges of `prefix`, so that test runs leave nothing behind.
pub async fn delete_exchanges(prefix: &str) {
    use lapin::options::ExchangeDeleteOptions;
    let connection = lapin::Connection::connect(AMQP_URL, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    for exchange in powens_webhooks::TealExchange::ALL {
        channel
            .exchange_delete(
                exchange.name(prefix).into(),
                ExchangeDeleteOptions::default(),
            )
            .await
            .unwrap();
    }
    let _ = connection.close(200, "done".into()).await;
}

/// `powens-relay serve` as a child process, listening on a port of its choosing.
pub struct Serve {
    child: std::process::Child,
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Serve {
    /// Starts `serve` with `env` (on top of port 0 and JSON logs at info) and waits for
    /// its "listening on" line. Its standard output is piped when `capture_stdout`.
    pub fn spawn(env: &[(&str, &str)]) -> Self {
        Self::spawn_with(env, std::process::Stdio::null())
    }

    /// As [`Serve::spawn`], with standard output going to `stdout`.
    pub fn spawn_with(env: &[(&str, &str)], stdout: std::process::Stdio) -> Self {
        Self::spawn_command("serve", env, stdout)
    }

    /// As [`Serve::spawn_with`], for `powens-relay <subcommand>` (`dispatch` listens on
    /// `POWENS_RELAY_DISPATCHER_LISTEN`, port 0 too).
    pub fn spawn_command(
        subcommand: &str,
        env: &[(&str, &str)],
        stdout: std::process::Stdio,
    ) -> Self {
        use std::io::{BufRead, BufReader};
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_powens-relay"));
        command.env("POWENS_RELAY_DATA_DIR", crate::test_data_dir());
        // Without the journal unless the test asks for it (one relay per journal).
        command.env("POWENS_RELAY_JOURNAL", "off");
        command
            .arg(subcommand)
            .env("POWENS_RELAY_LISTEN", "127.0.0.1:0")
            .env("POWENS_RELAY_DISPATCHER_LISTEN", "127.0.0.1:0")
            .env("POWENS_RELAY_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(stdout)
            .stderr(std::process::Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut early = Vec::new();
        let addr = loop {
            let mut line = String::new();
            let read = stderr.read_line(&mut line).unwrap();
            assert_ne!(read, 0, "serve exited before listening: {early:#?}");
            if let Some(rest) = line.split("listening on ").nth(1) {
                // JSON (`…on 127.0.0.1:1234","addr"…`) or text (`…on 127.0.0.1:1234 addr=…`).
                let addr = rest.split(|c: char| c == '"' || c.is_whitespace()).next();
                break addr.unwrap().parse().unwrap();
            }
            early.push(line);
        };
        let logs = std::sync::Arc::new(std::sync::Mutex::new(early));
        let reader = std::thread::spawn({
            let logs = logs.clone();
            move || {
                for line in stderr.lines().map_while(Result::ok) {
                    logs.lock().unwrap().push(line);
                }
            }
        });
        Self {
            child,
            addr,
            logs,
            reader,
        }
    }

    /// The log lines written so far.
    pub fn logs_so_far(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// The child's process id (to signal it).
    pub fn child_id(&self) -> u32 {
        self.child.id()
    }

    /// The child's standard output, when it was piped.
    pub fn stdout(&mut self) -> std::process::ChildStdout {
        self.child.stdout.take().unwrap()
    }

    /// Sends SIGTERM and waits: the exit status and every log line.
    pub fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let kill = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let status = self.child.wait().unwrap();
        self.reader.join().unwrap();
        let logs = std::mem::take(&mut *self.logs.lock().unwrap());
        (status, logs)
    }
}

/// `request` as a reverse proxy forwards it after stripping the leading `/hooks`.
pub fn strip_hooks<B>(request: Request<B>) -> Request<B> {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path().strip_prefix("/hooks").unwrap().to_owned();
    parts.uri = path.parse().unwrap();
    Request::from_parts(parts, body)
}

/// Asserts that `message` carries a signature made for `POST path`.
pub fn assert_signed_for(message: &powens_webhooks::PowensWebhookMessage, path: &str) {
    let hmac = message.hmac_signature.as_ref().expect("a signature");
    assert!(
        hmac.payload_prefix.starts_with(&format!("POST.{path}.")),
        "{}",
        hmac.payload_prefix
    );
}

/// Posts `request` to the relay at `addr` on a new connection: the status and body, or
/// `None` if the relay refused or dropped the connection.
pub async fn try_post(
    addr: std::net::SocketAddr,
    request: Request<Full<Bytes>>,
) -> Option<(u16, String)> {
    let answer = crate::http_client::exchange(addr, request).await?;
    Some((answer.status, answer.body))
}
