//! What a configuration key holds: its kind, its value from the file, a flag or the
//! environment (fitted to the kind), and where a secret is read from.

/// What values a key takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Text.
    Text,
    /// Text that may carry a credential: its environment value is hidden in `--help`.
    Credential,
    /// `true` or `false`.
    Bool,
    /// A whole number, 0 or more.
    Number,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// Where a secret is read from, `env:NAME` or `file:PATH`, never the secret. Its flag
    /// reads no environment variable: the variable named by the default holds the
    /// secret itself.
    SecretRef,
}

/// A key's value, from the file, a flag or the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// Text (also a choice).
    Text(String),
    /// A boolean.
    Bool(bool),
    /// A whole number.
    Number(u64),
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl From<u64> for Value {
    fn from(value: u64) -> Self {
        Self::Number(value)
    }
}

/// What is wrong with a key's value. Never quotes the value: it may be a secret typed
/// in the wrong key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ValueError {
    /// Not `true` or `false`.
    #[error("must be true or false")]
    Bool,
    /// A relative `data_dir`, and the working directory cannot be told.
    #[error("cannot be made absolute (the working directory: {0}); give an absolute path")]
    DataDir(std::io::ErrorKind),
    /// Not a whole number.
    #[error("must be a whole number, 0 or more")]
    Number,
    /// A negative number in the file.
    #[error("must be 0 or more")]
    Negative,
    /// Not text.
    #[error("must be text")]
    Text,
    /// Not one of the words.
    #[error("must be one of: {}", .0.join(", "))]
    Choice(&'static [&'static str]),
    /// Neither text, a number nor a boolean in the file.
    #[error("must be text, a number or true/false")]
    Scalar,
    /// A list of anything but URLs for `amqp_url`.
    #[error("must be URLs (a comma in one written %2C)")]
    UrlList,
    /// A count out of its range.
    #[error("must be between {min} and {max}")]
    Range {
        /// The least allowed.
        min: u64,
        /// The most allowed.
        max: u64,
    },
    /// A duration out of its range (beyond a century is certainly a mistake).
    #[error("must be between {min} and 3153600000 seconds")]
    Seconds {
        /// The least allowed.
        min: u64,
    },
    /// Not an address and port.
    #[error("must be an IP address and port, e.g. {example}")]
    Address {
        /// An address that would do.
        example: &'static str,
    },
    /// Not an `http(s)://` URL that can be a base.
    #[error("must be an http:// or https:// URL")]
    HttpUrl,
    /// A URL holding credentials where none belong.
    #[error("must not hold a user or password")]
    UrlCredentials,
    /// Not a comma-separated list of host names.
    #[error("must be host names (letters, digits, - and .), separated by commas")]
    Hosts,
    /// An exchange prefix too long for AMQP names.
    #[error("is too long: exchange names are at most 255 bytes")]
    PrefixTooLong,
    /// An exchange prefix with other characters than a name's.
    #[error("may hold only letters, digits and - _ . :")]
    PrefixCharacters,
    /// A `--domain` flag of another shape.
    #[error("expected DOMAIN=env:NAME[,file:PATH...] or DOMAIN=forward")]
    DomainFlag,
    /// The same domain in two spellings.
    #[error("the same domain is configured twice (domains are case-insensitive)")]
    DuplicateDomain,
    /// No domain at all, where webhooks are received.
    #[error("no domain is configured: add [domains.\"<name>.biapi.pro\"] to the file or --domain")]
    NoDomain,
    /// Secrets for a domain that does not verify.
    #[error("mode \"forward\" does not verify: remove the secrets or use mode \"verify\"")]
    ForwardWithSecrets,
    /// `unroutable = "hold"` with the journal off.
    #[error("hold keeps webhooks in the journal: set journal to fallback or always")]
    HoldWithoutJournal,
    /// A verify-mode domain without a secret.
    #[error("mode \"verify\" needs at least one secret (env:NAME or file:PATH)")]
    VerifyWithoutSecret,
}

impl Value {
    /// This value as `kind` wants it: text from a flag or the environment becomes a
    /// boolean or a number.
    ///
    /// # Errors
    /// [`ValueError`] when it does not fit.
    pub(crate) fn fit(self, kind: Kind) -> Result<Self, ValueError> {
        match (kind, self) {
            (Kind::Bool, Self::Text(text)) => match text.as_str() {
                "true" => Ok(Self::Bool(true)),
                "false" => Ok(Self::Bool(false)),
                _ => Err(ValueError::Bool),
            },
            (Kind::Number, Self::Text(text)) => text
                .parse()
                .map(Self::Number)
                .map_err(|_| ValueError::Number),
            (Kind::Text | Kind::Credential | Kind::SecretRef, value @ Self::Text(_))
            | (Kind::Bool, value @ Self::Bool(_))
            | (Kind::Number, value @ Self::Number(_)) => Ok(value),
            (Kind::Choice(words), Self::Text(text)) if words.contains(&text.as_str()) => {
                Ok(Self::Text(text))
            }
            (Kind::Choice(words), _) => Err(ValueError::Choice(words)),
            (Kind::Text | Kind::Credential | Kind::SecretRef, _) => Err(ValueError::Text),
            (Kind::Bool, _) => Err(ValueError::Bool),
            (Kind::Number, _) => Err(ValueError::Number),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_of_the_wrong_kind_are_named_without_being_quoted() {
        let choice = Kind::Choice(&["reject", "accept"]);
        assert_eq!(
            Value::from("hunter2").fit(choice).unwrap_err().to_string(),
            "must be one of: reject, accept"
        );
        assert_eq!(
            Value::from("hunter2")
                .fit(Kind::Number)
                .unwrap_err()
                .to_string(),
            "must be a whole number, 0 or more"
        );
        assert!(Value::Number(1).fit(Kind::Text).is_err());
        assert_eq!(Value::from("5").fit(Kind::Number), Ok(Value::Number(5)));
        assert_eq!(Value::from("true").fit(Kind::Bool), Ok(Value::Bool(true)));
        assert!(Value::from("yes").fit(Kind::Bool).is_err());
    }
}
