//! Where a secret is read from: `env:NAME` or `file:PATH`, never the secret itself.

use std::fmt;
use std::path::PathBuf;

use crate::secret::{Secret, SecretError};

/// Where a secret comes from: `env:NAME` or `file:PATH`; never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretRef {
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
    pub(crate) fn parse(text: &str) -> Result<Self, SecretRefError> {
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
    pub(crate) fn resolve(&self) -> Result<Secret, SecretError> {
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
pub(crate) struct SecretRefError;

#[cfg(test)]
mod tests {
    use super::*;

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
