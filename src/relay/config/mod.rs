//! The relay's configuration: a TOML file, overridden key by key by flags and
//! `POWENS_RELAY_*` environment variables, validated as a whole before anything starts.

mod overrides;
mod values;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use overrides::Overrides;
use overrides::parse_domain_flag;
use values::check_path_prefix;
pub use values::{AmqpUrl, SecretRef};

use crate::amq::TealExchange;
use crate::domain::Domain;
use crate::keyring::KeyRing;
use crate::verify::{FreshnessWindow, Verifier};

/// Default `listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default `body_limit_bytes`: 32 MiB, since first syncs can be several MB.
pub const DEFAULT_BODY_LIMIT: usize = 32 * 1024 * 1024;
/// Default `signature_max_age_secs`.
pub const DEFAULT_MAX_AGE_SECS: u64 = 15 * 60;
/// Default `signature_max_ahead_secs`.
pub const DEFAULT_MAX_AHEAD_SECS: u64 = 120;
/// Default `publish_timeout_secs`.
pub const DEFAULT_PUBLISH_TIMEOUT_SECS: u64 = 5;
/// Default `connect_timeout_secs`.
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 3;
/// Default `reconnect_max_delay_secs`.
pub const DEFAULT_RECONNECT_MAX_DELAY_SECS: u64 = 1;
/// Default `max_in_flight`.
pub const DEFAULT_MAX_IN_FLIGHT: u64 = 1024;
/// Default `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: u64 = 4096;
/// Default `read_timeout_secs`.
pub const DEFAULT_READ_TIMEOUT_SECS: u64 = 30;
/// Default `max_header_bytes`.
pub const DEFAULT_MAX_HEADER_BYTES: u64 = 16 * 1024;

/// How a domain's webhooks are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The HMAC headers are required and verified; anything else is refused (401).
    #[default]
    Verify,
    /// TeaL's behaviour: HMAC headers or a bearer token are required and forwarded
    /// unverified, for consumers to check.
    Forward,
}

/// What to answer when the broker returns a message no queue is bound to receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Unroutable {
    /// 503: nobody would have received it, so Powens should retry.
    #[default]
    Reject,
    /// 204, as TeaL does: the message is dropped and a warning logged.
    Accept,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The TOML file, as written. Unknown keys are errors, so a typo is not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    amqp_url: Option<String>,
    exchange_prefix: Option<String>,
    exchange_durable: Option<bool>,
    public_path_prefix: Option<String>,
    body_limit_bytes: Option<u64>,
    signature_max_age_secs: Option<u64>,
    signature_max_ahead_secs: Option<u64>,
    publish_timeout_secs: Option<u64>,
    connect_timeout_secs: Option<u64>,
    reconnect_max_delay_secs: Option<u64>,
    max_in_flight: Option<u64>,
    max_connections: Option<u64>,
    read_timeout_secs: Option<u64>,
    max_header_bytes: Option<u64>,
    unroutable: Option<Unroutable>,
    log_format: Option<LogFormat>,
    #[serde(default)]
    domains: BTreeMap<String, FileDomain>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDomain {
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    secrets: Vec<String>,
}

/// A domain's settings, secrets resolved.
#[derive(Debug, Clone)]
pub enum DomainPolicy {
    /// Verify the HMAC with this verifier (its key ring and freshness window).
    Verify(Verifier),
    /// Forward unverified.
    Forward,
}

/// The relay's validated configuration.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The broker; `None` writes messages to standard output.
    pub amqp_url: Option<AmqpUrl>,
    /// Prefix of the exchange names.
    pub exchange_prefix: String,
    /// Declare exchanges durable.
    pub exchange_durable: bool,
    /// Path prefix stripped by the reverse proxy ("" or `/…` without a trailing `/`).
    pub public_path_prefix: String,
    /// Largest accepted body, in bytes.
    pub body_limit: usize,
    /// BI-Signature-Date freshness.
    pub freshness: FreshnessWindow,
    /// How long a publish may wait for the broker's confirm.
    pub publish_timeout: Duration,
    /// How long one attempt to connect to the broker may take.
    pub connect_timeout: Duration,
    /// The longest wait between two attempts to reconnect to the broker.
    pub reconnect_max_delay: Duration,
    /// Most webhook requests handled at once; more get 503 with `Retry-After`.
    pub max_in_flight: usize,
    /// Most open client connections; more wait in the listen backlog.
    pub max_connections: usize,
    /// How long reading a request's head may take (also how long an idle keep-alive
    /// connection is kept), and, separately, reading its body.
    pub read_timeout: Duration,
    /// Largest request head (request line and headers), in bytes; more gets 431.
    pub max_header_bytes: usize,
    /// Answer to an unroutable message.
    pub unroutable: Unroutable,
    /// Log format.
    pub log_format: LogFormat,
    /// The domains served; any other gets 404.
    pub domains: BTreeMap<Domain, DomainPolicy>,
    /// Where each verify-mode domain's secrets come from (with the configuration key
    /// that named them), for [`RelayConfig::reload_secrets`].
    pub secret_refs: BTreeMap<Domain, (String, Vec<SecretRef>)>,
}

/// One thing wrong with the configuration, naming its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key, e.g. `domains."budgea.biapi.pro".secrets[0]`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("the configuration file {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong and where, without quoting the file.
        message: String,
    },
    /// One or more keys are invalid.
    #[error("invalid configuration:{}", list(problems))]
    Invalid {
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("\n  {}: {}", p.key, p.message))
        .collect()
}

impl RelayConfig {
    /// Reads the file named by `overrides.config` (if any), applies the overrides and
    /// validates everything, secrets included.
    ///
    /// # Errors
    /// A [`ConfigError`] listing every invalid key.
    pub fn load(overrides: &Overrides) -> Result<Self, ConfigError> {
        let file = match &overrides.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        Self::build(file, overrides)
    }

    /// Parses a TOML document (as a file's content) and applies `overrides`.
    ///
    /// # Errors
    /// As [`RelayConfig::load`].
    pub fn from_toml(text: &str, overrides: &Overrides) -> Result<Self, ConfigError> {
        Self::build(parse_toml(text, Path::new("<inline>"))?, overrides)
    }

    fn build(file: FileConfig, o: &Overrides) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut problem = |key: &str, message: String| {
            problems.push(Problem {
                key: key.to_owned(),
                message,
            });
        };

        let listen_text = o
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
            problem(
                "listen",
                "must be an IP address and port, e.g. 127.0.0.1:8080".into(),
            );
            SocketAddr::from(([127, 0, 0, 1], 0))
        });

        let amqp_url = match o.amqp_url.clone().or(file.amqp_url) {
            Some(text) if !text.is_empty() => AmqpUrl::parse(&text)
                .map_err(|m| problem("amqp_url", m))
                .ok(),
            _ => None,
        };

        let exchange_prefix = o
            .exchange_prefix
            .clone()
            .or(file.exchange_prefix)
            .unwrap_or_default();
        let longest = TealExchange::ALL
            .iter()
            .map(|e| e.base_name().len())
            .max()
            .unwrap_or(0);
        if exchange_prefix.len() + longest > 255 {
            problem(
                "exchange_prefix",
                "is too long: exchange names are at most 255 bytes".into(),
            );
        }
        if !exchange_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        {
            problem(
                "exchange_prefix",
                "may hold only letters, digits and - _ . :".into(),
            );
        }

        let public_path_prefix = o
            .public_path_prefix
            .clone()
            .or(file.public_path_prefix)
            .unwrap_or_default();
        if let Err(m) = check_path_prefix(&public_path_prefix) {
            problem("public_path_prefix", m);
        }

        let body_limit = o
            .body_limit_bytes
            .or(file.body_limit_bytes)
            .map_or(Ok(DEFAULT_BODY_LIMIT), |n| {
                usize::try_from(n)
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("must be between 1 and the address space")
            })
            .unwrap_or_else(|m| {
                problem("body_limit_bytes", m.into());
                DEFAULT_BODY_LIMIT
            });

        let mut seconds = |key: &str, value: Option<u64>, default: u64, min: u64| {
            let secs = value.unwrap_or(default);
            // Durations beyond a century are certainly mistakes, and keep chrono in range.
            if secs < min || secs > 100 * 365 * 86_400 {
                problem(key, format!("must be between {min} and 3153600000 seconds"));
            }
            Duration::from_secs(secs)
        };
        let max_age = seconds(
            "signature_max_age_secs",
            o.signature_max_age_secs.or(file.signature_max_age_secs),
            DEFAULT_MAX_AGE_SECS,
            0,
        );
        let max_ahead = seconds(
            "signature_max_ahead_secs",
            o.signature_max_ahead_secs.or(file.signature_max_ahead_secs),
            DEFAULT_MAX_AHEAD_SECS,
            0,
        );
        let publish_timeout = seconds(
            "publish_timeout_secs",
            o.publish_timeout_secs.or(file.publish_timeout_secs),
            DEFAULT_PUBLISH_TIMEOUT_SECS,
            1,
        );
        let connect_timeout = seconds(
            "connect_timeout_secs",
            o.connect_timeout_secs.or(file.connect_timeout_secs),
            DEFAULT_CONNECT_TIMEOUT_SECS,
            1,
        );
        let reconnect_max_delay = seconds(
            "reconnect_max_delay_secs",
            o.reconnect_max_delay_secs.or(file.reconnect_max_delay_secs),
            DEFAULT_RECONNECT_MAX_DELAY_SECS,
            1,
        );
        let read_timeout = seconds(
            "read_timeout_secs",
            o.read_timeout_secs.or(file.read_timeout_secs),
            DEFAULT_READ_TIMEOUT_SECS,
            1,
        );
        let freshness = FreshnessWindow::new(max_age, max_ahead);

        let mut count = |key: &str, value: Option<u64>, default: u64, min: u64, max: u64| {
            let n = value.unwrap_or(default);
            if n < min || n > max {
                problem(key, format!("must be between {min} and {max}"));
            }
            usize::try_from(n.clamp(min, max)).unwrap_or(usize::MAX)
        };
        let max_in_flight = count(
            "max_in_flight",
            o.max_in_flight.or(file.max_in_flight),
            DEFAULT_MAX_IN_FLIGHT,
            1,
            1_000_000,
        );
        let max_connections = count(
            "max_connections",
            o.max_connections.or(file.max_connections),
            DEFAULT_MAX_CONNECTIONS,
            1,
            1_000_000,
        );
        let max_header_bytes = count(
            "max_header_bytes",
            o.max_header_bytes.or(file.max_header_bytes),
            DEFAULT_MAX_HEADER_BYTES,
            1024,
            1024 * 1024,
        );

        // Keyed by the lower-cased name: DNS is case-insensitive, so two spellings in
        // the file are one domain configured twice, and a flag replaces the file's entry.
        let mut domain_specs: BTreeMap<String, (String, FileDomain)> = BTreeMap::new();
        for (name, d) in file.domains {
            let key = format!("domains.{name:?}");
            if domain_specs
                .insert(name.to_ascii_lowercase(), (key.clone(), d))
                .is_some()
            {
                problem(
                    &key,
                    "the same domain is configured twice (domains are case-insensitive)".into(),
                );
            }
        }
        for spec in &o.domains {
            match parse_domain_flag(spec) {
                Ok((name, d)) => {
                    let key = format!("--domain {name}");
                    domain_specs.insert(name.to_ascii_lowercase(), (key, d));
                }
                Err(m) => problem("--domain", m),
            }
        }
        if domain_specs.is_empty() {
            problem(
                "domains",
                "no domain is configured: add [domains.\"<name>.biapi.pro\"] to the file or --domain".into(),
            );
        }
        let mut domains = BTreeMap::new();
        let mut secret_refs = BTreeMap::new();
        for (name, (key, spec)) in domain_specs {
            let domain = match Domain::parse(&name) {
                Ok(d) => d,
                Err(e) => {
                    problem(&key, e.to_string());
                    continue;
                }
            };
            let policy = match spec.mode {
                Mode::Forward => {
                    if !spec.secrets.is_empty() {
                        problem(
                            &format!("{key}.secrets"),
                            "mode \"forward\" does not verify: remove the secrets or use mode \"verify\"".into(),
                        );
                    }
                    DomainPolicy::Forward
                }
                Mode::Verify => {
                    let mut refs = Vec::new();
                    for (i, text) in spec.secrets.iter().enumerate() {
                        match SecretRef::parse(text) {
                            Ok(r) => refs.push((i, r)),
                            Err(m) => problem(&format!("{key}.secrets[{i}]"), m),
                        }
                    }
                    if spec.secrets.is_empty() {
                        problem(
                            &format!("{key}.secrets"),
                            "mode \"verify\" needs at least one secret (env:NAME or file:PATH)"
                                .into(),
                        );
                    }
                    let verifier = verifier(
                        &domain,
                        &key,
                        refs.iter().map(|(i, r)| (*i, r)),
                        freshness,
                        &mut problem,
                    );
                    let refs = refs.into_iter().map(|(_, r)| r).collect();
                    secret_refs.insert(domain.clone(), (key, refs));
                    match verifier {
                        Some(verifier) => DomainPolicy::Verify(verifier),
                        None => continue,
                    }
                }
            };
            domains.insert(domain, policy);
        }

        if !problems.is_empty() {
            return Err(ConfigError::Invalid { problems });
        }
        Ok(Self {
            listen,
            amqp_url,
            exchange_prefix,
            exchange_durable: o
                .exchange_durable
                .or(file.exchange_durable)
                .unwrap_or(false),
            public_path_prefix,
            body_limit,
            freshness,
            publish_timeout,
            connect_timeout,
            reconnect_max_delay,
            max_in_flight,
            max_connections,
            read_timeout,
            max_header_bytes,
            unroutable: o.unroutable.or(file.unroutable).unwrap_or_default(),
            log_format: o.log_format.or(file.log_format).unwrap_or_default(),
            domains,
            secret_refs,
        })
    }

    /// Reads every secret again (a `file:` secret may have been rotated) and returns
    /// the domains with their new key rings, or every secret that cannot be read; the
    /// rest of the configuration is unchanged. `serve` does this on SIGHUP.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming each secret that cannot be read.
    pub fn reload_secrets(&self) -> Result<BTreeMap<Domain, DomainPolicy>, ConfigError> {
        let mut problems = Vec::new();
        let mut problem = |key: &str, message: String| {
            problems.push(Problem {
                key: key.to_owned(),
                message,
            });
        };
        let mut domains = self.domains.clone();
        for (domain, (key, refs)) in &self.secret_refs {
            let refs = refs.iter().enumerate();
            if let Some(verifier) = verifier(domain, key, refs, self.freshness, &mut problem) {
                domains.insert(domain.clone(), DomainPolicy::Verify(verifier));
            }
        }
        if problems.is_empty() {
            Ok(domains)
        } else {
            Err(ConfigError::Invalid { problems })
        }
    }

    /// The name of the exchange webhooks are published on.
    pub fn webhook_exchange(&self) -> String {
        TealExchange::PowensDomainWebhooks.name(&self.exchange_prefix)
    }
}

/// The verifier of `domain` with the secrets of `refs` (numbered as in the
/// configuration), or `None` after reporting each one that cannot be read (under `key`).
fn verifier<'r>(
    domain: &Domain,
    key: &str,
    refs: impl IntoIterator<Item = (usize, &'r SecretRef)>,
    freshness: FreshnessWindow,
    problem: &mut impl FnMut(&str, String),
) -> Option<Verifier> {
    let mut secrets = Vec::new();
    let mut unreadable = false;
    for (i, r) in refs {
        match r.resolve() {
            Ok(secret) => secrets.push(secret),
            Err(m) => {
                unreadable = true;
                problem(&format!("{key}.secrets[{i}]"), m);
            }
        }
    }
    if unreadable {
        return None;
    }
    let mut secrets = secrets.into_iter();
    let first = KeyRing::new(secrets.next()?);
    let ring = secrets.fold(first, |ring, s| ring.with_key(s, None));
    Some(
        Verifier::new(ring)
            .for_domain(domain.clone())
            .with_freshness(freshness),
    )
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_toml(&text, path)
}

fn parse_toml(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| {
        // toml's Display quotes the offending line, which could hold a secret pasted in
        // by mistake: give the message and the line number only.
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        let message = match line {
            Some(line) => format!("line {line}: {}", e.message().trim_end()),
            None => e.message().trim_end().to_owned(),
        };
        ConfigError::Parse {
            path: path.to_owned(),
            message,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_keys(text: &str, overrides: &Overrides) -> Vec<String> {
        match RelayConfig::from_toml(text, overrides) {
            Err(ConfigError::Invalid { problems }) => problems.into_iter().map(|p| p.key).collect(),
            other => panic!("expected invalid keys, got {other:?}"),
        }
    }

    const ONE_DOMAIN: &str = "[domains.\"budgea.biapi.pro\"]\nmode = \"forward\"\n";

    #[test]
    fn defaults_apply_to_a_minimal_file() {
        let config = RelayConfig::from_toml(ONE_DOMAIN, &Overrides::default()).unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert!(config.amqp_url.is_none());
        assert_eq!(config.exchange_prefix, "");
        assert!(!config.exchange_durable);
        assert_eq!(config.body_limit, DEFAULT_BODY_LIMIT);
        assert_eq!(config.unroutable, Unroutable::Reject);
        assert_eq!(config.publish_timeout, Duration::from_secs(5));
        assert_eq!(config.connect_timeout, Duration::from_secs(3));
        assert_eq!(config.reconnect_max_delay, Duration::from_secs(1));
        assert_eq!(config.max_in_flight, 1024);
        assert_eq!(config.max_connections, 4096);
        assert_eq!(config.read_timeout, Duration::from_secs(30));
        assert_eq!(config.max_header_bytes, 16384);
        assert_eq!(config.webhook_exchange(), "powens_domain_webhooks");
        assert!(matches!(
            config.domains.values().next(),
            Some(DomainPolicy::Forward)
        ));
    }

    #[test]
    fn flags_override_the_file_key_by_key() {
        let text = format!("listen = \"127.0.0.1:1\"\nexchange_prefix = \"a_\"\n{ONE_DOMAIN}");
        let overrides = Overrides {
            listen: Some("127.0.0.1:2".into()),
            body_limit_bytes: Some(10),
            ..Overrides::default()
        };
        let config = RelayConfig::from_toml(&text, &overrides).unwrap();
        assert_eq!(config.listen.port(), 2);
        assert_eq!(config.exchange_prefix, "a_");
        assert_eq!(config.body_limit, 10);
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
        let dir = std::env::temp_dir().join(format!("powens-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "old").unwrap();
        let text = format!(
            "[domains.\"budgea.biapi.pro\"]\nsecrets = [\"file:{}\"]\n{}",
            file.display(),
            "[domains.\"forward.biapi.pro\"]\nmode = \"forward\"\n"
        );
        let config = RelayConfig::from_toml(&text, &Overrides::default()).unwrap();
        let signs_with = |domains: &BTreeMap<Domain, DomainPolicy>, secret: &str| {
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
        assert!(signs_with(&config.domains, "old"));

        std::fs::write(&file, "new\n").unwrap();
        let reloaded = config.reload_secrets().unwrap();
        assert!(signs_with(&reloaded, "new"));
        assert!(!signs_with(&reloaded, "old"));
        assert_eq!(reloaded.len(), 2, "the forward domain stays");

        std::fs::remove_file(&file).unwrap();
        match config.reload_secrets() {
            Err(ConfigError::Invalid { problems }) => {
                assert_eq!(problems.len(), 1);
                assert_eq!(problems[0].key, "domains.\"budgea.biapi.pro\".secrets[0]");
            }
            other => panic!("expected the unreadable secret named, got {other:?}"),
        }
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

        let err =
            RelayConfig::from_toml("listen = \"hunter2\n", &Overrides::default()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 1"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = RelayConfig::from_toml("lisen = \"x\"\n", &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("unknown field `lisen`"), "{err}");
    }

    #[test]
    fn no_domain_is_an_error() {
        assert_eq!(invalid_keys("", &Overrides::default()), ["domains"]);
    }

    #[test]
    fn domain_flags_replace_file_entries_and_resolve_secrets() {
        let dir = std::env::temp_dir().join(format!("powens-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        std::fs::write(&path, "s3cr3t\n").unwrap();
        let overrides = Overrides {
            domains: vec![format!("BUDGEA.biapi.pro=file:{}", path.display())],
            ..Overrides::default()
        };
        let config = RelayConfig::from_toml(ONE_DOMAIN, &overrides).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        // The flag names the file's domain in another case: it replaces the entry.
        assert_eq!(config.domains.len(), 1);
        match config.domains.values().next() {
            Some(DomainPolicy::Verify(v)) => assert_eq!(v.keys().keys().len(), 1),
            other => panic!("expected a verifier, got {other:?}"),
        }
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
}
