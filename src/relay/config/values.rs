//! Typed configuration values: where a secret comes from, and the broker's URL.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use lapin::uri::AMQPUri;

use crate::secret::{Secret, SecretError};

/// Where a secret comes from: `env:NAME` or `file:PATH`; never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// An environment variable.
    Env(String),
    /// A file (one trailing newline ignored).
    File(PathBuf),
}

impl SecretRef {
    /// Parses `env:NAME` or `file:PATH`.
    ///
    /// # Errors
    /// [`SecretRefError`], which never quotes the text: it may be a secret written
    /// inline by mistake.
    pub fn parse(text: &str) -> Result<Self, SecretRefError> {
        match text.split_once(':') {
            Some(("env", name)) if !name.is_empty() && !name.contains('=') => {
                Ok(Self::Env(name.to_owned()))
            }
            Some(("file", path)) if !path.is_empty() => Ok(Self::File(PathBuf::from(path))),
            _ => Err(SecretRefError),
        }
    }

    /// Reads the secret.
    ///
    /// # Errors
    /// [`SecretError`]: the variable is unset or empty, the file unreadable or empty.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        match self {
            Self::Env(name) => Secret::from_env(name),
            Self::File(path) => Secret::from_file(path),
        }
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "env:{name}"),
            Self::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

/// A secret written other than as `env:NAME` or `file:PATH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be env:NAME or file:PATH (secrets are never written inline)")]
pub struct SecretRefError;

/// Why a text is not an AMQP URL. Never quotes the text: it may hold a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmqpUrlError {
    /// Another scheme.
    #[error("must start with amqp:// or amqps://")]
    Scheme,
    /// Not a URL the AMQP client can use.
    #[error("is not a valid AMQP URL")]
    Invalid,
}

/// Why a list of AMQP URLs is not one: the first URL that is not, by its position (1
/// for the first), never quoted. Shown as the URL's error alone when it is the first
/// (a single URL reads as before), else with its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmqpUrlListError {
    /// The position of the URL in the list, from 1.
    pub position: usize,
    /// What is wrong with it.
    pub error: AmqpUrlError,
}

impl fmt::Display for AmqpUrlListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            1 => write!(f, "{}", self.error),
            n => write!(f, "URL {n} of the list {}", self.error),
        }
    }
}

impl std::error::Error for AmqpUrlListError {}

/// An AMQP URL, checked; its `Debug` and `Display` hide the password.
#[derive(Clone)]
pub struct AmqpUrl {
    text: String,
    uri: AMQPUri,
}

impl AmqpUrl {
    /// Parses an `amqp://` or `amqps://` URL.
    ///
    /// # Errors
    /// [`AmqpUrlError`].
    pub fn parse(text: &str) -> Result<Self, AmqpUrlError> {
        if !(text.starts_with("amqp://") || text.starts_with("amqps://")) {
            return Err(AmqpUrlError::Scheme);
        }
        // The parser's message may quote the URL, password included: keep it out.
        let uri = AMQPUri::from_str(text).map_err(|_| AmqpUrlError::Invalid)?;
        Ok(Self {
            text: text.to_owned(),
            uri,
        })
    }

    /// Parses the nodes of one cluster: URLs separated by commas (a comma inside one is
    /// written `%2C`). Empty text is no broker.
    ///
    /// # Errors
    /// [`AmqpUrlListError`]: the first URL that is not one, by its position.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, AmqpUrlListError> {
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        text.split(',')
            .map(str::trim)
            .enumerate()
            .map(|(i, url)| {
                Self::parse(url).map_err(|error| AmqpUrlListError {
                    position: i + 1,
                    error,
                })
            })
            .collect()
    }

    /// The parsed URI, for connecting.
    pub fn uri(&self) -> AMQPUri {
        self.uri.clone()
    }

    /// Whether the URL spells out a (non-empty) password. Without one, the broker's
    /// default `guest` credentials apply.
    pub fn has_password(&self) -> bool {
        url_has_password(&self.text)
    }

    /// The URL as given (password included): only for connecting.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for AmqpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.text))
    }
}

/// Whether the URL `text` spells out a (non-empty) password in its user information.
/// Read from the text itself: a parsed AMQP URI holds the default `guest` password.
///
/// A list of URLs separated by commas (the nodes of a cluster) has one if any of them
/// has.
pub fn url_has_password(text: &str) -> bool {
    // The whole text too: a password with a raw comma in it is still a password.
    one_url_has_password(text) || (text.contains(',') && text.split(',').any(one_url_has_password))
}

fn one_url_has_password(text: &str) -> bool {
    text.split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?', '#']).next())
        .and_then(|authority| authority.rsplit_once('@'))
        .is_some_and(|(userinfo, _)| userinfo.split_once(':').is_some_and(|(_, p)| !p.is_empty()))
}

/// The one way a URL from the configuration is printed (errors, logs, `Debug`): its
/// scheme, host and port, and its path only when it is plainly a name; never the user,
/// the password, the query or the fragment, which are replaced by `…`. Text that does not
/// even look like `scheme://host` prints as `scheme://…`, or `…`: nothing past the
/// scheme of a value that cannot be read is ever shown.
///
/// ```
/// use powens_webhooks::relay::config::redact_url;
///
/// assert_eq!(redact_url("amqp://guest:s3cr3t@10.0.0.7:5672/%2f"), "amqp://10.0.0.7:5672/%2f");
/// assert_eq!(redact_url("redis://:s3cr3t@cache:6379/0?password=x"), "redis://cache:6379/0?…");
/// assert_eq!(redact_url("amqp://h:1/%2f,amqp://u:s3cr3t@h2/%2f"), "amqp://h:1/…");
/// assert_eq!(redact_url("amqp//u:s3cr3t@h"), "…");
/// ```
pub fn redact_url(text: &str) -> String {
    const HIDDEN: &str = "…";
    let Some((scheme, rest)) = text.split_once("://") else {
        return HIDDEN.to_owned();
    };
    let plain_scheme = !scheme.is_empty()
        && scheme.len() <= 16
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !plain_scheme {
        return HIDDEN.to_owned();
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(end);
    // The host follows the last `@`: a password may hold one.
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let plain_host = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    if !plain_host {
        return format!("{scheme}://{HIDDEN}");
    }
    let path_end = after.find(['?', '#']).unwrap_or(after.len());
    let (path, query) = after.split_at(path_end);
    let plain_path = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/%-_.~".contains(&b));
    let path = if plain_path { path } else { "/…" };
    let query = if query.is_empty() { "" } else { "?…" };
    format!("{scheme}://{host}{path}{query}")
}

impl fmt::Debug for AmqpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AmqpUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amqp_url_display_hides_the_password() {
        let url = AmqpUrl::parse("amqp://guest:s3cr3t@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(url.to_string(), "amqp://127.0.0.1:5672/%2f");
        assert!(!format!("{url:?}").contains("s3cr3t"));
    }

    #[test]
    fn only_a_spelled_out_password_counts() {
        let has = |url: &str| AmqpUrl::parse(url).unwrap().has_password();
        assert!(has("amqp://guest:guest@127.0.0.1:5672/%2f"));
        assert!(has("amqps://u:p%40ss@host/vh"));
        // The library's default guest/guest is not on the command line.
        assert!(!has("amqp://127.0.0.1:5672/%2f"));
        assert!(!has("amqp://user@127.0.0.1/%2f"));
        assert!(!has("amqp://user:@127.0.0.1/%2f"));
        // In a list, any URL's counts.
        assert!(url_has_password("amqp://h1/%2f, amqp://u:p@h2/%2f"));
        assert!(!url_has_password("amqp://h1/%2f,amqp://u@h2/%2f"));
    }

    #[test]
    fn a_list_of_nodes_parses_in_order_and_names_a_bad_one_by_position() {
        let nodes = AmqpUrl::parse_list("amqp://h1:5672/%2f, amqp://u:p%2Cw@h2:5673/%2f").unwrap();
        let shown: Vec<_> = nodes.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["amqp://h1:5672/%2f", "amqp://h2:5673/%2f"]);
        assert!(AmqpUrl::parse_list(" ").unwrap().is_empty());
        let second = AmqpUrlListError {
            position: 2,
            error: AmqpUrlError::Scheme,
        };
        assert_eq!(
            AmqpUrl::parse_list("amqp://h1/%2f,http://u:s3cr3t@h2").unwrap_err(),
            second
        );
        assert_eq!(
            second.to_string(),
            "URL 2 of the list must start with amqp:// or amqps://"
        );
        assert_eq!(
            AmqpUrl::parse_list("http://h1").unwrap_err().to_string(),
            "must start with amqp:// or amqps://"
        );
        // An empty entry (a trailing comma) is a mistake, not "no node".
        assert_eq!(AmqpUrl::parse_list("amqp://h1/%2f,").unwrap_err(), second);
    }

    #[test]
    fn secret_refs_parse() {
        assert_eq!(SecretRef::parse("env:A"), Ok(SecretRef::Env("A".into())));
        assert_eq!(
            SecretRef::parse("file:/run/x"),
            Ok(SecretRef::File("/run/x".into()))
        );
        // One fixed message, whatever was written: it may be a secret pasted inline.
        for bad in ["", "env:", "file:", "env:A=B", "s3cr3t", "vault:x"] {
            assert_eq!(
                SecretRef::parse(bad).unwrap_err().to_string(),
                "must be env:NAME or file:PATH (secrets are never written inline)"
            );
        }
    }
}
