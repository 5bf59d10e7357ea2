//! What the commands say is what they do: `send`'s exit codes as its `--help` and
//! docs/operations.md give them, `--wait` trying again while the relay starts, and a
//! missing dispatcher password said at once, before any connection, in its own terms.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn relay() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_powens-relay"));
    command.env("POWENS_RELAY_DATA_DIR", crate::test_data_dir());
    command.env("POWENS_RELAY_JOURNAL", "off");
    command
}

fn send(url: &str, extra: &[&str]) -> Output {
    let mut child = relay()
        .arg("send")
        .arg(url)
        .args(extra)
        .env("POWENS_WEBHOOK_SECRET", "truthful-secret")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"{}").unwrap();
    child.wait_with_output().unwrap()
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Answers each connection with the next of `statuses`, then stops listening.
fn answering(statuses: &'static [u16]) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        for status in statuses {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
            )
            .unwrap();
        }
    });
    (port, thread)
}

fn help_of(subcommand: &str) -> String {
    let output = relay().args([subcommand, "--help"]).output().unwrap();
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn send_exits_2_when_nothing_was_sent_and_1_on_a_refusal_as_its_help_says() {
    let help = help_of("send");
    let said = "Exit 0 on a 2xx, 1 on another status, 2 when nothing was sent";
    assert!(help.contains(said), "{help}");
    let operations = include_str!("../../../docs/operations.md");
    assert!(
        operations.contains("0 on a 2xx, 1 on another status, 2 when nothing was sent"),
        "docs/operations.md gives send's exit codes as its --help does"
    );

    let url = |port: u16| format!("http://127.0.0.1:{port}/powens-webhook/a.biapi.pro/E");
    let refused = send(&url(closed_port()), &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");

    let (port, server) = answering(&[404]);
    let answered = send(&url(port), &[]);
    server.join().unwrap();
    assert_eq!(answered.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&answered.stdout), "404\nok");

    let (port, server) = answering(&[204]);
    let answered = send(&url(port), &[]);
    server.join().unwrap();
    assert_eq!(answered.status.code(), Some(0));
}

#[test]
fn send_wait_tries_again_while_refused_or_503_then_gives_up() {
    let url = |port: u16| format!("http://127.0.0.1:{port}/powens-webhook/a.biapi.pro/E");
    // 503 twice (nothing bound yet), then taken.
    let (port, server) = answering(&[503, 503, 202]);
    let answered = send(&url(port), &["--wait", "10"]);
    server.join().unwrap();
    assert_eq!(answered.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&answered.stdout), "202\nok");

    // Refused until the deadline: the refusal, exit 2, after about the wait.
    let started = Instant::now();
    let refused = send(&url(closed_port()), &["--wait", "1"]);
    let elapsed = started.elapsed();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        elapsed >= Duration::from_millis(700) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
}

#[test]
fn a_missing_dispatcher_password_is_said_at_once_before_any_connection() {
    // The broker's port is closed: were it tried first, its error would come instead.
    let broker = format!("amqp://guest:guest@127.0.0.1:{}/%2f", closed_port());
    for args in [
        &[
            "serve",
            "--dispatcher",
            "true",
            "--domain",
            "a.biapi.pro=forward",
        ][..],
        &["dispatch"][..],
    ] {
        let started = Instant::now();
        let output = relay()
            .args(args)
            .env("POWENS_RELAY_AMQP_URL", &broker)
            .env("POWENS_RELAY_LISTEN", "127.0.0.1:0")
            .env("POWENS_RELAY_DISPATCHER_LISTEN", "127.0.0.1:0")
            .env_remove("POWENS_RELAY_DISPATCHER_PASSWORD")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(
                "dispatcher_password: environment variable POWENS_RELAY_DISPATCHER_PASSWORD \
                 is not set"
            ),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("webhook secret"), "{stderr}");
        assert!(!stderr.to_lowercase().contains("broker"), "{stderr}");
        assert!(started.elapsed() < Duration::from_secs(2), "{args:?}");
    }
}

/// A directory of the test's own, as the working directory of the commands it runs.
fn scratch(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(super::unique(what));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_commands_say_where_the_data_directory_is_made_absolute() {
    let cwd = scratch("data_dir");
    let absolute = cwd.join("state");
    let expected = format!("data directory: {}", absolute.display());
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_powens-relay"))
            .args(args)
            .current_dir(&cwd)
            .env("POWENS_RELAY_DATA_DIR", "state")
            .env_remove("POWENS_RELAY_CALLBACK_STORE")
            .env_remove("POWENS_RELAY_AMQP_URL")
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let created = run(&[
        "callback",
        "create",
        "--state",
        "s-1",
        "--expires-in",
        "600",
    ]);
    assert!(created.contains(&expected), "{created}");
    assert!(absolute.join("callbacks.sqlite3").exists());
    let stats = run(&["journal", "stats"]);
    assert!(stats.contains(&expected), "{stats}");

    // serve says it in its log, before it listens (text logs on standard error).
    let mut serve = Command::new(env!("CARGO_BIN_EXE_powens-relay"))
        .args(["serve", "--domain", "a.biapi.pro=forward"])
        .current_dir(&cwd)
        .env("POWENS_RELAY_DATA_DIR", "state")
        .env("POWENS_RELAY_LISTEN", "127.0.0.1:0")
        .env("POWENS_RELAY_LOG_FORMAT", "text")
        .env("RUST_LOG", "info")
        .env_remove("POWENS_RELAY_AMQP_URL")
        .env_remove("POWENS_RELAY_CALLBACK_STORE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(serve.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let said = loop {
        let Some(Ok(line)) = lines.next() else {
            break false;
        };
        if line.contains(&expected) {
            break true;
        }
        let listening = line.contains("listening on");
        seen.push(line);
        if listening {
            break false;
        }
    };
    serve.kill().unwrap();
    serve.wait().unwrap();
    assert!(said, "{seen:#?}");
    std::fs::remove_dir_all(cwd).unwrap();
}
