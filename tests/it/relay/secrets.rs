//! No secret in any output, whatever the operator typed: a table of hostile
//! configuration values, each given to `serve`, `consume` and `send` as a flag, an
//! environment variable and a TOML key, with text and JSON logs, and to the library's
//! parsers. Nothing of a password, token or HMAC secret, percent-encoded or not, may
//! appear on standard output, standard error or in a `Debug` or error text.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use powens_webhooks::relay::testing::redact_url;
use powens_webhooks::relay::{AmqpUrl, Overrides, RelayConfig};

use super::{secret_file, unique};

/// A broker URL an operator could type, and the secrets in it.
struct Hostile {
    what: &'static str,
    url: &'static str,
    secrets: &'static [&'static str],
}

const URLS: &[Hostile] = &[
    Hostile {
        what: "a list of URLs (not supported: one broker)",
        url: "amqp://guest:LISTS3CRET1@127.0.0.1:1/%2f,amqp://guest:LISTS3CRET2@127.0.0.1:5672/%2f",
        secrets: &["LISTS3CRET1", "LISTS3CRET2"],
    },
    Hostile {
        what: "an @ in the password",
        url: "amqp://guest:AT@S3CRET@127.0.0.1:1/%2f",
        secrets: &["AT@S3CRET", "S3CRET@127", "AT%40S3CRET"],
    },
    Hostile {
        what: "a percent-encoded password",
        url: "amqp://guest:PCT%40S3CRET%2F@127.0.0.1:1/%2f",
        secrets: &["PCT%40S3CRET", "PCT@S3CRET", "S3CRET%2F", "S3CRET/"],
    },
    Hostile {
        what: "a password in the query",
        url: "amqp://127.0.0.1:1/%2f?password=QUERYS3CRET",
        secrets: &["QUERYS3CRET"],
    },
    Hostile {
        what: "an IPv6 host",
        url: "amqp://guest:V6S3CRET@[::1]:1/%2f",
        secrets: &["V6S3CRET"],
    },
    Hostile {
        what: "no host",
        url: "amqp://guest:NOHOSTS3CRET@/%2f",
        secrets: &["NOHOSTS3CRET"],
    },
    Hostile {
        what: "another scheme",
        url: "http://user:HTTPS3CRET@127.0.0.1:1/",
        secrets: &["HTTPS3CRET"],
    },
    Hostile {
        what: "not a URL",
        url: "amqp//guest:MANGLEDS3CRET@127.0.0.1",
        secrets: &["MANGLEDS3CRET"],
    },
    Hostile {
        what: "the real broker with a wrong password",
        url: "amqp://guest:WRONGS3CRET@127.0.0.1:5672/%2f",
        secrets: &["WRONGS3CRET"],
    },
];

/// Runs `powens-relay` with `args` and `env` for at most `limit`, and returns what it
/// printed on both outputs.
fn run(args: &[&str], env: &[(&str, &str)], limit: Duration) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_powens-relay"))
        .args(args)
        .env_remove("POWENS_RELAY_AMQP_URL")
        .env("POWENS_RELAY_DATA_DIR", crate::test_data_dir())
        .env("RUST_LOG", "debug")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"id_webhook_data\": 1}");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() && started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn assert_hidden(printed: &str, secrets: &[&str], context: &str) {
    for secret in secrets {
        assert!(
            !printed.contains(secret),
            "{context}: {secret:?} printed:\n{printed}"
        );
    }
}

const LIMIT: Duration = Duration::from_secs(8);

#[test]
fn hostile_broker_urls_never_print_their_secrets() {
    let domain = ["--domain", "sandbox.biapi.pro=forward"];
    for case in URLS {
        let context = |how: &str| format!("{} ({how})", case.what);
        // The library: the parser, the redaction, the configuration's errors and Debug.
        match AmqpUrl::parse(case.url) {
            Ok(url) => assert_hidden(&format!("{url} {url:?}"), case.secrets, &context("parse")),
            Err(e) => assert_hidden(&format!("{e} {e:?}"), case.secrets, &context("parse")),
        }
        assert_hidden(&redact_url(case.url), case.secrets, &context("redact_url"));
        let overrides = Overrides::new()
            .with("amqp_url", case.url)
            .with_domain("sandbox.biapi.pro=forward");
        assert_hidden(
            &format!("{overrides:?}"),
            case.secrets,
            &context("Overrides"),
        );
        match RelayConfig::from_toml("", &overrides) {
            Ok(config) => assert_hidden(&format!("{config:?}"), case.secrets, &context("config")),
            Err(e) => assert_hidden(&format!("{e} {e:?}"), case.secrets, &context("config")),
        }

        for format in ["text", "json"] {
            let serve = |extra: &[&str], env: &[(&str, &str)]| {
                let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--log-format", format];
                args.extend(["--connect-timeout-secs", "1"]);
                args.extend(extra);
                run(&args, env, LIMIT)
            };
            let env = [("POWENS_RELAY_AMQP_URL", case.url)];
            let printed = serve(&domain, &env);
            assert_hidden(
                &printed,
                case.secrets,
                &context(&format!("serve, env, {format}")),
            );
            let printed = serve(&[&domain[..], &["--amqp-url", case.url]].concat(), &[]);
            assert_hidden(
                &printed,
                case.secrets,
                &context(&format!("serve, flag, {format}")),
            );
            let file = secret_file(&format!(
                "amqp_url = \"{}\"\n[domains.\"sandbox.biapi.pro\"]\nmode = \"forward\"\n",
                case.url
            ));
            let config = file.to_str().unwrap();
            let printed = serve(&["--config", config], &[]);
            assert_hidden(
                &printed,
                case.secrets,
                &context(&format!("serve, file, {format}")),
            );
        }
        let consume = ["consume", "--domain", "sandbox.biapi.pro", "--count", "1"];
        let env = [("POWENS_RELAY_AMQP_URL", case.url)];
        assert_hidden(
            &run(&consume, &env, LIMIT),
            case.secrets,
            &context("consume, env"),
        );
        let flag = [&consume[..], &["--amqp-url", case.url]].concat();
        assert_hidden(
            &run(&flag, &[], LIMIT),
            case.secrets,
            &context("consume, flag"),
        );
    }
}

#[test]
fn send_never_prints_the_hmac_secret_or_a_password_in_its_url() {
    let secrets = ["HMACS3CRET", "SENDS3CRET"];
    for url in [
        "http://user:SENDS3CRET@127.0.0.1:1/powens-webhook/budgea.biapi.pro/USER_SYNCED",
        "https://user:SENDS3CRET@127.0.0.1:1/powens-webhook/budgea.biapi.pro/USER_SYNCED",
        "htp:/user:SENDS3CRET@",
    ] {
        let env = [("POWENS_WEBHOOK_SECRET", "HMACS3CRET")];
        let printed = run(&["send", url], &env, LIMIT);
        assert_hidden(&printed, &secrets, url);
        assert!(!printed.is_empty(), "{url}: send said nothing");
    }
}

/// A secret typed in a key that does not take one, as a flag, a variable and in the
/// file: refused, the key named, the value never quoted.
#[test]
fn a_secret_in_the_wrong_key_is_refused_without_being_quoted() {
    const SECRET: &str = "WRONGKEYS3CRET";
    let keys = [
        "listen",
        "exchange_prefix",
        "exchange_durable",
        "unroutable",
        "public_path_prefix",
        "body_limit_bytes",
        "max_in_flight",
        "log_format",
    ];
    let domain = ["--domain", "sandbox.biapi.pro=forward"];
    for key in keys {
        let flag = format!("--{}", key.replace('_', "-"));
        let value = format!("{SECRET}!");
        let printed = run(
            &[&["serve", &flag, &value][..], &domain].concat(),
            &[],
            LIMIT,
        );
        assert_hidden(&printed, &[SECRET], &flag);
        assert!(printed.contains(&format!("{key}: ")), "{flag}: {printed}");
        let variable = format!("POWENS_RELAY_{}", key.to_ascii_uppercase());
        let printed = run(
            &[&["serve"][..], &domain].concat(),
            &[(&variable, &value)],
            LIMIT,
        );
        assert_hidden(&printed, &[SECRET], &variable);
        assert!(
            printed.contains(&format!("{key}: ")),
            "{variable}: {printed}"
        );
    }
    // In the file: the same keys, an unknown key, an inline secret in the domains.
    let mut toml: String = keys
        .iter()
        .map(|k| format!("{k} = \"{SECRET}!\"\n"))
        .collect();
    toml.push_str(&format!(
        "password = \"{SECRET}\"\n[domains.\"budgea.biapi.pro\"]\nsecrets = [\"{SECRET}\"]\n"
    ));
    let file = secret_file(&toml);
    let printed = run(&["serve", "--config", file.to_str().unwrap()], &[], LIMIT);
    assert_hidden(&printed, &[SECRET], "the file");
    for key in keys.iter().chain(&["password", "secrets[0]"]) {
        assert!(
            printed.contains(&format!("{key}: ")),
            "{key} not named: {printed}"
        );
    }
    // An inline secret given as a domain's flag.
    let inline = format!("budgea.biapi.pro={SECRET}");
    let printed = run(&["serve", "--domain", &inline], &[], LIMIT);
    assert_hidden(&printed, &[SECRET], "--domain");
}

/// A secret file that is a directory, and secrets holding a newline: the key is named,
/// no secret printed, and a relay that starts says nothing of its secret.
#[test]
fn unreadable_and_multiline_secrets_never_print() {
    let dir = std::env::temp_dir().join(unique("secret-dir"));
    std::fs::create_dir_all(&dir).unwrap();
    let domain = format!("budgea.biapi.pro=file:{}", dir.display());
    let printed = run(&["serve", "--domain", &domain], &[], LIMIT);
    assert!(
        printed.contains("secrets[0]") && printed.contains("directory"),
        "{printed}"
    );

    let multiline = "NEWLINES3CRET1\nNEWLINES3CRET2";
    let secrets = ["NEWLINES3CRET1", "NEWLINES3CRET2"];
    for format in ["text", "json"] {
        let env = [
            ("POWENS_TEST_MULTILINE", multiline),
            (
                "POWENS_RELAY_DOMAINS",
                "budgea.biapi.pro=env:POWENS_TEST_MULTILINE",
            ),
            ("POWENS_RELAY_LOG_FORMAT", format),
            ("POWENS_RELAY_LISTEN", "127.0.0.1:0"),
        ];
        let printed = run(&["serve"], &env, Duration::from_secs(2));
        assert!(printed.contains("listening on"), "{printed}");
        assert_hidden(&printed, &secrets, format);
    }
    let env = [("POWENS_WEBHOOK_SECRET", multiline)];
    let url = "http://127.0.0.1:1/powens-webhook/budgea.biapi.pro/USER_SYNCED";
    assert_hidden(&run(&["send", url], &env, LIMIT), &secrets, "send");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A Redis URL with a password, as the callback store: refused on the command line,
/// never printed from the environment or the file, nor by `callback show`.
#[test]
fn a_redis_password_never_prints() {
    let secrets = ["REDISS3CRET"];
    let urls = [
        "redis://:REDISS3CRET@127.0.0.1:1/",
        "redis://user:REDISS3CRET@[::1]:1/0",
        "redis://:REDISS3CRET@",
        "rediss//:REDISS3CRET@host",
        "redis+sentinel://:REDISS3CRET@127.0.0.1:1,127.0.0.1:2/mymaster",
        "rediss+sentinel://user:REDISS3CRET@[::1]:1/m/0?sentinel_auth=true",
        "redis+sentinel://:REDISS3CRET@/mymaster",
        "redis+sentinel://u:REDISS3CRET@127.0.0.1:1/m?wait_replicas=x",
    ];
    let domain = [
        "--domain",
        "sandbox.biapi.pro=forward",
        "--listen",
        "127.0.0.1:0",
    ];
    for url in urls {
        for format in ["text", "json"] {
            let env = [
                ("POWENS_RELAY_CALLBACK_STORE", url),
                ("POWENS_RELAY_LOG_FORMAT", format),
            ];
            let printed = run(&[&["serve"][..], &domain].concat(), &env, LIMIT);
            assert_hidden(&printed, &secrets, &format!("serve, env, {format}: {url}"));
        }
        let printed = run(
            &[&["serve", "--callback-store", url][..], &domain].concat(),
            &[],
            LIMIT,
        );
        assert_hidden(&printed, &secrets, &format!("serve, flag: {url}"));
        let file = secret_file(&format!("callback_store = \"{url}\"\n"));
        let show = [
            "callback",
            "show",
            "--state",
            "s",
            "--config",
            file.to_str().unwrap(),
        ];
        assert_hidden(
            &run(&show, &[], LIMIT),
            &secrets,
            &format!("callback show: {url}"),
        );
    }
}
