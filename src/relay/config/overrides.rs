//! The settings given as flags or `POWENS_RELAY_*` variables (or in code), each
//! overriding the configuration file's key of the same name. The command line's flags
//! are made from [`KEYS`](super::keys::KEYS) (`relay::cli::flags`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::keys::Key;
use super::value::{Kind, Value};

/// Settings overriding the configuration file, key by key: from the command line's flags
/// and environment variables, or built in code.
///
/// ```
/// use powens_webhooks::relay::{Overrides, RelayConfig};
///
/// let overrides = Overrides::new()
///     .with("listen", "127.0.0.1:0")
///     .with("body_limit_bytes", 1_048_576u64)
///     .with_domain("sandbox.biapi.pro=forward");
/// let config = RelayConfig::from_toml("", &overrides)?;
/// assert!(config.amqp_urls().is_empty()); // no broker: messages go to standard output
///
/// // A value that does not fit its key is named, with every other problem at once.
/// let wrong = overrides.with("max_in_flight", "many");
/// let error = RelayConfig::from_toml("", &wrong).unwrap_err();
/// assert!(error.to_string().contains("max_in_flight: must be a whole number"));
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

    /// Sets key `name` (as in the file) to `value`, written as a flag would give it
    /// (`true`, `5`, `127.0.0.1:0`): checked with the rest when the configuration is
    /// built.
    ///
    /// # Panics
    /// When no key is named `name` (a mistake in the calling code, not in input).
    #[must_use]
    pub fn with(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        let Some(key) = Key::named(name) else {
            panic!("no configuration key is named {name:?}");
        };
        self.values.insert(key.name, Value::Text(value.to_string()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::RelayConfig;

    #[test]
    fn overrides_in_code_apply_to_the_configuration() {
        let overrides = Overrides::new()
            .with("listen", "127.0.0.1:0")
            .with("body_limit_bytes", 1_048_576u64)
            .with_domain("sandbox.biapi.pro=forward");
        let config = RelayConfig::from_toml("", &overrides).unwrap();
        assert_eq!(config.webhook.webhooks.body_limit(), 1_048_576);
    }
}
