//! `powens-relay sign` and `verify` as SPEC §4 describes them.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const ENDPOINT: &str = "/v1/webhook-listener";
const DATE: &str = "2022-06-27T11:08:52.577831Z";
const BODY: &str = r#"{"id": 1, "state": "done"}"#;
const DOCS_SIGNATURE: &str = "GVtud1v5GUAqTGvCgbxdjk+/+KTNLYKdQe4j88dxTbo=";

/// Runs the binary with `args`, the secret (if any) in the environment, `stdin` as input.
fn run(args: &[&str], secret: Option<&str>, stdin: &[u8]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_powens-relay"));
    command
        .args(args)
        .env_remove("POWENS_WEBHOOK_SECRET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(secret) = secret {
        command.env("POWENS_WEBHOOK_SECRET", secret);
    }
    let mut child = command.spawn().unwrap();
    // A command that fails before reading its input closes the pipe: that is its answer,
    // not a test failure.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

/// `verify` of the docs example's endpoint and date with `signature`, more `extra`
/// arguments, `secret` in the environment and `body` on stdin.
fn run_verify(signature: &str, extra: &[&str], secret: &str, body: &[u8]) -> Output {
    let mut args = vec![
        "verify",
        "--endpoint",
        ENDPOINT,
        "--date",
        DATE,
        "--signature",
        signature,
    ];
    args.extend_from_slice(extra);
    run(&args, Some(secret), body)
}

/// The command failed as a usage error (exit 2) saying `needle` on stderr.
fn expect_usage_error(out: &Output, needle: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(needle), "{stderr}");
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn sign_reads_the_body_from_stdin_or_a_file() {
    let out = run(
        &["sign", "--endpoint", ENDPOINT, "--date", DATE],
        Some("secret_key"),
        BODY.as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{DOCS_SIGNATURE}\n"));

    let dir = tempdir("sign");
    let body_file = dir.join("body.json");
    std::fs::write(&body_file, BODY).unwrap();
    let secret_file = dir.join("secret");
    std::fs::write(&secret_file, "secret_key\n").unwrap();
    let out = run(
        &[
            "sign",
            "--method",
            "post",
            "--endpoint",
            ENDPOINT,
            "--date",
            DATE,
            "--body-file",
            body_file.to_str().unwrap(),
            "--secret-file",
            secret_file.to_str().unwrap(),
        ],
        None,
        b"ignored",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{DOCS_SIGNATURE}\n"));
}

#[test]
fn verify_says_valid_or_invalid_with_a_reason() {
    let verify = |signature: &str, extra: &[&str], body: &str| {
        run_verify(signature, extra, "secret_key", body.as_bytes())
    };
    let out = verify(DOCS_SIGNATURE, &[], BODY);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "valid\n".to_owned())
    );

    let out = verify(DOCS_SIGNATURE, &[], "{}");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "invalid: signature does not match any key\n"
    );

    let out = verify("GVtud1v5", &[], BODY);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "invalid: BI-Signature decodes to 6 bytes; an HMAC-SHA256 signature has 32\n"
    );

    // The 2022 date is years old: refused with --max-age, accepted without.
    let out = verify(DOCS_SIGNATURE, &["--max-age", "300"], BODY);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).starts_with("invalid: BI-Signature-Date is "),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stdout).contains("more than the 300 s allowed"));
}

#[test]
fn a_missing_secret_is_a_usage_error_that_says_where_to_put_it() {
    let out = run(
        &["sign", "--endpoint", ENDPOINT, "--date", DATE],
        None,
        BODY.as_bytes(),
    );
    expect_usage_error(&out, "POWENS_WEBHOOK_SECRET");
    let out = run(
        &["sign", "--endpoint", ENDPOINT, "--date", DATE],
        Some(""),
        BODY.as_bytes(),
    );
    expect_usage_error(&out, "is empty");
}

#[test]
fn sign_refuses_a_date_powens_would_not_send() {
    let out = run(
        &[
            "sign",
            "--endpoint",
            ENDPOINT,
            "--date",
            "2022-06-27T11:08:52",
        ],
        Some("k"),
        b"",
    );
    expect_usage_error(&out, "BI-Signature-Date has no timezone");
}

#[test]
fn the_secret_never_appears_in_output() {
    let secret = "recognisable-secret-value";
    let out = run_verify(DOCS_SIGNATURE, &[], secret, b"x");
    assert!(!text(&out.stdout).contains(secret) && !text(&out.stderr).contains(secret));
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("powens-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
