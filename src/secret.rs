//! Webhook secrets: bytes that never print and are wiped when dropped.

use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// A Powens webhook secret (the `secret_key` returned by `POST /webhooks/auth`).
///
/// The HMAC key is the secret's bytes as given: Powens uses the UTF-8 bytes of the
/// `secret_key` string, not a base64 decoding of it. The bytes are zeroized when the
/// value is dropped, and neither `Debug` nor any error message shows any of them.
///
/// ```
/// use powens_webhooks::Secret;
///
/// let secret = Secret::new("s3cr3t")?;
/// assert_eq!(format!("{secret:?}"), "Secret([REDACTED])");
/// assert!(Secret::new("").is_err());
/// # Ok::<(), powens_webhooks::SecretError>(())
/// ```
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// A secret from its text, as Powens returns it.
    ///
    /// # Errors
    /// [`SecretError::Empty`] when `text` is empty.
    pub fn new(text: &str) -> Result<Self, SecretError> {
        Self::from_bytes(text.as_bytes().to_vec())
    }

    /// A secret from raw key bytes. The vector is taken over (and later zeroized), not copied.
    ///
    /// # Errors
    /// [`SecretError::Empty`] when `bytes` is empty.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, SecretError> {
        let bytes = Zeroizing::new(bytes);
        if bytes.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Self(bytes))
    }

    /// The secret held in the environment variable `name`.
    ///
    /// # Errors
    /// [`SecretError::EnvMissing`] when the variable is unset or not Unicode,
    /// [`SecretError::Empty`] when it is empty.
    pub fn from_env(name: &str) -> Result<Self, SecretError> {
        let value = std::env::var_os(name)
            .and_then(|v| v.into_string().ok())
            .ok_or_else(|| SecretError::EnvMissing {
                name: name.to_owned(),
            })?;
        Self::from_bytes(value.into_bytes()).map_err(|_| SecretError::EnvEmpty {
            name: name.to_owned(),
        })
    }

    /// The secret stored in the file at `path`.
    ///
    /// One trailing line ending (`\n` or `\r\n`) is removed: files written by editors,
    /// `echo` or secret managers usually end with one, and a Powens secret never does.
    ///
    /// # Errors
    /// [`SecretError::FileUnreadable`] when the file cannot be read,
    /// [`SecretError::FileEmpty`] when it holds nothing but a line ending.
    pub fn from_file(path: &Path) -> Result<Self, SecretError> {
        let mut bytes =
            Zeroizing::new(
                std::fs::read(path).map_err(|source| SecretError::FileUnreadable {
                    path: path.to_owned(),
                    source,
                })?,
            );
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        if bytes.is_empty() {
            return Err(SecretError::FileEmpty {
                path: path.to_owned(),
            });
        }
        Ok(Self(bytes))
    }

    /// The key bytes, for computing a MAC. Kept crate-private so that no caller can
    /// print them by accident.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

/// Why a [`Secret`] could not be made. No variant contains any byte of a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The secret has no bytes: an HMAC with an empty key authenticates nothing.
    #[error("the secret is empty")]
    Empty,
    /// The named environment variable is unset (or not valid Unicode).
    #[error("environment variable {name} is not set")]
    EnvMissing {
        /// The variable's name.
        name: String,
    },
    /// The named environment variable is set but empty.
    #[error("environment variable {name} is empty")]
    EnvEmpty {
        /// The variable's name.
        name: String,
    },
    /// The secret file could not be read.
    #[error("cannot read the secret file {}: {source}", path.display())]
    FileUnreadable {
        /// The file's path.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The secret file is empty (or holds only a line ending).
    #[error("the secret file {} is empty", path.display())]
    FileEmpty {
        /// The file's path.
        path: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_nothing_of_the_secret() {
        let secret = Secret::new("hunter2-very-secret").unwrap();
        let shown = format!("{secret:?} {secret:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn empty_secret_is_an_error() {
        assert!(matches!(Secret::new(""), Err(SecretError::Empty)));
        assert!(matches!(
            Secret::from_bytes(vec![]),
            Err(SecretError::Empty)
        ));
    }

    #[test]
    fn file_secret_loses_one_trailing_line_ending_only() {
        let dir = std::env::temp_dir().join(format!("pw-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases: [(&[u8], &[u8]); 4] = [
            (b"abc\n", b"abc"),
            (b"abc\r\n", b"abc"),
            (b"abc \n\n", b"abc \n"),
            (b"abc", b"abc"),
        ];
        for (i, (content, expected)) in cases.iter().enumerate() {
            let path = dir.join(format!("s{i}"));
            std::fs::write(&path, content).unwrap();
            assert_eq!(Secret::from_file(&path).unwrap().expose(), *expected);
        }
        let empty = dir.join("empty");
        std::fs::write(&empty, b"\n").unwrap();
        assert!(matches!(
            Secret::from_file(&empty),
            Err(SecretError::FileEmpty { .. })
        ));
        let missing = dir.join("missing");
        let err = Secret::from_file(&missing).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
