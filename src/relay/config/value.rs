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

impl Value {
    /// This value as `kind` wants it: text from a flag or the environment becomes a
    /// boolean or a number. The problem's text when it does not fit; it never quotes
    /// the value (it may be a secret typed in the wrong key).
    pub(crate) fn fit(self, kind: Kind) -> Result<Self, String> {
        match (kind, self) {
            (Kind::Bool, Self::Text(text)) => match text.as_str() {
                "true" => Ok(Self::Bool(true)),
                "false" => Ok(Self::Bool(false)),
                _ => Err("must be true or false".into()),
            },
            (Kind::Number, Self::Text(text)) => text
                .parse()
                .map(Self::Number)
                .map_err(|_| "must be a whole number, 0 or more".into()),
            (Kind::Text | Kind::Credential | Kind::SecretRef, value @ Self::Text(_))
            | (Kind::Bool, value @ Self::Bool(_))
            | (Kind::Number, value @ Self::Number(_)) => Ok(value),
            (Kind::Choice(words), Self::Text(text)) if words.contains(&text.as_str()) => {
                Ok(Self::Text(text))
            }
            (Kind::Choice(words), _) => Err(format!("must be one of: {}", words.join(", "))),
            (Kind::Text | Kind::Credential | Kind::SecretRef, _) => Err("must be text".into()),
            (Kind::Bool, _) => Err("must be true or false".into()),
            (Kind::Number, _) => Err("must be a whole number, 0 or more".into()),
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
            Value::from("hunter2").fit(choice),
            Err("must be one of: reject, accept".into())
        );
        assert_eq!(
            Value::from("hunter2").fit(Kind::Number),
            Err("must be a whole number, 0 or more".into())
        );
        assert!(Value::Number(1).fit(Kind::Text).is_err());
        assert_eq!(Value::from("5").fit(Kind::Number), Ok(Value::Number(5)));
        assert_eq!(Value::from("true").fit(Kind::Bool), Ok(Value::Bool(true)));
        assert!(Value::from("yes").fit(Kind::Bool).is_err());
    }
}
