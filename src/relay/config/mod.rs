//! The relay's configuration: a TOML file, overridden key by key by flags and
//! `POWENS_RELAY_*` environment variables, validated as a whole before anything starts
//! (every problem named at once), then handed out part by part. Every key is defined
//! once, in [`keys::KEYS`].

mod domains;
pub(crate) mod keys;
mod overrides;
mod parts;
mod read;
mod suggest;
pub(crate) mod value;

use std::path::{Path, PathBuf};

pub use overrides::Overrides;
pub(crate) use parts::{JournalConfig, Secrets};
use read::{FileConfig, Reader, parse_toml, read_file};

use super::broker::{AmqpUrl, BrokerSettings};
use super::callback::store::StoreSpec;
use super::console::ConsoleSettings;
use super::dispatch::DispatcherSettings;
use super::durable::JournalSettings;
use super::listener::ListenerSettings;
use super::logs::LogFormat;
use super::publish::PublisherSettings;
use super::server::ServerSettings;
use super::webhook::WebhookSettings;

/// The relay's validated configuration: built only by [`RelayConfig::load`] or
/// [`RelayConfig::from_toml`], so every value in it was checked. Each part of the relay
/// gets its own settings from it; only the server set-ups read it whole.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub(crate) server: ServerSettings,
    pub(crate) broker: BrokerSettings,
    pub(crate) publisher: PublisherSettings,
    pub(crate) webhook: WebhookSettings,
    pub(crate) store: StoreSpec,
    pub(crate) listener: ListenerSettings,
    pub(crate) dispatcher: DispatcherSettings,
    pub(crate) journal: JournalSettings,
    /// `None` unless `console = true`.
    pub(crate) console: Option<ConsoleSettings>,
    pub(crate) log_format: LogFormat,
    pub(crate) secrets: Secrets,
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
    pub(crate) fn load_for_dispatch(overrides: &Overrides) -> Result<Self, ConfigError> {
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
    pub(crate) fn load_store(overrides: &Overrides) -> Result<StoreSpec, ConfigError> {
        let (file, problems) = Self::file_of(overrides)?;
        let mut r = Reader {
            file,
            overrides,
            problems,
        };
        let store = parts::store(&mut r);
        match r.problems.is_empty() {
            true => Ok(store),
            false => Err(ConfigError::Invalid {
                problems: r.problems,
            }),
        }
    }

    /// Only what the `journal` commands read: the broker, how it is published to, the
    /// journal; the rest is neither needed nor checked (unknown file keys are still
    /// refused), so that an operator's shell needs none of `serve`'s secrets.
    ///
    /// # Errors
    /// A [`ConfigError`] listing every invalid key.
    pub(crate) fn load_journal(overrides: &Overrides) -> Result<JournalConfig, ConfigError> {
        let (file, problems) = Self::file_of(overrides)?;
        let mut r = Reader {
            file,
            overrides,
            problems,
        };
        let config = parts::journal_command(&mut r);
        match r.problems.is_empty() {
            true => Ok(config),
            false => Err(ConfigError::Invalid {
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
        parts::read_all(&mut r, need_domains)
    }

    /// Uses the broker at `url` (tests and embedding).
    #[must_use]
    pub fn with_amqp_url(self, url: AmqpUrl) -> Self {
        self.with_amqp_urls(vec![url])
    }

    /// Uses the nodes of one cluster (tests and embedding); none writes messages to
    /// standard output.
    #[must_use]
    pub fn with_amqp_urls(mut self, nodes: Vec<AmqpUrl>) -> Self {
        self.broker.nodes = nodes;
        self
    }

    /// The broker's nodes, in the order given (empty: no broker).
    pub fn amqp_urls(&self) -> &[AmqpUrl] {
        &self.broker.nodes
    }
}

#[cfg(test)]
mod domain_tests;
#[cfg(test)]
mod tests;
