//! The settings given as flags or `POWENS_RELAY_*` variables (or in code), each
//! overriding the configuration file's key of the same name. The flags are made from
//! [`KEYS`](super::keys::KEYS).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::builder::PossibleValuesParser;
use clap::{Arg, ArgAction, ArgMatches, value_parser};

use super::keys::{KEYS, Key, Kind, Value};
use super::{FileDomain, Mode};

/// Settings overriding the configuration file, key by key: from `powens-relay serve`'s
/// flags and environment variables (as a `clap::Args`), or built in code.
///
/// ```
/// use powens_webhooks::relay::config::{Overrides, RelayConfig};
///
/// let overrides = Overrides::new()
///     .with("listen", "127.0.0.1:0")
///     .with("body_limit_bytes", 1_048_576u64)
///     .with_domain("sandbox.biapi.pro=forward");
/// let config = RelayConfig::from_toml("", &overrides)?;
/// assert_eq!(config.webhooks().body_limit(), 1_048_576);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct Overrides {
    config: Option<PathBuf>,
    values: BTreeMap<&'static str, Value>,
    domains: Vec<String>,
}

impl Overrides {
    /// No overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the configuration file at `path` first.
    #[must_use]
    pub fn with_config(mut self, path: impl Into<PathBuf>) -> Self {
        self.config = Some(path.into());
        self
    }

    /// Sets key `name` (as in the file) to `value`.
    ///
    /// # Panics
    /// When no key is named `name` (a mistake in the calling code, not in input).
    #[must_use]
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        let Some(key) = Key::named(name) else {
            panic!("no configuration key is named {name:?}");
        };
        self.values.insert(key.name, value.into());
        self
    }

    /// Adds a domain, replacing the file's entry of the same name: `DOMAIN=forward` or
    /// `DOMAIN=REF[,REF…]` (verify mode; each `env:NAME` or `file:PATH`).
    #[must_use]
    pub fn with_domain(mut self, spec: impl Into<String>) -> Self {
        self.domains.push(spec.into());
        self
    }

    /// The configuration file to read, if any.
    pub fn config(&self) -> Option<&Path> {
        self.config.as_deref()
    }

    pub(super) fn value(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    pub(super) fn domains(&self) -> &[String] {
        &self.domains
    }
}

impl fmt::Debug for Overrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values: BTreeMap<_, _> = self
            .values
            .iter()
            .map(|(name, value)| {
                let credential = Key::named(name).is_some_and(|k| k.kind == Kind::Credential);
                let shown = if credential {
                    "[REDACTED]".to_owned()
                } else {
                    format!("{value:?}")
                };
                (*name, shown)
            })
            .collect();
        f.debug_struct("Overrides")
            .field("config", &self.config)
            .field("values", &values)
            .field("domains", &self.domains.len())
            .finish()
    }
}

impl clap::Args for Overrides {
    fn augment_args(command: clap::Command) -> clap::Command {
        let command = command.arg(
            Arg::new("config")
                .long("config")
                .env("POWENS_RELAY_CONFIG")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .help(
                    "TOML configuration file (see relay.example.toml). Without it, the flags \
                     and environment variables are the whole configuration.",
                ),
        );
        let command = KEYS
            .iter()
            .fold(command, |command, key| command.arg(flag(key)));
        command.arg(
            Arg::new("domain")
                .long("domain")
                .env("POWENS_RELAY_DOMAINS")
                .value_name("DOMAIN=SECRETS")
                .value_delimiter(';')
                .action(ArgAction::Append)
                .help(
                    "A domain, replacing the file's entry of the same name: \
                     DOMAIN=REF[,REF...] (mode verify; REF is env:NAME or file:PATH) or \
                     DOMAIN=forward. Repeatable; in the environment variable, separate \
                     domains with ';'.",
                ),
        )
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

fn flag(key: &Key) -> Arg {
    let help = match key.default {
        Some("") => format!("{} [default: none]", key.help),
        Some(default) => format!("{} [default: {default}]", key.help),
        None => key.help.to_owned(),
    };
    let arg = Arg::new(key.name)
        .long(key.flag().trim_start_matches('-').to_owned())
        .env(key.env())
        .value_name(key.value_name)
        .help(help);
    match key.kind {
        Kind::Text => arg,
        Kind::Credential => arg.hide_env_values(true),
        Kind::Bool => arg.value_parser(value_parser!(bool)),
        Kind::Number => arg.value_parser(value_parser!(u64)),
        Kind::Choice(words) => arg.value_parser(PossibleValuesParser::new(words)),
    }
}

impl clap::FromArgMatches for Overrides {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut overrides = Self::default();
        overrides.update_from_arg_matches(matches)?;
        Ok(overrides)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        if let Some(path) = matches.get_one::<PathBuf>("config") {
            self.config = Some(path.clone());
        }
        for key in KEYS {
            let value = match key.kind {
                Kind::Bool => matches.get_one::<bool>(key.name).map(|b| Value::Bool(*b)),
                Kind::Number => matches.get_one::<u64>(key.name).map(|n| Value::Number(*n)),
                _ => matches
                    .get_one::<String>(key.name)
                    .map(|t| Value::Text(t.clone())),
            };
            if let Some(value) = value {
                self.values.insert(key.name, value);
            }
        }
        if let Some(domains) = matches.get_many::<String>("domain") {
            self.domains.extend(domains.cloned());
        }
        Ok(())
    }
}

/// `DOMAIN=forward` or `DOMAIN=REF[,REF...]`.
pub(super) fn parse_domain_flag(spec: &str) -> Result<(String, FileDomain), String> {
    let (name, value) = spec
        .split_once('=')
        .ok_or("expected DOMAIN=env:NAME[,file:PATH...] or DOMAIN=forward")?;
    let domain = if value == "forward" {
        FileDomain {
            mode: Mode::Forward,
            secrets: Vec::new(),
        }
    } else {
        FileDomain {
            mode: Mode::Verify,
            secrets: value.split(',').map(str::to_owned).collect(),
        }
    };
    Ok((name.to_owned(), domain))
}
