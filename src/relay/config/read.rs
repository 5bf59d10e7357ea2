//! Reading the configuration: the TOML file's keys checked against
//! [`KEYS`](super::keys::KEYS), and each key taken from the overrides, else the file,
//! else its default, with every problem collected.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::domains::FileDomain;
use super::keys::{KEYS, Key};
use super::suggest;
use super::value::{Value, ValueError};
use super::{ConfigError, Overrides, Problem};
use crate::amq::TealExchange;

/// The file's keys, checked against [`KEYS`], and its domains.
#[derive(Debug, Default)]
pub(super) struct FileConfig {
    pub(super) values: BTreeMap<&'static str, Value>,
    pub(super) domains: BTreeMap<String, FileDomain>,
}

/// Collects problems, and reads each key from the overrides, else the file, else its
/// default.
pub(super) struct Reader<'a> {
    pub(super) file: FileConfig,
    pub(super) overrides: &'a Overrides,
    pub(super) problems: Vec<Problem>,
}

impl Reader<'_> {
    pub(super) fn problem(&mut self, key: &str, message: impl std::fmt::Display) {
        self.problems.push(Problem {
            key: key.to_owned(),
            message: message.to_string(),
        });
    }

    /// `key`'s value from the overrides, else the file, fitted to its kind; `None` when
    /// it is set nowhere (or does not fit, a problem then noted).
    pub(super) fn value(&mut self, key: &Key) -> Option<Value> {
        let value = self
            .overrides
            .value(key.name)
            .or_else(|| self.file.values.get(key.name))
            .cloned()?;
        match value.fit(key.kind) {
            Ok(value) => Some(value),
            Err(m) => {
                self.problem(key.name, m);
                None
            }
        }
    }

    pub(super) fn text(&mut self, key: &Key) -> String {
        match self.value(key) {
            Some(Value::Text(t)) => t,
            _ => key.default.unwrap_or_default().to_owned(),
        }
    }

    pub(super) fn flag(&mut self, key: &Key) -> bool {
        match self.value(key) {
            Some(Value::Bool(b)) => b,
            _ => key.default == Some("true"),
        }
    }

    pub(super) fn number(&mut self, key: &Key) -> u64 {
        match self.value(key) {
            Some(Value::Number(n)) => n,
            _ => key.default.unwrap_or_default().parse().unwrap_or_default(),
        }
    }

    /// A number of seconds, at least `min`.
    pub(super) fn seconds(&mut self, key: &Key, min: u64) -> Duration {
        let secs = self.number(key);
        // Durations beyond a century are certainly mistakes, and keep chrono in range.
        if secs < min || secs > 100 * 365 * 86_400 {
            self.problem(key.name, ValueError::Seconds { min });
        }
        Duration::from_secs(secs)
    }

    /// A count between `min` and `max`.
    pub(super) fn count(&mut self, key: &Key, min: u64, max: u64) -> usize {
        let n = self.number(key);
        if n < min || n > max {
            self.problem(key.name, ValueError::Range { min, max });
        }
        usize::try_from(n.clamp(min, max)).unwrap_or(usize::MAX)
    }
}

pub(super) fn check_exchange_prefix(prefix: &str) -> Result<(), ValueError> {
    let longest = TealExchange::ALL
        .iter()
        .map(|e| e.base_name().len())
        .max()
        .unwrap_or(0);
    if prefix.len() + longest > 255 {
        return Err(ValueError::PrefixTooLong);
    }
    if !prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        return Err(ValueError::PrefixCharacters);
    }
    Ok(())
}

pub(super) fn read_file(path: &Path) -> Result<(FileConfig, Vec<Problem>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_toml(&text, path)
}

/// The file's keys and domains, and every key that is unknown or of the wrong type.
pub(super) fn parse_toml(
    text: &str,
    path: &Path,
) -> Result<(FileConfig, Vec<Problem>), ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
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
    })?;
    let mut file = FileConfig::default();
    let mut problems = Vec::new();
    let mut problem = |key: &str, message: &dyn std::fmt::Display| {
        problems.push(Problem {
            key: key.to_owned(),
            message: message.to_string(),
        });
    };
    for (name, value) in table {
        if name == "domains" {
            let mut value = value;
            unknown_domain_keys(&mut value, path, &mut problem);
            match value.try_into() {
                Ok(domains) => file.domains = domains,
                Err(_) => problem(
                    "domains",
                    &"must be tables [domains.\"<name>.biapi.pro\"] with mode and secrets only",
                ),
            }
            continue;
        }
        let Some(key) = KEYS.iter().find(|k| k.name == name) else {
            let known = KEYS.iter().map(|k| k.name).chain(["domains"]);
            problem(
                &name,
                &suggest::unknown("a configuration key", &name, path, known),
            );
            continue;
        };
        let value = match value {
            toml::Value::String(text) => Value::Text(text),
            toml::Value::Boolean(b) => Value::Bool(b),
            // The nodes of a cluster: the same list as the flag's, separated by commas.
            toml::Value::Array(items) if key.name == "amqp_url" => {
                let urls: Option<Vec<String>> = items
                    .into_iter()
                    .map(|item| match item {
                        toml::Value::String(url) if !url.contains(',') => Some(url),
                        _ => None,
                    })
                    .collect();
                match urls {
                    Some(urls) => Value::Text(urls.join(",")),
                    None => {
                        problem(key.name, &ValueError::UrlList);
                        continue;
                    }
                }
            }
            toml::Value::Integer(n) => match u64::try_from(n) {
                Ok(n) => Value::Number(n),
                Err(_) => {
                    problem(key.name, &ValueError::Negative);
                    continue;
                }
            },
            _ => {
                problem(key.name, &ValueError::Scalar);
                continue;
            }
        };
        file.values.insert(key.name, value);
    }
    Ok((file, problems))
}

/// Takes out of the `[domains."…"]` tables their keys other than `mode` and `secrets`,
/// each a problem naming the file and the key it probably meant.
fn unknown_domain_keys(
    value: &mut toml::Value,
    path: &Path,
    problem: &mut impl FnMut(&str, &dyn std::fmt::Display),
) {
    let Some(domains) = value.as_table_mut() else {
        return;
    };
    for (domain, table) in domains.iter_mut() {
        let Some(table) = table.as_table_mut() else {
            continue;
        };
        table.retain(|key, _| {
            let known = DOMAIN_KEYS.contains(&key);
            if !known {
                let message = suggest::unknown("a key of a domain", key, path, DOMAIN_KEYS);
                problem(&format!("domains.{domain:?}.{key}"), &message);
            }
            known
        });
    }
}

/// The keys of a `[domains."…"]` table.
const DOMAIN_KEYS: [&str; 2] = ["mode", "secrets"];

/// `public_url`, or `http://` and the listen address when empty: an http(s) URL with no
/// query or fragment, its path ending with `/` (as TeaL normalises `LISTENER_URL`).
pub(super) fn public_url(text: &str, listen: std::net::SocketAddr) -> Result<url::Url, ValueError> {
    if text.is_empty() {
        return Ok(default_public_url(listen));
    }
    let mut url = url::Url::parse(text).map_err(|_| ValueError::HttpUrl)?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(ValueError::HttpUrl);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ValueError::UrlCredentials);
    }
    url.set_query(None);
    url.set_fragment(None);
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// `http://<listen>/`.
pub(super) fn default_public_url(listen: std::net::SocketAddr) -> url::Url {
    url::Url::parse(&format!("http://{listen}/"))
        .unwrap_or_else(|_| unreachable!("a socket address makes a valid URL"))
}

/// A comma-separated list of host names, lower-cased.
pub(super) fn hosts(text: &str) -> Result<Vec<String>, ValueError> {
    text.split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| {
            let plain = h.len() <= 253
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b));
            plain
                .then(|| h.to_ascii_lowercase())
                .ok_or(ValueError::Hosts)
        })
        .collect()
}
