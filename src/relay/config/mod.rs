//! The relay's configuration: a TOML file, overridden key by key by flags and
//! `POWENS_RELAY_*` environment variables, validated as a whole before anything starts.
//! Every key is defined once, in [`keys::KEYS`].

mod accessors;
mod dispatcher;
mod domains;
pub mod keys;
mod overrides;
mod read;
mod value;
mod values;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use dispatcher::DispatcherConfig;
use domains::{FileDomain, Mode, SecretRefs};
use keys::Value;
pub use overrides::Overrides;
use read::{FileConfig, Reader, check_exchange_prefix, parse_toml, read_file};
pub use values::{
    AmqpUrl, AmqpUrlError, AmqpUrlListError, SecretRef, SecretRefError, redact_url,
    url_has_password,
};

use url::Url;

use super::broker::Exchanges;
use super::callback::store::StoreSpec;
use crate::axum::{DomainPolicy, WebhookConfig, check_path_prefix};
use crate::verify::FreshnessWindow;

/// What to answer when the broker returns a message no queue is bound to receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unroutable {
    /// 503: nobody would have received it, so Powens should retry.
    #[default]
    Reject,
    /// 204, as TeaL does: the message is dropped and a warning logged.
    Accept,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The relay's validated configuration: built only by [`RelayConfig::load`] or
/// [`RelayConfig::from_toml`], so every value in it was checked.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    listen: SocketAddr,
    amqp_urls: Vec<AmqpUrl>,
    exchanges: Exchanges,
    unroutable: Unroutable,
    webhooks: WebhookConfig,
    freshness: FreshnessWindow,
    publish_timeout: Duration,
    connect_timeout: Duration,
    reconnect_max_delay: Duration,
    max_in_flight: usize,
    max_connections: usize,
    read_timeout: Duration,
    max_header_bytes: usize,
    log_format: LogFormat,
    secret_refs: SecretRefs,
    store: StoreSpec,
    public_url: Url,
    callback_one_shot: bool,
    redirect_fallback_hosts: Vec<String>,
    dispatcher: DispatcherConfig,
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
    /// The file is not valid TOML.
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
    /// Reads the file named by `overrides` (if any), applies the overrides and
    /// validates everything, secrets included.
    ///
    /// # Errors
    /// A [`ConfigError`] listing every invalid key.
    pub fn load(overrides: &Overrides) -> Result<Self, ConfigError> {
        Self::read(overrides, true)
    }

    /// As [`load`](Self::load), for `powens-relay dispatch`: the same file and keys,
    /// but no domain is needed (the dispatcher receives no webhook).
    ///
    /// # Errors
    /// As [`RelayConfig::load`].
    pub fn load_for_dispatch(overrides: &Overrides) -> Result<Self, ConfigError> {
        Self::read(overrides, false)
    }

    /// The file named by `overrides` (if any), then [`build`](Self::build).
    fn read(overrides: &Overrides, need_domains: bool) -> Result<Self, ConfigError> {
        Self::build(Self::file_of(overrides)?, overrides, need_domains)
    }

    /// The file named by `overrides` and its problems, or an empty one.
    fn file_of(overrides: &Overrides) -> Result<(FileConfig, Vec<Problem>), ConfigError> {
        match overrides.config() {
            Some(path) => read_file(path),
            None => Ok((FileConfig::default(), Vec::new())),
        }
    }

    /// Only the callback store's keys (`callback_store`, `data_dir`), for
    /// `powens-relay callback`: the rest of the configuration is neither needed nor
    /// checked (unknown file keys are still refused).
    ///
    /// # Errors
    /// A [`ConfigError`] listing every invalid key.
    pub fn load_store(overrides: &Overrides) -> Result<StoreSpec, ConfigError> {
        let (file, problems) = Self::file_of(overrides)?;
        let mut r = Reader {
            file,
            overrides,
            problems,
        };
        let data_dir = std::path::PathBuf::from(r.text("data_dir"));
        let store = StoreSpec::parse(&r.text("callback_store"), &data_dir)
            .map_err(|e| r.problem("callback_store", e.to_string()))
            .ok();
        match store {
            Some(store) if r.problems.is_empty() => Ok(store),
            _ => Err(ConfigError::Invalid {
                problems: r.problems,
            }),
        }
    }

    /// Parses a TOML document (as a file's content) and applies `overrides`.
    ///
    /// # Errors
    /// As [`RelayConfig::load`].
    pub fn from_toml(text: &str, overrides: &Overrides) -> Result<Self, ConfigError> {
        Self::build(parse_toml(text, Path::new("<inline>"))?, overrides, true)
    }

    fn build(
        (file, problems): (FileConfig, Vec<Problem>),
        overrides: &Overrides,
        need_domains: bool,
    ) -> Result<Self, ConfigError> {
        let mut r = Reader {
            file,
            overrides,
            problems,
        };
        let listen = r.text("listen").parse::<SocketAddr>().unwrap_or_else(|_| {
            r.problem(
                "listen",
                "must be an IP address and port, e.g. 127.0.0.1:8080",
            );
            SocketAddr::from(([127, 0, 0, 1], 0))
        });
        let amqp_urls = AmqpUrl::parse_list(&r.text("amqp_url")).unwrap_or_else(|e| {
            r.problem("amqp_url", e.to_string());
            Vec::new()
        });
        let prefix = r.text("exchange_prefix");
        if let Err(m) = check_exchange_prefix(&prefix) {
            r.problem("exchange_prefix", m);
        }
        let exchanges = Exchanges {
            prefix,
            durable: matches!(r.value("exchange_durable"), Some(Value::Bool(true))),
        };
        let unroutable = match r.text("unroutable").as_str() {
            "accept" => Unroutable::Accept,
            _ => Unroutable::Reject,
        };
        let public_path_prefix = r.text("public_path_prefix");
        if let Err(e) = check_path_prefix(&public_path_prefix) {
            r.problem("public_path_prefix", e.to_string());
        }
        let body_limit = r.count("body_limit_bytes", 1, u64::MAX);
        let freshness = FreshnessWindow::new(
            r.seconds("signature_max_age_secs", 0),
            r.seconds("signature_max_ahead_secs", 0),
        );
        let publish_timeout = r.seconds("publish_timeout_secs", 1);
        let connect_timeout = r.seconds("connect_timeout_secs", 1);
        let reconnect_max_delay = r.seconds("reconnect_max_delay_secs", 1);
        let max_in_flight = r.count("max_in_flight", 1, 1_000_000);
        let max_connections = r.count("max_connections", 1, 1_000_000);
        let read_timeout = r.seconds("read_timeout_secs", 1);
        let max_header_bytes = r.count("max_header_bytes", 1024, 1024 * 1024);
        let log_format = match r.text("log_format").as_str() {
            "json" => LogFormat::Json,
            _ => LogFormat::Text,
        };
        let data_dir = std::path::PathBuf::from(r.text("data_dir"));
        let store = StoreSpec::parse(&r.text("callback_store"), &data_dir).unwrap_or_else(|e| {
            r.problem("callback_store", e.to_string());
            StoreSpec::Embedded(data_dir)
        });
        let public_url = read::public_url(&r.text("public_url"), listen).unwrap_or_else(|m| {
            r.problem("public_url", m);
            read::default_public_url(listen)
        });
        let callback_one_shot = matches!(r.value("callback_one_shot"), Some(Value::Bool(true)));
        let redirect_fallback_hosts = read::hosts(&r.text("redirect_fallback_hosts"))
            .unwrap_or_else(|m| {
                r.problem("redirect_fallback_hosts", m);
                Vec::new()
            });
        let dispatcher = DispatcherConfig::read(&mut r, &public_url);
        let file_domains = std::mem::take(&mut r.file.domains);
        let mut problem = |key: &str, message: String| r.problem(key, message);
        let (domains, secret_refs) = domains::resolve(
            file_domains,
            overrides.domains(),
            need_domains,
            &mut problem,
        );
        if !r.problems.is_empty() {
            return Err(ConfigError::Invalid {
                problems: r.problems,
            });
        }
        let builder = domains
            .into_iter()
            .fold(WebhookConfig::builder(), |b, (domain, ring)| match ring {
                Some(ring) => b.verify(domain, ring),
                None => b.forward(domain),
            })
            .freshness(freshness)
            .body_limit(body_limit)
            .read_timeout(read_timeout)
            .public_path_prefix(public_path_prefix);
        let built = if need_domains {
            builder.build()
        } else {
            builder.build_any()
        };
        let webhooks = built.map_err(|e| ConfigError::Invalid {
            problems: vec![Problem {
                key: "domains".into(),
                message: e.to_string(),
            }],
        })?;
        Ok(Self {
            listen,
            amqp_urls,
            exchanges,
            unroutable,
            webhooks,
            freshness,
            publish_timeout,
            connect_timeout,
            reconnect_max_delay,
            max_in_flight,
            max_connections,
            read_timeout,
            max_header_bytes,
            log_format,
            secret_refs,
            store,
            public_url,
            callback_one_shot,
            redirect_fallback_hosts,
            dispatcher,
        })
    }

    /// Reads every secret again (a `file:` secret may have been rotated) and, if all
    /// can be read, swaps the new key rings into [`RelayConfig::webhooks`] (shared by
    /// every router built from this configuration); the rest is unchanged. `serve`
    /// does this on SIGHUP. Returns the number of domains served.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming each secret that cannot be read; the key rings
    /// in use then stay.
    pub fn reload_secrets(&self) -> Result<usize, ConfigError> {
        let mut problems = Vec::new();
        let mut problem = |key: &str, message: String| {
            problems.push(Problem {
                key: key.to_owned(),
                message,
            });
        };
        let mut domains: BTreeMap<_, _> = self
            .webhooks
            .domains()
            .iter()
            .map(|(d, p)| (d.clone(), p.clone()))
            .collect();
        for (domain, (key, refs)) in &self.secret_refs {
            if let Some(ring) = domains::key_ring(key, refs.iter().enumerate(), &mut problem) {
                domains.insert(
                    domain.clone(),
                    DomainPolicy::verify(domain, ring, self.freshness),
                );
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid { problems });
        }
        let count = domains.len();
        self.webhooks.set_domains(domains);
        Ok(count)
    }
}

#[cfg(test)]
mod tests;
