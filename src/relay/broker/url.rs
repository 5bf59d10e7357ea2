//! The broker's URL, checked, its password never shown.

use std::fmt;
use std::str::FromStr;

use lapin::uri::AMQPUri;

use crate::relay::redact::{redact_url, url_has_password};

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
    pub(crate) position: usize,
    /// What is wrong with it.
    pub(crate) error: AmqpUrlError,
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
    pub(crate) fn uri(&self) -> AMQPUri {
        self.uri.clone()
    }

    /// Whether the URL spells out a (non-empty) password. Without one, the broker's
    /// default `guest` credentials apply.
    pub fn has_password(&self) -> bool {
        url_has_password(&self.text)
    }
}

impl fmt::Display for AmqpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.text))
    }
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
}
