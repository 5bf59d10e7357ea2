//! The `[domains."…"]` tables and `--domain` flags: each domain's mode and secrets
//! (`"env:NAME"`, `"file:PATH"`, or `{ ref = "…", expires_at = "…" }` for one that
//! stops being accepted), resolved into key rings.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::value::ValueError;
use crate::domain::Domain;
use crate::keyring::{Key, KeyRing};
use crate::relay::secret_ref::{SecretRef, SecretRefError};

/// How a domain's webhooks are checked, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Mode {
    /// The HMAC headers are required and verified.
    #[default]
    Verify,
    /// TeaL's behaviour: passed on unverified.
    Forward,
}

/// A `[domains."…"]` table, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileDomain {
    #[serde(default)]
    pub(super) mode: Mode,
    /// Each a reference, or a table with its expiry: checked entry by entry.
    #[serde(default)]
    pub(super) secrets: Vec<toml::Value>,
}

/// One secret of a domain: where it is read, and when it stops being accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SecretSpec {
    reference: SecretRef,
    expires_at: Option<DateTime<Utc>>,
}

/// A `secrets` entry that is neither a reference nor a table of one and its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum SecretEntryError {
    #[error(transparent)]
    Ref(#[from] SecretRefError),
    #[error("must be \"env:NAME\", \"file:PATH\" or {{ ref = \"env:NAME\", expires_at = \"…\" }}")]
    Shape,
    #[error("a table takes ref (\"env:NAME\" or \"file:PATH\") and expires_at only")]
    TableKeys,
    #[error("expires_at must be a date and time with its offset, e.g. \"2026-11-01T00:00:00Z\"")]
    ExpiresAt,
}

impl SecretSpec {
    /// `"env:NAME"`, `"file:PATH"` or `{ ref = "…", expires_at = "<RFC 3339>" }` (a
    /// TOML date-time with its offset also does for `expires_at`). The text is never
    /// quoted back: it may be a secret written inline by mistake.
    fn parse(entry: &toml::Value) -> Result<Self, SecretEntryError> {
        match entry {
            toml::Value::String(text) => Ok(Self {
                reference: SecretRef::parse(text)?,
                expires_at: None,
            }),
            toml::Value::Table(table) => {
                if table.keys().any(|k| k != "ref" && k != "expires_at") {
                    return Err(SecretEntryError::TableKeys);
                }
                let reference = match table.get("ref") {
                    Some(toml::Value::String(text)) => SecretRef::parse(text)?,
                    _ => return Err(SecretEntryError::TableKeys),
                };
                let expires_at = match table.get("expires_at") {
                    None => None,
                    Some(toml::Value::String(text)) => Some(rfc3339(text)?),
                    Some(toml::Value::Datetime(at)) => Some(rfc3339(&at.to_string())?),
                    Some(_) => return Err(SecretEntryError::ExpiresAt),
                };
                Ok(Self {
                    reference,
                    expires_at,
                })
            }
            _ => Err(SecretEntryError::Shape),
        }
    }
}

fn rfc3339(text: &str) -> Result<DateTime<Utc>, SecretEntryError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| SecretEntryError::ExpiresAt)
}

/// Where a verify-mode domain's secrets come from, with the configuration key that
/// named them: read again on SIGHUP.
pub(super) type SecretRefs = BTreeMap<Domain, (String, Vec<SecretSpec>)>;

/// The domains of the file and the flags (a flag replaces the file's entry): each with
/// its key ring, or `None` for forward mode. Every problem is reported through
/// `problem`, under its key.
pub(super) fn resolve(
    file: BTreeMap<String, FileDomain>,
    flags: &[String],
    need_domains: bool,
    problem: &mut impl FnMut(&str, &dyn std::fmt::Display),
) -> (Vec<(Domain, Option<KeyRing>)>, SecretRefs) {
    // Keyed by the lower-cased name: DNS is case-insensitive, so two spellings in the
    // file are one domain configured twice, and a flag replaces the file's entry.
    let mut specs: BTreeMap<String, (String, FileDomain)> = BTreeMap::new();
    for (name, d) in file {
        let key = format!("domains.{name:?}");
        if specs
            .insert(name.to_ascii_lowercase(), (key.clone(), d))
            .is_some()
        {
            problem(&key, &ValueError::DuplicateDomain);
        }
    }
    for spec in flags {
        match parse_domain_flag(spec) {
            Ok((name, d)) => {
                let key = format!("--domain {name}");
                specs.insert(name.to_ascii_lowercase(), (key, d));
            }
            Err(e) => problem("--domain", &e),
        }
    }
    if specs.is_empty() && need_domains {
        problem("domains", &ValueError::NoDomain);
    }
    let mut domains = Vec::new();
    let mut secret_refs = SecretRefs::new();
    for (name, (key, spec)) in specs {
        let domain = match Domain::parse(&name) {
            Ok(d) => d,
            Err(e) => {
                problem(&key, &e);
                continue;
            }
        };
        match spec.mode {
            Mode::Forward => {
                if !spec.secrets.is_empty() {
                    problem(&format!("{key}.secrets"), &ValueError::ForwardWithSecrets);
                }
                domains.push((domain, None));
            }
            Mode::Verify => {
                if spec.secrets.is_empty() {
                    problem(&format!("{key}.secrets"), &ValueError::VerifyWithoutSecret);
                }
                let mut refs = Vec::new();
                for (i, entry) in spec.secrets.iter().enumerate() {
                    match SecretSpec::parse(entry) {
                        Ok(r) => refs.push((i, r)),
                        Err(e) => problem(&format!("{key}.secrets[{i}]"), &e),
                    }
                }
                let indexed = refs.iter().map(|(i, r)| (*i, r));
                if let Some(ring) = key_ring(&key, indexed, problem) {
                    domains.push((domain.clone(), Some(ring)));
                }
                let refs = refs.into_iter().map(|(_, r)| r).collect();
                secret_refs.insert(domain, (key, refs));
            }
        }
    }
    (domains, secret_refs)
}

/// `DOMAIN=forward` or `DOMAIN=REF[,REF...]`.
fn parse_domain_flag(spec: &str) -> Result<(String, FileDomain), ValueError> {
    let (name, value) = spec.split_once('=').ok_or(ValueError::DomainFlag)?;
    let domain = if value == "forward" {
        FileDomain {
            mode: Mode::Forward,
            secrets: Vec::new(),
        }
    } else {
        FileDomain {
            mode: Mode::Verify,
            secrets: value
                .split(',')
                .map(|r| toml::Value::String(r.to_owned()))
                .collect(),
        }
    };
    Ok((name.to_owned(), domain))
}

/// The key ring of the secrets `refs` (numbered as in the configuration), or `None`
/// after reporting each one that cannot be read (under `key`).
pub(super) fn key_ring<'r>(
    key: &str,
    refs: impl IntoIterator<Item = (usize, &'r SecretSpec)>,
    problem: &mut impl FnMut(&str, &dyn std::fmt::Display),
) -> Option<KeyRing> {
    let mut keys = Vec::new();
    let mut unreadable = false;
    for (i, spec) in refs {
        match spec.reference.resolve() {
            Ok(secret) => keys.push(Key::new(secret, spec.expires_at)),
            Err(e) => {
                unreadable = true;
                problem(&format!("{key}.secrets[{i}]"), &e);
            }
        }
    }
    if unreadable {
        return None;
    }
    KeyRing::from_keys(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(toml_text: &str) -> Result<SecretSpec, SecretEntryError> {
        let table: toml::Table = toml::from_str(&format!("x = {toml_text}")).unwrap();
        SecretSpec::parse(&table["x"])
    }

    #[test]
    fn a_secret_is_a_reference_or_a_table_with_its_expiry() {
        let plain = entry("\"env:A\"").unwrap();
        assert_eq!(plain.reference, SecretRef::Env("A".into()));
        assert_eq!(plain.expires_at, None);
        let at = "2026-11-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        for text in [
            "{ ref = \"env:OLD\", expires_at = \"2026-11-01T00:00:00Z\" }",
            "{ ref = \"env:OLD\", expires_at = \"2026-11-01T01:00:00+01:00\" }",
            "{ ref = \"env:OLD\", expires_at = 2026-11-01T00:00:00Z }",
        ] {
            let spec = entry(text).unwrap();
            assert_eq!(spec.reference, SecretRef::Env("OLD".into()), "{text}");
            assert_eq!(spec.expires_at, Some(at), "{text}");
        }
        assert_eq!(entry("{ ref = \"file:/x\" }").unwrap().expires_at, None);
        let cases = [
            ("\"s3cr3t\"", SecretEntryError::Ref(SecretRefError)),
            (
                "{ ref = \"s3cr3t\" }",
                SecretEntryError::Ref(SecretRefError),
            ),
            ("42", SecretEntryError::Shape),
            (
                "{ expires_at = \"2026-11-01T00:00:00Z\" }",
                SecretEntryError::TableKeys,
            ),
            (
                "{ ref = \"env:A\", secret = \"x\" }",
                SecretEntryError::TableKeys,
            ),
            (
                "{ ref = \"env:A\", expires_at = \"tomorrow\" }",
                SecretEntryError::ExpiresAt,
            ),
            (
                "{ ref = \"env:A\", expires_at = 2026-11-01T00:00:00 }",
                SecretEntryError::ExpiresAt,
            ),
            (
                "{ ref = \"env:A\", expires_at = 1 }",
                SecretEntryError::ExpiresAt,
            ),
        ];
        for (text, error) in cases {
            assert_eq!(entry(text), Err(error), "{text}");
        }
    }
}
