//! Every configuration key, defined once: its name (the TOML key), flag, environment
//! variable, default and help. The TOML reader, the clap flags and the configuration
//! table of `docs/operations.md` are all derived from, or checked against, [`KEYS`].

use super::value::Kind;

mod server;
mod services;
mod state;

pub(crate) use server::*;
pub(crate) use services::*;
pub(crate) use state::*;

/// One configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    /// The TOML key; the flag is `--` and the name with `-` for `_`, the environment
    /// variable `POWENS_RELAY_` and the name in upper case.
    pub(crate) name: &'static str,
    /// What values it takes.
    pub(crate) kind: Kind,
    /// The default, as written in the file; `None` when absent means something else
    /// (said in `help`).
    pub(crate) default: Option<&'static str>,
    /// The placeholder in `--help`.
    pub(crate) value_name: &'static str,
    /// One line of help.
    pub(crate) help: &'static str,
}

impl Key {
    /// `--listen` for `listen`.
    pub(crate) fn flag(&self) -> String {
        format!("--{}", self.name.replace('_', "-"))
    }

    /// `POWENS_RELAY_LISTEN` for `listen`.
    pub(crate) fn env(&self) -> String {
        format!("POWENS_RELAY_{}", self.name.to_ascii_uppercase())
    }

    /// The key named `name`.
    pub(crate) fn named(name: &str) -> Option<&'static Key> {
        KEYS.iter().find(|k| k.name == name).copied()
    }
}

const SECS: &str = "SECS";

/// The relay's keys, in the order of the table in `docs/operations.md`. `domains` (a TOML table, and
/// the repeatable `--domain` flag) and `--config` are the only settings not here.
pub(crate) const KEYS: &[&Key] = &[
    LISTEN,
    AMQP_URL,
    EXCHANGE_PREFIX,
    EXCHANGE_DURABLE,
    UNROUTABLE,
    PUBLIC_PATH_PREFIX,
    BODY_LIMIT_BYTES,
    SIGNATURE_MAX_AGE_SECS,
    SIGNATURE_MAX_AHEAD_SECS,
    DIAGNOSIS_RATE,
    PUBLISH_TIMEOUT_SECS,
    CONNECT_TIMEOUT_SECS,
    RECONNECT_MAX_DELAY_SECS,
    MAX_IN_FLIGHT,
    MAX_CONNECTIONS,
    READ_TIMEOUT_SECS,
    MAX_HEADER_BYTES,
    CALLBACK_STORE,
    DATA_DIR,
    JOURNAL,
    JOURNAL_MAX_BYTES,
    JOURNAL_RETENTION_SECS,
    DEDUP,
    PUBLIC_URL,
    CALLBACK_ONE_SHOT,
    REDIRECT_FALLBACK_HOSTS,
    DISPATCHER,
    DISPATCHER_LISTEN,
    LISTENER_URL,
    DISPATCHER_PASSWORD,
    DISPATCHER_MAX_CLIENTS,
    DISPATCHER_QUEUE_LEN,
    DISPATCHER_PING_SECS,
    CONSOLE,
    CONSOLE_LISTEN,
    CONSOLE_PASSWORD,
    LOG_FORMAT,
];
