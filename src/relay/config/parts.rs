//! The configuration read part by part: each part's keys into its own settings, every
//! problem collected, then the whole assembled only when there is none.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::domains::{self, SecretRefs};
use super::keys::{self, Key};
use super::read::{self, Reader, check_exchange_prefix};
use super::value::ValueError;
use super::{ConfigError, Problem, RelayConfig};
use crate::axum::{DomainPolicy, WebhookConfig, check_path_prefix};
use crate::relay::broker::{AmqpUrl, BrokerSettings, Exchanges};
use crate::relay::callback::store::StoreSpec;
use crate::relay::console::ConsoleSettings;
use crate::relay::diagnose::DiagnosisSettings;
use crate::relay::dispatch::{DispatcherSettings, PasswordSource};
use crate::relay::durable::{JournalMode, JournalSettings};
use crate::relay::listener::ListenerSettings;
use crate::relay::logs::LogFormat;
use crate::relay::publish::{PublisherSettings, Unroutable};
use crate::relay::secret_ref::SecretRef;
use crate::relay::server::ServerSettings;
use crate::relay::webhook::WebhookSettings;
use crate::verify::FreshnessWindow;

/// Every part's settings, from `r`; the domains are required unless `need_domains` is
/// false (the dispatcher receives no webhook).
pub(super) fn read_all(r: &mut Reader<'_>, need_domains: bool) -> Result<RelayConfig, ConfigError> {
    let server = server(r, keys::LISTEN);
    let broker = broker(r);
    let unroutable = unroutable(r);
    let public_path_prefix = r.text(keys::PUBLIC_PATH_PREFIX);
    if let Err(e) = check_path_prefix(&public_path_prefix) {
        r.problem(keys::PUBLIC_PATH_PREFIX.name, e);
    }
    let body_limit = r.count(keys::BODY_LIMIT_BYTES, 1, u64::MAX);
    let freshness = FreshnessWindow::new(
        r.seconds(keys::SIGNATURE_MAX_AGE_SECS, 0),
        r.seconds(keys::SIGNATURE_MAX_AHEAD_SECS, 0),
    );
    let publisher = PublisherSettings {
        unroutable,
        publish_timeout: r.seconds(keys::PUBLISH_TIMEOUT_SECS, 1),
    };
    let max_in_flight = r.count(keys::MAX_IN_FLIGHT, 1, 1_000_000);
    let diagnosis_rate = r.count(keys::DIAGNOSIS_RATE, 0, 1_000_000);
    let log_format = match r.text(keys::LOG_FORMAT).as_str() {
        "json" => LogFormat::Json,
        _ => LogFormat::Text,
    };
    let store = store(r);
    let journal = journal(r, unroutable);
    let listener = listener(r, server.listen);
    // `dispatch` always runs the dispatcher; `serve` when it hosts it.
    let dispatcher = dispatcher(
        r,
        &server,
        &listener.public_url,
        &public_path_prefix,
        !need_domains,
    );
    // Only serve has a console: dispatch, reading the same file, leaves its keys alone.
    let console = need_domains.then(|| console(r, &server)).flatten();
    let file_domains = std::mem::take(&mut r.file.domains);
    let overrides = r.overrides;
    let mut problem = |key: &str, message: &dyn std::fmt::Display| r.problem(key, message);
    let (domains, refs) = domains::resolve(
        file_domains,
        overrides.domains(),
        need_domains,
        &mut problem,
    );
    if !r.problems.is_empty() {
        let mut problems = std::mem::take(&mut r.problems);
        // In the order of the keys table, whatever order the parts read them in: the
        // file's own problems (unknown keys) first, the domains last.
        problems.sort_by_key(|p| match keys::KEYS.iter().position(|k| k.name == p.key) {
            Some(i) => i + 1,
            None if p.key.starts_with("domains") || p.key.starts_with("--domain") => usize::MAX,
            None => 0,
        });
        return Err(ConfigError::Invalid { problems });
    }
    let builder = domains
        .into_iter()
        .fold(WebhookConfig::builder(), |b, (domain, ring)| match ring {
            Some(ring) => b.verify(domain, ring),
            None => b.forward(domain),
        })
        .freshness(freshness)
        .body_limit(body_limit)
        .read_timeout(server.read_timeout)
        .public_path_prefix(public_path_prefix);
    let built = if need_domains {
        builder.build()
    } else {
        builder.build_any()
    };
    let webhooks = built.map_err(|e| ConfigError::Invalid {
        problems: vec![Problem {
            key: "domains".into(),
            message: e.to_string(),
        }],
    })?;
    Ok(RelayConfig {
        server,
        broker,
        publisher,
        webhook: WebhookSettings {
            webhooks: webhooks.clone(),
            max_in_flight,
            diagnosis: DiagnosisSettings {
                rate: u32::try_from(diagnosis_rate).unwrap_or(u32::MAX),
                // Webhooks may come through the same proxy as callbacks, under the
                // same public path.
                hints: listener_prefix(&listener.public_url).into_iter().collect(),
            },
        },
        store,
        listener,
        dispatcher,
        journal,
        console,
        log_format,
        secrets: Secrets {
            refs,
            freshness,
            webhooks,
        },
    })
}

/// The path of `public_url` as a path prefix (`/teal` for `https://host/teal/`), if
/// it has one.
fn listener_prefix(public_url: &url::Url) -> Option<String> {
    let path = public_url.path().trim_end_matches('/');
    (!path.is_empty()).then(|| path.to_owned())
}

/// A server listening on the address of key `listen`, with the connection limits.
fn server(r: &mut Reader<'_>, listen: &Key) -> ServerSettings {
    ServerSettings {
        listen: address(r, listen),
        max_connections: r.count(keys::MAX_CONNECTIONS, 1, 1_000_000),
        read_timeout: r.seconds(keys::READ_TIMEOUT_SECS, 1),
        max_header_bytes: r.count(keys::MAX_HEADER_BYTES, 1024, 1024 * 1024),
    }
}

/// The address of key `key`.
fn address(r: &mut Reader<'_>, key: &Key) -> SocketAddr {
    r.text(key).parse::<SocketAddr>().unwrap_or_else(|_| {
        let example = key.default.unwrap_or("127.0.0.1:8080");
        r.problem(key.name, ValueError::Address { example });
        SocketAddr::from(([127, 0, 0, 1], 0))
    })
}

fn broker(r: &mut Reader<'_>) -> BrokerSettings {
    let nodes = AmqpUrl::parse_list(&r.text(keys::AMQP_URL)).unwrap_or_else(|e| {
        r.problem(keys::AMQP_URL.name, e);
        Vec::new()
    });
    let prefix = r.text(keys::EXCHANGE_PREFIX);
    if let Err(m) = check_exchange_prefix(&prefix) {
        r.problem(keys::EXCHANGE_PREFIX.name, m);
    }
    BrokerSettings {
        nodes,
        exchanges: Exchanges {
            prefix,
            durable: r.flag(keys::EXCHANGE_DURABLE),
        },
        connect_timeout: r.seconds(keys::CONNECT_TIMEOUT_SECS, 1),
        reconnect_max_delay: r.seconds(keys::RECONNECT_MAX_DELAY_SECS, 1),
    }
}

/// The journal's keys (`journal`, its limits, `dedup`, `data_dir`); `unroutable =
/// "hold"` needs it.
pub(super) fn journal(r: &mut Reader<'_>, unroutable: Unroutable) -> JournalSettings {
    let mode = match r.text(keys::JOURNAL).as_str() {
        "off" => None,
        "always" => Some(JournalMode::Always),
        _ => Some(JournalMode::Fallback),
    };
    if mode.is_none() && unroutable == Unroutable::Hold {
        r.problem(keys::UNROUTABLE.name, ValueError::HoldWithoutJournal);
    }
    JournalSettings {
        mode,
        dir: data_dir(r),
        max_bytes: u64::try_from(r.count(keys::JOURNAL_MAX_BYTES, 1, u64::MAX)).unwrap_or(u64::MAX),
        retention: r.seconds(keys::JOURNAL_RETENTION_SECS, 0),
        dedup: r.flag(keys::DEDUP),
        hold_unroutable: unroutable == Unroutable::Hold,
    }
}

fn unroutable(r: &mut Reader<'_>) -> Unroutable {
    match r.text(keys::UNROUTABLE).as_str() {
        "accept" => Unroutable::Accept,
        "hold" => Unroutable::Hold,
        _ => Unroutable::Reject,
    }
}

/// What the `journal` commands read.
#[derive(Debug, Clone)]
pub(crate) struct JournalConfig {
    /// The broker (`replay`, `drain`).
    pub(crate) broker: BrokerSettings,
    /// How it is published to.
    pub(crate) publisher: PublisherSettings,
    /// The journal.
    pub(crate) journal: JournalSettings,
}

pub(super) fn journal_command(r: &mut Reader<'_>) -> JournalConfig {
    let broker = broker(r);
    let unroutable = unroutable(r);
    let publisher = PublisherSettings {
        unroutable,
        publish_timeout: r.seconds(keys::PUBLISH_TIMEOUT_SECS, 1),
    };
    let journal = journal(r, unroutable);
    JournalConfig {
        broker,
        publisher,
        journal,
    }
}

/// `data_dir`, made absolute against the working directory now: the commands say
/// where it is at start-up, and a process that changes directory keeps it.
fn data_dir(r: &mut Reader<'_>) -> PathBuf {
    let text = r.text(keys::DATA_DIR);
    std::path::absolute(&text).unwrap_or_else(|e| {
        r.problem(keys::DATA_DIR.name, ValueError::DataDir(e.kind()));
        PathBuf::from(text)
    })
}

/// The callback store (`callback_store`, `data_dir`).
pub(super) fn store(r: &mut Reader<'_>) -> StoreSpec {
    let data_dir = data_dir(r);
    StoreSpec::parse(&r.text(keys::CALLBACK_STORE), &data_dir).unwrap_or_else(|e| {
        r.problem(keys::CALLBACK_STORE.name, e);
        StoreSpec::Embedded(data_dir)
    })
}

fn listener(r: &mut Reader<'_>, listen: SocketAddr) -> ListenerSettings {
    let public_url = read::public_url(&r.text(keys::PUBLIC_URL), listen).unwrap_or_else(|m| {
        r.problem(keys::PUBLIC_URL.name, m);
        read::default_public_url(listen)
    });
    let fallback_hosts = read::hosts(&r.text(keys::REDIRECT_FALLBACK_HOSTS)).unwrap_or_else(|m| {
        r.problem(keys::REDIRECT_FALLBACK_HOSTS.name, m);
        Vec::new()
    });
    ListenerSettings {
        public_url,
        one_shot: r.flag(keys::CALLBACK_ONE_SHOT),
        fallback_hosts,
    }
}

/// The dispatcher's keys; its server takes the connection limits of `server`, its
/// `listener_url` defaults to `public_url`. Its password is read now when the
/// dispatcher runs (`always`, or `dispatcher = true`), so that a missing one is said
/// before any connection is made.
fn dispatcher(
    r: &mut Reader<'_>,
    server: &ServerSettings,
    public_url: &url::Url,
    path_prefix: &str,
    always: bool,
) -> DispatcherSettings {
    let hosted = r.flag(keys::DISPATCHER);
    let listen = address(r, keys::DISPATCHER_LISTEN);
    let listener_url = match r.text(keys::LISTENER_URL) {
        text if text.is_empty() => public_url.clone(),
        text => read::public_url(&text, listen).unwrap_or_else(|m| {
            r.problem(keys::LISTENER_URL.name, m);
            public_url.clone()
        }),
    };
    let reference = SecretRef::parse(&r.text(keys::DISPATCHER_PASSWORD)).unwrap_or_else(|e| {
        r.problem(keys::DISPATCHER_PASSWORD.name, e);
        SecretRef::Env("POWENS_RELAY_DISPATCHER_PASSWORD".into())
    });
    let password = match hosted || always {
        false => PasswordSource::Unread(reference),
        true => match reference.resolve() {
            Ok(secret) => PasswordSource::Read(secret),
            Err(e) => {
                r.problem(keys::DISPATCHER_PASSWORD.name, e);
                PasswordSource::Unread(reference)
            }
        },
    };
    DispatcherSettings {
        hosted,
        server: ServerSettings { listen, ..*server },
        listener_url,
        path_prefix: path_prefix.to_owned(),
        password,
        max_clients: r.count(keys::DISPATCHER_MAX_CLIENTS, 1, 10_000_000),
        queue_len: r.count(keys::DISPATCHER_QUEUE_LEN, 1, 1_000_000),
        ping_interval: r.seconds(keys::DISPATCHER_PING_SECS, 1),
    }
}

/// The console's keys, when `console = true`: its server takes the connection limits of
/// `server`; its password is read now, so that a missing one stops the relay at once.
fn console(r: &mut Reader<'_>, server: &ServerSettings) -> Option<ConsoleSettings> {
    let enabled = r.flag(keys::CONSOLE);
    let listen = address(r, keys::CONSOLE_LISTEN);
    let password = r.text(keys::CONSOLE_PASSWORD);
    if !enabled {
        return None;
    }
    let password = match SecretRef::parse(&password).map(|p| p.resolve()) {
        Ok(Ok(secret)) => secret,
        Ok(Err(e)) => {
            r.problem(keys::CONSOLE_PASSWORD.name, e);
            return None;
        }
        Err(e) => {
            r.problem(keys::CONSOLE_PASSWORD.name, e);
            return None;
        }
    };
    Some(ConsoleSettings {
        server: ServerSettings { listen, ..*server },
        password,
    })
}

/// Where the verify-mode domains' secrets come from, and the webhook configuration
/// whose key rings they make: read again on SIGHUP.
#[derive(Debug, Clone)]
pub(crate) struct Secrets {
    refs: SecretRefs,
    freshness: FreshnessWindow,
    webhooks: WebhookConfig,
}

impl Secrets {
    /// Reads every secret again (a `file:` secret may have been rotated) and, if all
    /// can be read, swaps the new key rings into the webhook configuration (shared by
    /// every router built from it); the rest is unchanged. `serve` does this on
    /// SIGHUP. Returns the number of domains served.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming each secret that cannot be read; the key rings
    /// in use then stay.
    pub(crate) fn reload(&self) -> Result<usize, ConfigError> {
        let mut problems = Vec::new();
        let mut problem = |key: &str, message: &dyn std::fmt::Display| {
            problems.push(Problem {
                key: key.to_owned(),
                message: message.to_string(),
            });
        };
        let mut domains: BTreeMap<_, _> = self
            .webhooks
            .domains()
            .iter()
            .map(|(d, p)| (d.clone(), p.clone()))
            .collect();
        for (domain, (key, refs)) in &self.refs {
            if let Some(ring) = domains::key_ring(key, refs.iter().enumerate(), &mut problem) {
                domains.insert(
                    domain.clone(),
                    DomainPolicy::verify(domain, ring, self.freshness),
                );
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid { problems });
        }
        let count = domains.len();
        self.webhooks.set_domains(domains);
        Ok(count)
    }
}
