//! The `[domains."…"]` tables and `--domain` flags: each domain's mode and secrets,
//! resolved into key rings.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::value::ValueError;
use crate::domain::Domain;
use crate::keyring::KeyRing;
use crate::relay::secret_ref::SecretRef;

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
    #[serde(default)]
    pub(super) secrets: Vec<String>,
}

/// Where a verify-mode domain's secrets come from, with the configuration key that
/// named them: read again on SIGHUP.
pub(super) type SecretRefs = BTreeMap<Domain, (String, Vec<SecretRef>)>;

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
                for (i, text) in spec.secrets.iter().enumerate() {
                    match SecretRef::parse(text) {
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
            secrets: value.split(',').map(str::to_owned).collect(),
        }
    };
    Ok((name.to_owned(), domain))
}

/// The key ring of the secrets `refs` (numbered as in the configuration), or `None`
/// after reporting each one that cannot be read (under `key`).
pub(super) fn key_ring<'r>(
    key: &str,
    refs: impl IntoIterator<Item = (usize, &'r SecretRef)>,
    problem: &mut impl FnMut(&str, &dyn std::fmt::Display),
) -> Option<KeyRing> {
    let mut secrets = Vec::new();
    let mut unreadable = false;
    for (i, r) in refs {
        match r.resolve() {
            Ok(secret) => secrets.push(secret),
            Err(e) => {
                unreadable = true;
                problem(&format!("{key}.secrets[{i}]"), &e);
            }
        }
    }
    if unreadable {
        return None;
    }
    let mut secrets = secrets.into_iter();
    let first = KeyRing::new(secrets.next()?);
    Some(secrets.fold(first, |ring, s| ring.with_key(s, None)))
}
