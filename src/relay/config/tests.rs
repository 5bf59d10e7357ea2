//! Unit tests of the configuration.

use std::time::Duration;

use super::*;
use crate::axum::DomainPolicy;
use crate::domain::Domain;
use crate::relay::broker::Exchanges;
use crate::relay::config::keys::{KEYS, Key};
use crate::relay::config::value::Value;
use crate::relay::publish::Unroutable;

pub(super) fn invalid_keys(text: &str, overrides: &Overrides) -> Vec<String> {
    match RelayConfig::from_toml(text, overrides) {
        Err(ConfigError::Invalid { problems }) => problems.into_iter().map(|p| p.key).collect(),
        other => panic!("expected invalid keys, got {other:?}"),
    }
}

/// A new file holding `secret`, for `file:` references.
pub(super) fn secret_file(test: &str, secret: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("powens-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("secret");
    std::fs::write(&path, secret).unwrap();
    path
}

pub(super) const ONE_DOMAIN: &str = "[domains.\"budgea.biapi.pro\"]\nmode = \"forward\"\n";

#[test]
fn defaults_apply_to_a_minimal_file() {
    let config = RelayConfig::from_toml(ONE_DOMAIN, &Overrides::default()).unwrap();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert!(config.amqp_urls().is_empty());
    assert_eq!(&config.broker.exchanges, &Exchanges::default());
    assert_eq!(config.webhook.webhooks.body_limit(), 32 * 1024 * 1024);
    assert_eq!(config.publisher.unroutable, Unroutable::Reject);
    assert_eq!(config.publisher.publish_timeout, Duration::from_secs(5));
    assert_eq!(config.broker.connect_timeout, Duration::from_secs(3));
    assert_eq!(config.broker.reconnect_max_delay, Duration::from_secs(1));
    assert_eq!(config.webhook.max_in_flight, 1024);
    assert_eq!(config.server.max_connections, 4096);
    assert_eq!(config.server.read_timeout, Duration::from_secs(30));
    assert_eq!(config.server.max_header_bytes, 16384);
    assert_eq!(config.log_format, LogFormat::Text);
    assert_eq!(
        config
            .broker
            .exchanges
            .name(crate::amq::TealExchange::PowensDomainWebhooks),
        "powens_domain_webhooks"
    );
    assert!(matches!(
        config.webhook.webhooks.domains().values().next(),
        Some(DomainPolicy::Forward)
    ));
}

#[test]
fn flags_override_the_file_key_by_key() {
    let text = format!("listen = \"127.0.0.1:1\"\nexchange_prefix = \"a_\"\n{ONE_DOMAIN}");
    let overrides = Overrides::new()
        .with("listen", "127.0.0.1:2")
        .with("body_limit_bytes", 10u64);
    let config = RelayConfig::from_toml(&text, &overrides).unwrap();
    assert_eq!(config.server.listen.port(), 2);
    assert_eq!(&config.broker.exchanges.prefix, "a_");
    assert_eq!(config.webhook.webhooks.body_limit(), 10);
}

#[test]
fn every_invalid_key_is_named_at_once() {
    let text = r#"
listen = "localhost"
amqp_url = "http://example"
public_path_prefix = "hooks/"
publish_timeout_secs = 0

[domains."example.com"]
secrets = ["env:X"]

[domains."budgea.biapi.pro"]
secrets = ["hunter2", "env:POWENS_TEST_SURELY_UNSET_VARIABLE"]

[domains."forward.biapi.pro"]
mode = "forward"
secrets = ["env:Y"]
"#;
    let keys = invalid_keys(text, &Overrides::default());
    assert_eq!(
        keys,
        [
            "listen",
            "amqp_url",
            "public_path_prefix",
            "publish_timeout_secs",
            "domains.\"budgea.biapi.pro\".secrets[0]",
            "domains.\"budgea.biapi.pro\".secrets[1]",
            "domains.\"example.com\"",
            "domains.\"forward.biapi.pro\".secrets",
        ]
    );
}

#[test]
fn limits_out_of_range_are_named() {
    let text = format!(
        "max_in_flight = 0\nmax_connections = 0\nmax_header_bytes = 100\n\
         read_timeout_secs = 0\nconnect_timeout_secs = 0\nreconnect_max_delay_secs = 0\n\
         {ONE_DOMAIN}"
    );
    let mut keys = invalid_keys(&text, &Overrides::default());
    keys.sort();
    assert_eq!(
        keys,
        [
            "connect_timeout_secs",
            "max_connections",
            "max_header_bytes",
            "max_in_flight",
            "read_timeout_secs",
            "reconnect_max_delay_secs",
        ]
    );
}

#[test]
fn reloading_secrets_reads_files_again_and_names_what_cannot_be_read() {
    let file = secret_file("reload", "old");
    let text = format!(
        "[domains.\"budgea.biapi.pro\"]\nsecrets = [\"file:{}\"]\n{}",
        file.display(),
        "[domains.\"forward.biapi.pro\"]\nmode = \"forward\"\n"
    );
    let config = RelayConfig::from_toml(&text, &Overrides::default()).unwrap();
    let signs_with = |config: &RelayConfig, secret: &str| {
        let domains = config.webhook.webhooks.domains();
        let Some(DomainPolicy::Verify(verifier)) =
            domains.get(&Domain::parse("budgea.biapi.pro").unwrap())
        else {
            panic!("no verifier")
        };
        let signature =
            crate::signature::sign_parts(&crate::secret::Secret::new(secret).unwrap(), &[b"x"]);
        verifier
            .verify_parts(&[b"x"], &signature, chrono::Utc::now())
            .is_ok()
    };
    let router_view = config.clone();
    assert!(signs_with(&config, "old"));

    std::fs::write(&file, "new\n").unwrap();
    assert_eq!(
        config.secrets.reload().unwrap(),
        2,
        "the forward domain stays"
    );
    // Every clone (the router's state) sees the new key ring.
    assert!(signs_with(&router_view, "new"));
    assert!(!signs_with(&router_view, "old"));

    std::fs::remove_file(&file).unwrap();
    match config.secrets.reload() {
        Err(ConfigError::Invalid { problems }) => {
            assert_eq!(problems.len(), 1);
            assert_eq!(problems[0].key, "domains.\"budgea.biapi.pro\".secrets[0]");
        }
        other => panic!("expected the unreadable secret named, got {other:?}"),
    }
    assert!(signs_with(&router_view, "new"), "the key rings in use stay");
}

#[test]
fn messages_never_quote_an_inline_secret_or_the_amqp_password() {
    let text = "amqp_url = \"amqp://u:pa55word@[bad\"\n[domains.\"budgea.biapi.pro\"]\nsecrets = [\"hunter2\"]\n";
    let err = RelayConfig::from_toml(text, &Overrides::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("secrets[0]: must be env:NAME or file:PATH"),
        "{text}"
    );
    assert!(
        !text.contains("hunter2") && !text.contains("pa55word"),
        "{text}"
    );

    let err = RelayConfig::from_toml("listen = \"hunter2\n", &Overrides::default()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("line 1"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn unknown_keys_are_refused_all_at_once() {
    let text = format!("lisen = \"x\"\nbody_limit = 1\n{ONE_DOMAIN}");
    let mut keys = invalid_keys(&text, &Overrides::default());
    keys.sort();
    assert_eq!(keys, ["body_limit", "lisen"]);
    let err = RelayConfig::from_toml(&text, &Overrides::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("lisen: is not a configuration key (in <inline>); did you mean `listen`?"),
        "{err}"
    );
    // Not a typo of any key: no suggestion.
    assert!(
        err.to_string()
            .contains("body_limit: is not a configuration key (in <inline>)\n"),
        "{err}"
    );
}

#[test]
fn values_of_the_wrong_type_are_named() {
    let text = format!(
        "max_in_flight = \"many\"\nexchange_durable = \"yes\"\nunroutable = \"drop\"\n\
         body_limit_bytes = -1\n{ONE_DOMAIN}"
    );
    let mut keys = invalid_keys(&text, &Overrides::default());
    keys.sort();
    assert_eq!(
        keys,
        [
            "body_limit_bytes",
            "exchange_durable",
            "max_in_flight",
            "unroutable"
        ]
    );
}

#[test]
fn the_example_file_is_valid_but_for_its_secrets_absent_here() {
    let text = include_str!("../../../relay.example.toml");
    let problems = match RelayConfig::from_toml(text, &Overrides::default()) {
        Err(ConfigError::Invalid { problems }) => problems,
        other => panic!("expected only secret problems, got {other:?}"),
    };
    let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "domains.\"budgea.biapi.pro\".secrets[0]",
            "domains.\"budgea.biapi.pro\".secrets[1]"
        ]
    );
}

#[test]
fn the_nodes_of_a_cluster_come_as_a_file_list_or_a_comma_separated_flag() {
    let shown = |config: &RelayConfig| -> Vec<String> {
        config.amqp_urls().iter().map(ToString::to_string).collect()
    };
    let nodes = ["amqp://127.0.0.1:5681/%2f", "amqp://127.0.0.1:5682/%2f"];
    let text = format!(
        "amqp_url = [\"{}\", \"{}\"]\n{ONE_DOMAIN}",
        nodes[0], nodes[1]
    );
    let from_file = RelayConfig::from_toml(&text, &Overrides::default()).unwrap();
    assert_eq!(shown(&from_file), nodes);
    assert_eq!(from_file.broker.broker().unwrap().nodes().len(), 2);
    let flag = Overrides::new().with("amqp_url", format!("{}, {}", nodes[1], nodes[0]));
    let from_flag = RelayConfig::from_toml(ONE_DOMAIN, &flag).unwrap();
    assert_eq!(shown(&from_flag), [nodes[1], nodes[0]]);
    assert_eq!(from_flag.amqp_urls().first().unwrap().to_string(), nodes[1]);

    // A bad entry is named by its position, never quoted; a list of anything but
    // text is refused.
    let bad = Overrides::new().with("amqp_url", "amqp://h1/%2f,amqp//u:s3cr3t@h2");
    match RelayConfig::from_toml(ONE_DOMAIN, &bad) {
        Err(ConfigError::Invalid { problems }) => {
            assert_eq!(problems.len(), 1);
            assert_eq!(problems[0].key, "amqp_url");
            assert_eq!(
                problems[0].message,
                "URL 2 of the list must start with amqp:// or amqps://"
            );
        }
        other => panic!("expected the second URL refused, got {other:?}"),
    }
    let text = format!("amqp_url = [\"amqp://h1/%2f\", 5672]\n{ONE_DOMAIN}");
    assert_eq!(invalid_keys(&text, &Overrides::default()), ["amqp_url"]);
    assert!(
        RelayConfig::from_toml(ONE_DOMAIN, &Overrides::default())
            .unwrap()
            .broker
            .broker()
            .is_none()
    );
}

// The keys table.

#[test]
fn every_default_fits_its_kind() {
    for key in KEYS {
        let Some(default) = key.default else { continue };
        assert!(Value::from(default).fit(key.kind).is_ok(), "{}", key.name);
    }
}

/// The configuration table of `docs/operations.md`, row by row: its key, flag / variable and
/// default columns are what [`KEYS`] says, and it has no row for a key that is not.
#[test]
fn the_readme_configuration_table_matches_the_keys() {
    let readme = include_str!("../../../docs/operations.md");
    let rows: Vec<Vec<&str>> = readme
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| l.split(" | ").collect())
        .filter(|cells: &Vec<&str>| cells.len() >= 4 && cells[1].contains("POWENS_RELAY_"))
        .collect();
    for key in KEYS {
        let row = rows
            .iter()
            .find(|r| r[0] == format!("| `{}`", key.name))
            .unwrap_or_else(|| panic!("docs/operations.md has no row for {}", key.name));
        assert_eq!(row[1], format!("`{}` / `{}`", key.flag(), key.env()));
        let default = match key.default {
            Some("") => "`\"\"`".to_owned(),
            Some(d) => format!("`{d}`"),
            None => "none".to_owned(),
        };
        assert!(
            row[2].starts_with(&default),
            "{}: docs/operations.md says {:?}, the key {default}",
            key.name,
            row[2]
        );
    }
    for row in &rows {
        let documented = KEYS.iter().any(|k| row[0] == format!("| `{}`", k.name))
            || row[1].starts_with("`--domain ");
        assert!(
            documented,
            "docs/operations.md documents an unknown key: {}",
            row[0]
        );
    }
    assert_eq!(rows.len(), KEYS.len() + 1, "one row per key, and domains");
}

#[test]
fn names_flags_and_variables_derive_from_the_key() {
    let key = Key::named("max_in_flight").unwrap();
    assert_eq!(key.flag(), "--max-in-flight");
    assert_eq!(key.env(), "POWENS_RELAY_MAX_IN_FLIGHT");
    let mut names: Vec<_> = KEYS.iter().map(|k| k.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), KEYS.len(), "a key is defined twice");
}
