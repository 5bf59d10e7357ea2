//! `powens-relay serve`, `send` and `consume` as commands (SPEC §4).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};

use powens_webhooks::{PowensWebhookMessage, TealMessage};

use super::{AMQP_URL, Serve, broker, delete_exchanges, secret_file, unique};

fn relay() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_powens-relay"));
    command.env("POWENS_RELAY_DATA_DIR", crate::test_data_dir());
    // Without the journal (one relay per journal; these relays share a data_dir).
    command.env("POWENS_RELAY_JOURNAL", "off");
    command
}

/// `send URL` with `body` on stdin and `secret` in the environment.
fn send(url: &str, extra: &[&str], secret: &str, body: &[u8]) -> Output {
    let mut child = relay()
        .arg("send")
        .arg(url)
        .args(extra)
        .env("POWENS_WEBHOOK_SECRET", secret)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn an_invalid_configuration_stops_serve_naming_every_key() {
    let output = relay()
        .args([
            "serve",
            "--listen",
            "nowhere",
            "--domain",
            "example.com=env:X",
        ])
        .env("POWENS_RELAY_AMQP_URL", "amqp://user:pa55word@[::1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    for key in ["listen: ", "amqp_url: ", "--domain example.com: "] {
        assert!(stderr.contains(key), "{key} missing from {stderr}");
    }
    assert!(!stderr.contains("pa55word"), "{stderr}");
}

#[test]
fn a_password_on_the_command_line_is_refused_before_anything_starts() {
    for command in ["serve", "consume"] {
        let output = relay()
            .args([
                command,
                "--amqp-url",
                "amqp://user:pa55word@127.0.0.1:1/%2f",
            ])
            .args(["--domain", "sandbox.biapi.pro=forward"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{command}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(
            stderr.contains("--amqp-url holds a password")
                && stderr.contains("POWENS_RELAY_AMQP_URL"),
            "{command}: {stderr}"
        );
        assert!(!stderr.contains("pa55word"), "{stderr}");
    }
}

#[test]
fn without_a_broker_serve_writes_each_message_to_stdout() {
    let domain = format!(
        "sandbox.biapi.pro=file:{}",
        secret_file("secret_key").display()
    );
    let mut serve = Serve::spawn_with(&[("POWENS_RELAY_DOMAINS", &domain)], Stdio::piped());
    let mut stdout = BufReader::new(serve.stdout());
    let url = format!("http://{}/powens-webhook/sandbox.biapi.pro", serve.addr);
    let body = br#"{"id_webhook_data": 3, "name": "Caf\u00e9"}"#;

    let output = send(&url, &["--event", "USER_SYNCED"], "secret_key", body);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(output.stdout, b"204\n");
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let message = PowensWebhookMessage::from_json(line.trim_end().as_bytes()).unwrap();
    assert_eq!(message.payload.as_bytes(), body);
    assert_eq!(message.event.as_str(), "USER_SYNCED");

    let output = send(&format!("{url}/USER_SYNCED"), &[], "wrong", body);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "401\nsignature does not match any key for sandbox.biapi.pro\n"
    );
    let (status, logs) = serve.terminate();
    assert!(status.success());
    assert!(
        logs.iter()
            .any(|l| l.contains("messages are written to standard output")),
        "serve must say where messages go: {logs:#?}"
    );
}

#[test]
fn consume_prints_what_serve_published() {
    broker();
    let prefix = unique("commands");
    let mut consume = relay()
        .args(["consume", "--domain", "budgea.biapi.pro"])
        .args(["--exchange-prefix", &prefix, "--count", "2"])
        .env("POWENS_RELAY_AMQP_URL", AMQP_URL)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until its queue is bound.
    let mut stderr = BufReader::new(consume.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("consuming from queue "), "{line}");

    let domain = format!("budgea.biapi.pro=file:{}", secret_file("s").display());
    let serve = Serve::spawn(&[
        ("POWENS_RELAY_AMQP_URL", AMQP_URL),
        ("POWENS_RELAY_EXCHANGE_PREFIX", &prefix),
        ("POWENS_RELAY_DOMAINS", &domain),
    ]);
    let url = format!(
        "http://{}/powens-webhook/budgea.biapi.pro/USER_SYNCED",
        serve.addr
    );
    for body in ["{\"n\": 1}", "{\"n\": 2}"] {
        let output = send(&url, &[], "s", body.as_bytes());
        assert_eq!(output.stdout, b"204\n", "{output:?}");
    }
    let output = consume.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let payloads: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            PowensWebhookMessage::from_json(l.as_bytes())
                .unwrap()
                .payload
        })
        .collect();
    assert_eq!(payloads, ["{\"n\": 1}", "{\"n\": 2}"]);
    assert!(serve.terminate().0.success());
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(delete_exchanges(&prefix));
}

#[test]
fn trace_logs_never_show_a_secret_a_signature_a_token_or_a_body() {
    broker();
    let prefix = unique("logs");
    let secret = "SECRET-MARKER-4c1d";
    let domains = format!(
        "budgea.biapi.pro=file:{};forward.biapi.pro=forward",
        secret_file(secret).display()
    );
    let serve = Serve::spawn(&[
        ("POWENS_RELAY_AMQP_URL", AMQP_URL),
        ("POWENS_RELAY_EXCHANGE_PREFIX", &prefix),
        ("POWENS_RELAY_DOMAINS", &domains),
        ("RUST_LOG", "trace"),
    ]);
    let body = br#"{"BODY-MARKER-9e2a": true}"#;
    // Verified, then returned by the broker (no queue bound): 503, and lapin handles a
    // returned frame carrying the body.
    let url = format!(
        "http://{}/powens-webhook/budgea.biapi.pro/USER_SYNCED",
        serve.addr
    );
    let output = send(&url, &[], secret, body);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).lines().next(),
        Some("503")
    );
    // Forwarded with a token and a signature.
    let request = super::signed(
        "/powens-webhook/forward.biapi.pro/USER_SYNCED",
        body,
        secret,
    );
    let signature = request.headers()["BI-Signature"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut request = request;
    request
        .headers_mut()
        .insert("authorization", "Bearer TOKEN-MARKER-77f0".parse().unwrap());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (status, _) = runtime.block_on(super::e2e::post(serve.addr, request));
    assert_eq!(status, 503);

    let (exit, logs) = serve.terminate();
    assert!(exit.success());
    let logs = logs.join("\n");
    assert!(
        logs.contains(
            r#""reason":"no queue is bound to receive messages for this domain; retry later""#
        ),
        "the refusal's reason is logged: {logs}"
    );
    let markers = [
        secret,
        "BODY-MARKER",
        "TOKEN-MARKER",
        &signature,
        "guest:guest",
    ];
    for marker in markers {
        assert!(!logs.contains(marker), "{marker} appears in the logs");
        // Also as a Debug byte list, as lapin would print a message's data.
        let bytes = format!("{:?}", marker.as_bytes());
        let bytes = bytes.trim_start_matches('[').trim_end_matches(']');
        assert!(
            !logs.contains(bytes),
            "{marker} appears in the logs as bytes"
        );
    }
    runtime.block_on(delete_exchanges(&prefix));
}

/// The status `send` printed.
fn status(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn sighup_rereads_a_rotated_secret_file_and_keeps_the_old_one_if_the_new_is_unreadable() {
    let path = secret_file("OLD-SECRET-1f3a");
    let domain = format!("sandbox.biapi.pro=file:{}", path.display());
    let serve = Serve::spawn(&[("POWENS_RELAY_DOMAINS", &domain)]);
    let url = format!(
        "http://{}/powens-webhook/sandbox.biapi.pro/USER_SYNCED",
        serve.addr
    );
    let body = br#"{"id_webhook_data": 5}"#;
    let hup = || {
        let sent = Command::new("kill")
            .args(["-HUP", &serve.child_id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    assert_eq!(status(&send(&url, &[], "OLD-SECRET-1f3a", body)), "204");

    // Rotated on disk: not in use until SIGHUP.
    std::fs::write(&path, "NEW-SECRET-8b2c\n").unwrap();
    assert_eq!(status(&send(&url, &[], "NEW-SECRET-8b2c", body)), "401");
    hup();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while status(&send(&url, &[], "NEW-SECRET-8b2c", body)) != "204" {
        assert!(
            std::time::Instant::now() < deadline,
            "the new secret was not taken up after SIGHUP"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(status(&send(&url, &[], "OLD-SECRET-1f3a", body)), "401");

    // A rotation gone wrong (empty file): the secret in use stays.
    std::fs::write(&path, "").unwrap();
    hup();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(status(&send(&url, &[], "NEW-SECRET-8b2c", body)), "204");

    let (exit, logs) = serve.terminate();
    assert!(exit.success());
    let logs = logs.join("\n");
    assert!(logs.contains("SIGHUP: secrets re-read"), "{logs}");
    assert!(
        logs.contains("SIGHUP: secrets not re-read, the previous ones stay in use")
            && logs.contains("--domain sandbox.biapi.pro.secrets[0]"),
        "{logs}"
    );
    for secret in ["OLD-SECRET", "NEW-SECRET"] {
        assert!(!logs.contains(secret), "{secret} in the logs");
    }
}

#[test]
fn a_gzip_webhook_logs_which_bytes_its_signature_matched() {
    let secret = "secret_key";
    let domain = format!("sandbox.biapi.pro=file:{}", secret_file(secret).display());
    let serve = Serve::spawn(&[("POWENS_RELAY_DOMAINS", &domain)]);
    let path = "/powens-webhook/sandbox.biapi.pro/USER_SYNCED";
    let body = br#"{"id_webhook_data": 6}"#;
    let compressed = super::gzip(body);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    for signed_over in [&body[..], &compressed] {
        let mut request = super::signed(path, signed_over, secret)
            .map(|_| http_body_util::Full::new(axum::body::Bytes::from(compressed.clone())));
        request
            .headers_mut()
            .insert("content-encoding", "gzip".parse().unwrap());
        let answer = runtime.block_on(super::try_post(serve.addr, request));
        assert_eq!(answer.map(|(s, _)| s), Some(204));
    }
    let (_, logs) = serve.terminate();
    // Lines of different worker threads can come out of order (see `relay::logs`):
    // put them in the order they were logged.
    let mut handled: Vec<_> = logs
        .iter()
        .filter(|l| l.contains("webhook handled"))
        .collect();
    handled.sort_by_key(|l| {
        let line: serde_json::Value = serde_json::from_str(l).expect("a JSON log line");
        line["timestamp"].as_str().map(str::to_owned)
    });
    assert_eq!(handled.len(), 2, "{logs:#?}");
    assert!(
        handled[0].contains(r#""signed_over":"decompressed""#),
        "{handled:?}"
    );
    assert!(
        handled[1].contains(r#""signed_over":"compressed""#),
        "{handled:?}"
    );
}

/// The relay's workers write their log lines in batches under load, and before they
/// sleep: the line of a lone webhook is written at once, not held back until the next
/// one or the end.
#[test]
fn the_line_of_a_lone_webhook_is_written_while_the_relay_runs() {
    let domain = format!("budgea.biapi.pro=file:{}", secret_file("s").display());
    let serve = Serve::spawn(&[("POWENS_RELAY_DOMAINS", &domain)]);
    let path = "/powens-webhook/budgea.biapi.pro/USER_SYNCED";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let answer = runtime
        .block_on(crate::http_client::exchange(
            serve.addr,
            super::signed(path, b"{}", "s"),
        ))
        .unwrap();
    assert_eq!(answer.status, 204, "{answer:?}");
    let id = answer.request_id.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !serve
        .logs_so_far()
        .iter()
        .any(|l| l.contains("webhook handled") && l.contains(&id))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no line for the webhook 10 s after its answer: {:#?}",
            serve.logs_so_far()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(serve.terminate().0.success());
}

/// A webhook's line carries its request id (the proxy's `x-request-id`, or the one the
/// relay made and returned), method and route, and so does an event logged while it was
/// handled: here the warning that no queue is bound for its domain.
#[test]
fn the_lines_a_webhook_leaves_carry_its_request_id() {
    broker();
    let prefix = unique("request_id");
    let domain = format!("budgea.biapi.pro=file:{}", secret_file("s").display());
    let serve = Serve::spawn(&[
        ("POWENS_RELAY_AMQP_URL", AMQP_URL),
        ("POWENS_RELAY_EXCHANGE_PREFIX", &prefix),
        ("POWENS_RELAY_DOMAINS", &domain),
        ("POWENS_RELAY_UNROUTABLE", "accept"),
    ]);
    let path = "/powens-webhook/budgea.biapi.pro/USER_SYNCED";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut from_proxy = super::signed(path, b"{\"n\": 1}", "s");
    from_proxy
        .headers_mut()
        .insert("x-request-id", "proxy-id-42".parse().unwrap());
    let mut ids = Vec::new();
    for request in [from_proxy, super::signed(path, b"{\"n\": 2}", "s")] {
        let answer = runtime
            .block_on(crate::http_client::exchange(serve.addr, request))
            .unwrap();
        assert_eq!(answer.status, 204, "{answer:?}");
        ids.push(answer.request_id.expect("an x-request-id header"));
    }
    assert_eq!(ids[0], "proxy-id-42");
    assert_eq!(ids[1].len(), 16, "{ids:?}");
    assert_ne!(ids[0], ids[1]);

    let (_, logs) = serve.terminate();
    let lines: Vec<serde_json::Value> = logs
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for id in &ids {
        let of_it: Vec<_> = lines
            .iter()
            .filter(|l| l["request_id"] == id.as_str())
            .collect();
        let messages: Vec<_> = of_it.iter().map(|l| l["message"].as_str()).collect();
        assert_eq!(
            messages,
            [
                Some("no queue is bound for this domain: message dropped (unroutable = accept)"),
                Some("webhook handled"),
            ],
            "{id}: {logs:#?}"
        );
        let handled = of_it[1];
        assert_eq!(
            (&handled["method"], &handled["route"], &handled["status"]),
            (
                &serde_json::json!("POST"),
                &serde_json::json!("/powens-webhook/{domain}/{event}"),
                &serde_json::json!(204)
            )
        );
    }
    runtime.block_on(delete_exchanges(&prefix));
}

#[test]
fn listener_logs_never_show_a_token_a_query_or_a_body() {
    broker();
    let prefix = unique("listener_logs");
    let state = unique("LOGSTATE");
    let created = relay()
        .args([
            "callback",
            "create",
            "--state",
            &state,
            "--expires-in",
            "60",
        ])
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let serve = Serve::spawn(&[
        ("POWENS_RELAY_AMQP_URL", AMQP_URL),
        ("POWENS_RELAY_EXCHANGE_PREFIX", &prefix),
        ("POWENS_RELAY_DOMAINS", "sandbox.biapi.pro=forward"),
        ("RUST_LOG", "trace"),
    ]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let request = |method: &str, uri: &str, authorization: Option<&str>, body: &str| {
        let mut request = http::Request::builder().method(method).uri(uri);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request
            .body(http_body_util::Full::new(axum::body::Bytes::from(
                body.to_owned(),
            )))
            .unwrap()
    };
    // No queue is bound: each is refused after being read (503), or refused as invalid.
    let cases = [
        request(
            "GET",
            &format!("/callback?state={state}&code=CODE-MARKER-1a"),
            None,
            "",
        ),
        request("GET", "/callback?state=STATE-MARKER-2b", None, ""),
        request(
            "POST",
            "/openid-ciba-callback",
            Some("Bearer CIBA-TOKEN-MARKER-3c"),
            r#"{"auth_req_id":"r","access_token":"AT-MARKER-4d","token_type":"Bearer","expires_in":60,"id_token":"ID-MARKER-5e"}"#,
        ),
        request(
            "POST",
            "/openid-ciba-callback",
            Some("Bearer t"),
            "BODY-MARKER-6f",
        ),
    ];
    let mut statuses = Vec::new();
    for request in cases {
        statuses.push(runtime.block_on(super::e2e::post(serve.addr, request)).0);
    }
    assert_eq!(statuses, [503, 400, 503, 400]);
    let (exit, logs) = serve.terminate();
    assert!(exit.success());
    let logs = logs.join("\n");
    assert!(logs.contains("callback handled"), "{logs}");
    for marker in [
        "CODE-MARKER",
        "STATE-MARKER",
        "CIBA-TOKEN-MARKER",
        "AT-MARKER",
        "ID-MARKER",
        "BODY-MARKER",
    ] {
        assert!(!logs.contains(marker), "{marker} appears in the logs");
    }
    runtime.block_on(delete_exchanges(&prefix));
}

/// Text logs piped to a file or journald carry no colour codes, and a request to a path
/// that is no route leaves a line (a webhook URL mistyped at Powens is then visible).
#[test]
fn piped_text_logs_have_no_colour_codes_and_name_unknown_paths() {
    let serve = Serve::spawn(&[
        ("POWENS_RELAY_DOMAINS", "sandbox.biapi.pro=forward"),
        ("POWENS_RELAY_LOG_FORMAT", "text"),
    ]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let request =
        http::Request::post("/powens-webhooks/sandbox.biapi.pro/USER_SYNCED?token=QUERY-MARKER")
            .body(http_body_util::Full::new(axum::body::Bytes::new()))
            .unwrap();
    assert_eq!(
        runtime.block_on(super::e2e::post(serve.addr, request)).0,
        404
    );
    let (exit, logs) = serve.terminate();
    assert!(exit.success());
    let logs = logs.join("\n");
    assert!(
        !logs.contains('\u{1b}'),
        "colour codes in piped logs: {logs:?}"
    );
    assert!(
        logs.contains("no route for this path")
            && logs.contains("/powens-webhooks/sandbox.biapi.pro"),
        "{logs}"
    );
    assert!(!logs.contains("QUERY-MARKER"), "{logs}");
}

#[test]
fn consume_exits_0_on_sigterm() {
    use std::io::Read;
    broker();
    let prefix = unique("consume_term");
    let mut child = relay()
        .args([
            "consume",
            "--domain",
            "sandbox.biapi.pro",
            "--exchange-prefix",
            &prefix,
        ])
        .env("POWENS_RELAY_AMQP_URL", AMQP_URL)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("consuming from queue"), "{line}");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    assert_eq!(status.code(), Some(0), "{rest}");
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(delete_exchanges(&prefix));
}

#[test]
fn consume_says_where_the_broker_goes_and_takes_exchange_durable_as_serve_does() {
    let output = relay()
        .args(["consume", "--domain", "sandbox.biapi.pro"])
        .env_remove("POWENS_RELAY_AMQP_URL")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("POWENS_RELAY_AMQP_URL"), "{stderr}");
    // Bare, as before, or with a value, as serve's: parsed either way (the broker at
    // port 1 then refuses the connection, which is not a usage error).
    for durable in [&["--exchange-durable"][..], &["--exchange-durable", "true"]] {
        let output = relay()
            .args(["consume"])
            .args(durable)
            .args(["--domain", "sandbox.biapi.pro"])
            .env("POWENS_RELAY_AMQP_URL", "amqp://127.0.0.1:1/%2f")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("cannot connect to the broker"),
            "{durable:?}: {stderr}"
        );
    }
}

#[test]
fn a_wrong_broker_password_is_one_line_of_ours() {
    super::broker();
    let output = relay()
        .args(["serve", "--domain", "sandbox.biapi.pro=forward"])
        .env("POWENS_RELAY_LISTEN", "127.0.0.1:0")
        .env("POWENS_RELAY_DATA_DIR", crate::test_data_dir())
        .env(
            "POWENS_RELAY_AMQP_URL",
            "amqp://guest:not-the-password@127.0.0.1:5672/%2f",
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Beside the start-up line that says where the data directory is.
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.contains("data directory: "))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("error: cannot connect to the broker at amqp://"),
        "{stderr}"
    );
    assert!(lines[0].contains("ACCESS_REFUSED"), "{stderr}");
    assert!(!stderr.contains("not-the-password"));
}

#[test]
fn help_shows_no_example_the_flags_would_refuse() {
    for command in ["serve", "dispatch", "consume"] {
        let output = relay().args([command, "--help"]).output().unwrap();
        assert!(output.status.success());
        let help = String::from_utf8_lossy(&output.stdout);
        // A URL with a password is refused on the command line: no example shows one.
        assert!(!help.contains("user:pass"), "{command}: {help}");
        assert!(help.contains("POWENS_RELAY_AMQP_URL"), "{command}: {help}");
    }
}

#[test]
fn a_reader_that_stops_early_is_not_a_crash() {
    use std::io::Write;
    // `powens-relay sign … | head -c 0`: the reader is gone before the signature is
    // written (its body comes from stdin, sent only once stdout is closed).
    let mut child = relay()
        .args(["sign", "--endpoint", "/e", "--date", "2022-06-27T11:08:52Z"])
        .env("POWENS_WEBHOOK_SECRET", "s")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"{}").unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
