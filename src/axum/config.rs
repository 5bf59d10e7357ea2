//! What the extractor checks webhooks against: the domains (verify or forward), the
//! body limit and read time-out, and the public path prefix.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use crate::domain::Domain;
use crate::keyring::KeyRing;
use crate::verify::{FreshnessWindow, Verifier};

/// Default body limit: 32 MiB, since Powens' first syncs can weigh several MB.
pub const DEFAULT_BODY_LIMIT: usize = 32 * 1024 * 1024;
/// Default time to receive a body.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How one domain's webhooks are checked.
#[derive(Debug, Clone)]
pub enum DomainPolicy {
    /// The HMAC headers are required and verified with this verifier (its key ring and
    /// freshness window); anything else is refused (401).
    Verify(Verifier),
    /// TeaL's behaviour: HMAC headers or a bearer token are required and passed on
    /// unverified, for consumers to check.
    Forward,
}

impl DomainPolicy {
    /// Verify mode for `domain` with `keys`, dates checked against `freshness`.
    pub fn verify(domain: &Domain, keys: KeyRing, freshness: FreshnessWindow) -> Self {
        Self::Verify(
            Verifier::new(keys)
                .for_domain(domain.clone())
                .with_freshness(freshness),
        )
    }
}

pub(crate) type Domains = HashMap<Domain, DomainPolicy>;

/// The configuration of [`VerifiedPowensWebhook`](super::VerifiedPowensWebhook) and
/// [`PowensWebhookLayer`](super::PowensWebhookLayer), built in code with
/// [`WebhookConfig::builder`]. Cheap to clone: clones share the domains, which
/// [`set_domains`](Self::set_domains) replaces for all of them (secret rotation).
#[derive(Clone)]
pub struct WebhookConfig {
    inner: Arc<Inner>,
}

struct Inner {
    /// Replaced whole when secrets are re-read; a request keeps the map it started with.
    domains: RwLock<Arc<Domains>>,
    public_path_prefix: Box<str>,
    body_limit: usize,
    read_timeout: Duration,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("domains", &self.domains().keys().collect::<Vec<_>>())
            .field("public_path_prefix", &self.inner.public_path_prefix)
            .field("body_limit", &self.inner.body_limit)
            .field("read_timeout", &self.inner.read_timeout)
            .finish()
    }
}

impl WebhookConfig {
    /// A builder with the defaults: no domain, a 32 MiB body limit, a 30 s read
    /// time-out, the default [`FreshnessWindow`], no path prefix.
    pub fn builder() -> WebhookConfigBuilder {
        WebhookConfigBuilder {
            domains: Vec::new(),
            freshness: FreshnessWindow::default(),
            body_limit: DEFAULT_BODY_LIMIT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            public_path_prefix: String::new(),
        }
    }

    /// The domains served now; any other gets 404.
    pub fn domains(&self) -> Arc<Domains> {
        self.inner
            .domains
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the domains and their policies (after secrets were re-read); requests
    /// already being verified finish with the old ones.
    pub fn set_domains(&self, domains: impl IntoIterator<Item = (Domain, DomainPolicy)>) {
        *self
            .inner
            .domains
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(domains.into_iter().collect());
    }

    /// The largest body accepted, compressed or decompressed, in bytes.
    pub fn body_limit(&self) -> usize {
        self.inner.body_limit
    }

    /// How long a body may take to arrive.
    pub fn read_timeout(&self) -> Duration {
        self.inner.read_timeout
    }

    /// The path prefix a reverse proxy strips, put back in front of the path before
    /// verifying ("" for none).
    pub fn public_path_prefix(&self) -> &str {
        &self.inner.public_path_prefix
    }
}

/// Builds a [`WebhookConfig`].
///
/// ```
/// use powens_webhooks::axum::WebhookConfig;
/// use powens_webhooks::{KeyRing, Secret};
///
/// let config = WebhookConfig::builder()
///     .verify("budgea.biapi.pro".parse()?, KeyRing::new(Secret::new("secret_key")?))
///     .forward("legacy.biapi.pro".parse()?)
///     .body_limit(8 << 20)
///     .public_path_prefix("/hooks")
///     .build()?;
/// assert_eq!(config.domains().len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct WebhookConfigBuilder {
    domains: Vec<(Domain, Option<KeyRing>)>,
    freshness: FreshnessWindow,
    body_limit: usize,
    read_timeout: Duration,
    public_path_prefix: String,
}

impl WebhookConfigBuilder {
    /// Verifies `domain`'s webhooks with `keys` (tried in order), with the builder's
    /// freshness window.
    pub fn verify(mut self, domain: Domain, keys: KeyRing) -> Self {
        self.domains.push((domain, Some(keys)));
        self
    }

    /// Forwards `domain`'s webhooks unverified (TeaL's behaviour).
    pub fn forward(mut self, domain: Domain) -> Self {
        self.domains.push((domain, None));
        self
    }

    /// The window `BI-Signature-Date` must fall in (default: 15 min old, 2 min ahead).
    pub fn freshness(mut self, window: FreshnessWindow) -> Self {
        self.freshness = window;
        self
    }

    /// The largest body accepted, before and after decompression (default 32 MiB).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// How long a body may take to arrive before the request gets 408 (default 30 s).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The path prefix a reverse proxy strips (e.g. `/hooks`): Powens signed the public
    /// path, so it is put back before verifying.
    pub fn public_path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.public_path_prefix = prefix.into();
        self
    }

    /// The configuration.
    ///
    /// # Errors
    /// [`WebhookConfigError`]: no domain, the same domain twice, a zero body limit or
    /// read time-out, or a path prefix that is not a plain `/path`.
    pub fn build(self) -> Result<WebhookConfig, WebhookConfigError> {
        if self.domains.is_empty() {
            return Err(WebhookConfigError::NoDomain);
        }
        self.build_any()
    }

    /// As [`build`](Self::build), with no domain allowed: for the dispatcher, which
    /// reads the relay's configuration but receives no webhook.
    pub(crate) fn build_any(self) -> Result<WebhookConfig, WebhookConfigError> {
        if self.body_limit == 0 {
            return Err(WebhookConfigError::ZeroBodyLimit);
        }
        if self.read_timeout.is_zero() {
            return Err(WebhookConfigError::ZeroReadTimeout);
        }
        check_path_prefix(&self.public_path_prefix)?;
        let mut domains = Domains::with_capacity(self.domains.len());
        for (domain, keys) in self.domains {
            let policy = match keys {
                Some(keys) => DomainPolicy::verify(&domain, keys, self.freshness),
                None => DomainPolicy::Forward,
            };
            if domains.insert(domain.clone(), policy).is_some() {
                return Err(WebhookConfigError::DuplicateDomain(domain));
            }
        }
        Ok(WebhookConfig {
            inner: Arc::new(Inner {
                domains: RwLock::new(Arc::new(domains)),
                public_path_prefix: self.public_path_prefix.into(),
                body_limit: self.body_limit,
                read_timeout: self.read_timeout,
            }),
        })
    }
}

/// Why a [`WebhookConfig`] cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookConfigError {
    /// No domain was configured: every webhook would get 404.
    #[error("no domain is configured")]
    NoDomain,
    /// A domain was configured twice.
    #[error("{0} is configured twice")]
    DuplicateDomain(Domain),
    /// The body limit is 0.
    #[error("the body limit must be at least 1 byte")]
    ZeroBodyLimit,
    /// The read time-out is 0.
    #[error("the read time-out must be longer than 0")]
    ZeroReadTimeout,
    /// The path prefix does not start with `/`, or ends with one.
    #[error("the path prefix must start with / and not end with /, e.g. /hooks")]
    PathPrefixShape,
    /// The path prefix holds other than visible ASCII, or `?`, `#` or `%`.
    #[error("the path prefix must be a plain path: visible ASCII, no ? # or %")]
    PathPrefixCharacters,
}

/// Checks a public path prefix: "" or `/a/b` (visible ASCII, no `?`, `#`, `%`, no
/// trailing `/`).
///
/// # Errors
/// [`WebhookConfigError::PathPrefixShape`] or
/// [`WebhookConfigError::PathPrefixCharacters`].
pub(crate) fn check_path_prefix(prefix: &str) -> Result<(), WebhookConfigError> {
    if prefix.is_empty() {
        return Ok(());
    }
    if !prefix.starts_with('/') || prefix.ends_with('/') {
        return Err(WebhookConfigError::PathPrefixShape);
    }
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'?' | b'#' | b'%'))
    {
        return Err(WebhookConfigError::PathPrefixCharacters);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn domain(name: &str) -> Domain {
        Domain::parse(name).unwrap()
    }

    #[test]
    fn builder_refuses_what_would_serve_nothing_or_misverify() {
        let keys = || KeyRing::new(Secret::new("k").unwrap());
        assert_eq!(
            WebhookConfig::builder().build().unwrap_err(),
            WebhookConfigError::NoDomain
        );
        let one = || WebhookConfig::builder().forward(domain("a.biapi.pro"));
        assert_eq!(
            one().forward(domain("A.biapi.pro")).build().unwrap_err(),
            WebhookConfigError::DuplicateDomain(domain("a.biapi.pro"))
        );
        assert_eq!(
            one().body_limit(0).build().unwrap_err(),
            WebhookConfigError::ZeroBodyLimit
        );
        assert_eq!(
            one().read_timeout(Duration::ZERO).build().unwrap_err(),
            WebhookConfigError::ZeroReadTimeout
        );
        for (prefix, error) in [
            ("hooks", WebhookConfigError::PathPrefixShape),
            ("/hooks/", WebhookConfigError::PathPrefixShape),
            ("/ho oks", WebhookConfigError::PathPrefixCharacters),
            ("/hooks?x", WebhookConfigError::PathPrefixCharacters),
            ("/h%20", WebhookConfigError::PathPrefixCharacters),
        ] {
            assert_eq!(
                one().public_path_prefix(prefix).build().unwrap_err(),
                error,
                "{prefix}"
            );
        }
        let config = one()
            .verify(domain("b.biapi.pro"), keys())
            .public_path_prefix("/hooks")
            .build()
            .unwrap();
        assert_eq!(config.public_path_prefix(), "/hooks");
        assert!(matches!(
            config.domains().get(&domain("b.biapi.pro")),
            Some(DomainPolicy::Verify(_))
        ));
    }

    #[test]
    fn set_domains_is_seen_by_every_clone() {
        let config = WebhookConfig::builder()
            .forward(domain("a.biapi.pro"))
            .build()
            .unwrap();
        let clone = config.clone();
        config.set_domains([(domain("b.biapi.pro"), DomainPolicy::Forward)]);
        assert!(clone.domains().contains_key(&domain("b.biapi.pro")));
        assert!(!clone.domains().contains_key(&domain("a.biapi.pro")));
    }
}
