//! The Sentinel form of `callback_store`:
//!
//! ```text
//! redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/master-name[/db][?option=value&…]
//! rediss+sentinel://…   (TLS to the sentinels and to the Redis nodes)
//! ```
//!
//! The hosts are the sentinels (port 26379 by default); the path names the primary as
//! the sentinels know it (`sentinel monitor <name> …`), then the database (0 by
//! default). The user and password are the Redis nodes' (`requirepass`, ACL); the
//! sentinels get them too only with `sentinel_auth=true` (sentinels with their own
//! `requirepass`, set to the same password). Options:
//!
//! - `wait_replicas=N` (default 1): a callback's creation is answered only once `N`
//!   replicas acknowledged it (`WAIT`), so that a fail-over cannot lose it; 0 answers
//!   as soon as the primary has it.
//! - `sentinel_auth=true|false` (default false).
//!
//! The redis crate has no URL form of its own for Sentinel: this one is the one Rust
//! clients that have one use (rustis, redis-driver), with TLS as `rediss+`.

use percent_encoding::percent_decode_str;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionAddr, TlsMode};

use crate::relay::callback::store::StoreSpecError;

/// The sentinels' port when the URL gives none.
const SENTINEL_PORT: u16 = 26379;
/// Most replicas a creation may wait for (a typo such as `wait_replicas=10` would
/// otherwise fail every creation).
const MAX_WAIT_REPLICAS: u32 = 8;

const FORM: StoreSpecError = StoreSpecError::new(
    "a Sentinel URL is redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/master-name[/db] \
     (or rediss+sentinel:// for TLS)",
);

/// A Sentinel URL, read.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SentinelUrl {
    tls: bool,
    sentinels: Vec<(String, u16)>,
    master: String,
    db: i64,
    username: Option<String>,
    password: Option<String>,
    sentinel_auth: bool,
    wait_replicas: u32,
}

impl std::fmt::Debug for SentinelUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelUrl")
            .field("tls", &self.tls)
            .field("sentinels", &self.sentinels)
            .field("master", &self.master)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("sentinel_auth", &self.sentinel_auth)
            .field("wait_replicas", &self.wait_replicas)
            .finish()
    }
}

/// Whether `text` is in the Sentinel form (whether or not it is a valid one).
pub(crate) fn is_sentinel_url(text: &str) -> bool {
    text.starts_with("redis+sentinel://") || text.starts_with("rediss+sentinel://")
}

fn decoded(text: &str) -> Result<String, StoreSpecError> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|d| d.into_owned())
        .map_err(|_| StoreSpecError::new("a Sentinel URL's user, password and name are UTF-8"))
}

/// `host[:port]` or `[v6]:port`.
fn sentinel(text: &str) -> Result<(String, u16), StoreSpecError> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(FORM)?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or(FORM)?)),
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"-.:".contains(&b);
    if host.is_empty() || !host.bytes().all(plain) {
        return Err(StoreSpecError::new(
            "a Sentinel URL's hosts are host:port, separated by commas",
        ));
    }
    let port = match port {
        None => SENTINEL_PORT,
        Some(port) => port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or(StoreSpecError::new(
                "a sentinel's port is a number from 1 to 65535",
            ))?,
    };
    Ok((host.to_owned(), port))
}

impl SentinelUrl {
    /// Reads `text`, which [`is_sentinel_url`].
    pub(crate) fn parse(text: &str) -> Result<Self, StoreSpecError> {
        let (tls, rest) = if let Some(rest) = text.strip_prefix("redis+sentinel://") {
            (false, rest)
        } else {
            (true, text.strip_prefix("rediss+sentinel://").ok_or(FORM)?)
        };
        if rest.contains('#') {
            return Err(FORM);
        }
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.split_once('/').ok_or(StoreSpecError::new(
            "a Sentinel URL names the primary as its path: redis+sentinel://host:port,…/master-name",
        ))?;
        // The user information ends at the last `@`: a password may hold one.
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(userinfo) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let user = Some(decoded(user)?).filter(|u| !u.is_empty());
                let password = Some(decoded(password)?).filter(|p| !p.is_empty());
                (user, password)
            }
        };
        let sentinels = hosts
            .split(',')
            .map(sentinel)
            .collect::<Result<Vec<_>, _>>()?;
        let mut segments = path.split('/');
        let master = decoded(segments.next().unwrap_or_default())?;
        if master.is_empty() || master.chars().any(|c| c.is_control() || c == ' ') {
            return Err(StoreSpecError::new(
                "a Sentinel URL names the primary as its path: redis+sentinel://host:port,…/master-name",
            ));
        }
        let db = match segments.next() {
            None | Some("") => 0,
            Some(db) => db
                .parse()
                .ok()
                .filter(|db| *db >= 0)
                .ok_or(StoreSpecError::new(
                    "a Sentinel URL's database (after the primary's name) is a number",
                ))?,
        };
        if segments.any(|s| !s.is_empty()) {
            return Err(FORM);
        }
        let mut url = Self {
            tls,
            sentinels,
            master,
            db,
            username,
            password,
            sentinel_auth: false,
            wait_replicas: 1,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=').unwrap_or((pair, "")) {
                ("wait_replicas", n) => {
                    url.wait_replicas = n
                        .parse()
                        .ok()
                        .filter(|n| *n <= MAX_WAIT_REPLICAS)
                        .ok_or(StoreSpecError::new("wait_replicas is a number from 0 to 8"))?;
                }
                ("sentinel_auth", "true") => url.sentinel_auth = true,
                ("sentinel_auth", "false") => url.sentinel_auth = false,
                _ => {
                    return Err(StoreSpecError::new(
                        "a Sentinel URL's options are wait_replicas=N and sentinel_auth=true|false",
                    ));
                }
            }
        }
        Ok(url)
    }

    /// How many replicas a write waits for.
    pub(crate) fn wait_replicas(&self) -> u32 {
        self.wait_replicas
    }

    /// A client that asks the sentinels for the primary, and checks that it is one.
    ///
    /// # Errors
    /// The crate's, if it refuses the settings.
    pub(crate) fn client(&self) -> redis::RedisResult<SentinelClient> {
        let sentinels = self.sentinels.iter().map(|(host, port)| match self.tls {
            true => ConnectionAddr::TcpTls {
                host: host.clone(),
                port: *port,
                insecure: false,
                tls_params: None,
            },
            false => ConnectionAddr::Tcp(host.clone(), *port),
        });
        let mut builder =
            SentinelClientBuilder::new(sentinels, &self.master, SentinelServerType::Master)?
                .set_client_to_redis_db(self.db);
        if self.tls {
            builder = builder.set_client_to_redis_tls_mode(TlsMode::Secure);
        }
        if let Some(username) = &self.username {
            builder = builder.set_client_to_redis_username(username);
            if self.sentinel_auth {
                builder = builder.set_client_to_sentinel_username(username);
            }
        }
        if let Some(password) = &self.password {
            builder = builder.set_client_to_redis_password(password);
            if self.sentinel_auth {
                builder = builder.set_client_to_sentinel_password(password);
            }
        }
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sentinel_form_is_read() {
        let url = SentinelUrl::parse(
            "redis+sentinel://u:p%40ss@s1:26380,10.0.0.2,[::1]:26381/my-master/2?wait_replicas=2",
        )
        .unwrap();
        assert!(!url.tls);
        assert_eq!(
            url.sentinels,
            [
                ("s1".to_owned(), 26380),
                ("10.0.0.2".to_owned(), 26379),
                ("::1".to_owned(), 26381)
            ]
        );
        assert_eq!((url.master.as_str(), url.db), ("my-master", 2));
        assert_eq!(url.username.as_deref(), Some("u"));
        assert_eq!(url.password.as_deref(), Some("p@ss"));
        assert_eq!((url.wait_replicas(), url.sentinel_auth), (2, false));
        assert!(url.client().is_ok());

        let url = SentinelUrl::parse("rediss+sentinel://:pw@s1/m?sentinel_auth=true").unwrap();
        assert!(url.tls && url.sentinel_auth);
        assert_eq!(
            (url.username.as_deref(), url.password.as_deref()),
            (None, Some("pw"))
        );
        assert_eq!((url.db, url.wait_replicas), (0, 1));
        assert!(url.client().is_ok());

        let url = SentinelUrl::parse("redis+sentinel://s1/m/?wait_replicas=0").unwrap();
        assert_eq!((url.db, url.wait_replicas), (0, 0));
    }

    #[test]
    fn malformed_sentinel_urls_are_refused_without_quoting_them() {
        for text in [
            "redis+sentinel://s1",
            "redis+sentinel://s1/",
            "redis+sentinel:///m",
            "redis+sentinel://s1,/m",
            "redis+sentinel://s1:0/m",
            "redis+sentinel://s1:x/m",
            "redis+sentinel://s1/m/x",
            "redis+sentinel://s1/m/1/2",
            "redis+sentinel://s1/m/-1",
            "redis+sentinel://s1/m?wait_replicas=9",
            "redis+sentinel://s1/m?wait_replica=1",
            "redis+sentinel://s1/m?sentinel_auth=yes",
            "redis+sentinel://s1/m#f",
            "redis+sentinel://s 1/m",
            "redis+sentinel://[::1/m",
            "redis+sentinel://:PASSW0RD@/m",
            "redis+sentinel://:PASSW0RD@s1/m?password=x",
            "redis+sentinel://u:%FF@s1/m",
            "redis+sentinel://s1/%FF",
        ] {
            let error = SentinelUrl::parse(text).expect_err(text);
            let shown = format!("{error} {error:?}");
            assert!(
                !shown.contains("PASSW0RD") && !shown.contains(text),
                "{shown}"
            );
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let text = "redis+sentinel://u:S3CRET@s1:26379,s2/m?wait_replicas=1";
        let url = SentinelUrl::parse(text).unwrap();
        let shown = format!("{url:?}");
        assert!(
            !shown.contains("S3CRET") && shown.contains("[REDACTED]"),
            "{shown}"
        );
        // The configured store, as the configuration's Debug shows it.
        let spec = crate::relay::callback::store::StoreSpec::parse(text, "unused".as_ref());
        assert_eq!(
            format!("{:?}", spec.unwrap()),
            "Redis(redis+sentinel://s1:26379,s2/m?…)"
        );
    }
}
