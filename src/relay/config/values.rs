//! Typed configuration values: where a secret comes from, and the broker's URL.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use lapin::uri::AMQPUri;

use crate::secret::Secret;

/// Where a secret comes from: `env:NAME` or `file:PATH`; never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// An environment variable.
    Env(String),
    /// A file (one trailing newline ignored).
    File(PathBuf),
}

impl SecretRef {
    /// Parses `env:NAME` or `file:PATH`. The error never quotes the text, which may be a
    /// secret written inline by mistake.
    pub fn parse(text: &str) -> Result<Self, String> {
        let problem = || "must be env:NAME or file:PATH (secrets are never written inline)";
        match text.split_once(':') {
            Some(("env", name)) if !name.is_empty() && !name.contains('=') => {
                Ok(Self::Env(name.to_owned()))
            }
            Some(("file", path)) if !path.is_empty() => Ok(Self::File(PathBuf::from(path))),
            _ => Err(problem().to_owned()),
        }
    }

    /// Reads the secret.
    pub fn resolve(&self) -> Result<Secret, String> {
        match self {
            Self::Env(name) => Secret::from_env(name).map_err(|e| e.to_string()),
            Self::File(path) => Secret::from_file(path).map_err(|e| e.to_string()),
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

/// An AMQP URL, checked; its `Debug` and `Display` hide the password.
#[derive(Clone)]
pub struct AmqpUrl {
    text: String,
    uri: AMQPUri,
}

impl AmqpUrl {
    /// Parses an `amqp://` or `amqps://` URL.
    pub fn parse(text: &str) -> Result<Self, String> {
        if !(text.starts_with("amqp://") || text.starts_with("amqps://")) {
            return Err("must start with amqp:// or amqps://".to_owned());
        }
        // The parser's message may quote the URL, password included: keep it out.
        let uri = AMQPUri::from_str(text).map_err(|_| "is not a valid AMQP URL".to_owned())?;
        Ok(Self {
            text: text.to_owned(),
            uri,
        })
    }

    /// The parsed URI, for connecting.
    pub fn uri(&self) -> AMQPUri {
        self.uri.clone()
    }

    /// Whether the URL spells out a (non-empty) password. Without one, the broker's
    /// default `guest` credentials apply.
    pub fn has_password(&self) -> bool {
        // The parsed URI cannot tell: without userinfo it holds the default `guest`.
        self.text
            .split_once("://")
            .and_then(|(_, rest)| rest.split(['/', '?', '#']).next())
            .and_then(|authority| authority.rsplit_once('@'))
            .is_some_and(|(userinfo, _)| {
                userinfo.split_once(':').is_some_and(|(_, p)| !p.is_empty())
            })
    }

    /// The URL as given (password included): only for connecting.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for AmqpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let authority = &self.uri.authority;
        let scheme = if self.text.starts_with("amqps://") {
            "amqps"
        } else {
            "amqp"
        };
        write!(
            f,
            "{scheme}://{}@{}:{}/{}",
            authority.userinfo.username,
            authority.host,
            authority.port,
            self.uri.vhost.replace('%', "%25").replace('/', "%2f")
        )
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
        assert_eq!(url.to_string(), "amqp://guest@127.0.0.1:5672/%2f");
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
                SecretRef::parse(bad).unwrap_err(),
                "must be env:NAME or file:PATH (secrets are never written inline)"
            );
        }
    }
}
