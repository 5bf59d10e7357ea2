//! Every configuration key, defined once: its name (the TOML key), flag, environment
//! variable, default and help. The TOML reader, the clap flags and the configuration
//! table of `docs/operations.md` are all derived from, or checked against, [`KEYS`].

use super::value::Kind;

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

/// `listen`.
pub(crate) const LISTEN: &Key = &Key {
    name: "listen",
    kind: Kind::Text,
    default: Some("127.0.0.1:8080"),
    value_name: "ADDR",
    help: "Address and port to listen on.",
};

/// `amqp_url`.
pub(crate) const AMQP_URL: &Key = &Key {
    name: "amqp_url",
    kind: Kind::Credential,
    default: None,
    value_name: "URL",
    help: "RabbitMQ URL, amqp:// or amqps://; for a cluster, its nodes' URLs separated by \
           commas (a list in the file), tried in turn from one drawn at random. Without \
           one, messages are written to standard output as JSON lines. The flag refuses a \
           password (the command line is visible to every local user): put it in the \
           environment variable or the file.",
};

/// `exchange_prefix`.
pub(crate) const EXCHANGE_PREFIX: &Key = &Key {
    name: "exchange_prefix",
    kind: Kind::Text,
    default: Some(""),
    value_name: "PREFIX",
    help: "Prefix of the exchange names, e.g. teal_.",
};

/// `exchange_durable`.
pub(crate) const EXCHANGE_DURABLE: &Key = &Key {
    name: "exchange_durable",
    kind: Kind::Bool,
    default: Some("false"),
    value_name: "BOOL",
    help: "Declare the exchanges durable (TeaL: false).",
};

/// `unroutable`.
pub(crate) const UNROUTABLE: &Key = &Key {
    name: "unroutable",
    kind: Kind::Choice(&["reject", "accept", "hold"]),
    default: Some("reject"),
    value_name: "ANSWER",
    help: "Answer to a message no queue is bound to receive: reject (503), accept (204, \
           dropped, as TeaL) or hold (204, kept in the journal and published once a queue \
           is bound; needs the journal).",
};

/// `public_path_prefix`.
pub(crate) const PUBLIC_PATH_PREFIX: &Key = &Key {
    name: "public_path_prefix",
    kind: Kind::Text,
    default: Some(""),
    value_name: "PATH",
    help: "Path prefix the reverse proxy strips, e.g. /hooks; put back before verifying, \
           since Powens signed the public path.",
};

/// `body_limit_bytes`.
pub(crate) const BODY_LIMIT_BYTES: &Key = &Key {
    name: "body_limit_bytes",
    kind: Kind::Number,
    default: Some("33554432"),
    value_name: "BYTES",
    help: "Largest body accepted, before and after decompression (32 MiB).",
};

/// `signature_max_age_secs`.
pub(crate) const SIGNATURE_MAX_AGE_SECS: &Key = &Key {
    name: "signature_max_age_secs",
    kind: Kind::Number,
    default: Some("900"),
    value_name: SECS,
    help: "Oldest BI-Signature-Date accepted.",
};

/// `signature_max_ahead_secs`.
pub(crate) const SIGNATURE_MAX_AHEAD_SECS: &Key = &Key {
    name: "signature_max_ahead_secs",
    kind: Kind::Number,
    default: Some("120"),
    value_name: SECS,
    help: "Furthest ahead of the clock a BI-Signature-Date may be.",
};

/// `diagnosis_rate`.
pub(crate) const DIAGNOSIS_RATE: &Key = &Key {
    name: "diagnosis_rate",
    kind: Kind::Number,
    default: Some("10"),
    value_name: "N",
    help: "Refused signatures diagnosed per second (why it did not match, in the log and \
           the console); more are logged as skipped. 0: off.",
};

/// `publish_timeout_secs`.
pub(crate) const PUBLISH_TIMEOUT_SECS: &Key = &Key {
    name: "publish_timeout_secs",
    kind: Kind::Number,
    default: Some("5"),
    value_name: SECS,
    help: "Wait for the broker's confirm, then 503 (and the connection is treated as dead).",
};

/// `connect_timeout_secs`.
pub(crate) const CONNECT_TIMEOUT_SECS: &Key = &Key {
    name: "connect_timeout_secs",
    kind: Kind::Number,
    default: Some("3"),
    value_name: SECS,
    help: "Longest a connection attempt to the broker may take (TCP, AMQP handshake, \
           channel, declarations).",
};

/// `reconnect_max_delay_secs`.
pub(crate) const RECONNECT_MAX_DELAY_SECS: &Key = &Key {
    name: "reconnect_max_delay_secs",
    kind: Kind::Number,
    default: Some("1"),
    value_name: SECS,
    help: "Cap of the wait between reconnection attempts (from 50 ms, doubling, with jitter).",
};

/// `max_in_flight`.
pub(crate) const MAX_IN_FLIGHT: &Key = &Key {
    name: "max_in_flight",
    kind: Kind::Number,
    default: Some("1024"),
    value_name: "N",
    help: "Webhooks handled at once; more get 503 with Retry-After: 1.",
};

/// `max_connections`.
pub(crate) const MAX_CONNECTIONS: &Key = &Key {
    name: "max_connections",
    kind: Kind::Number,
    default: Some("4096"),
    value_name: "N",
    help: "Open client connections; more wait in the kernel's listen backlog.",
};

/// `read_timeout_secs`.
pub(crate) const READ_TIMEOUT_SECS: &Key = &Key {
    name: "read_timeout_secs",
    kind: Kind::Number,
    default: Some("30"),
    value_name: SECS,
    help: "Time to receive the request line and headers (also the idle keep-alive time), \
           and separately the body (then 408).",
};

/// `max_header_bytes`.
pub(crate) const MAX_HEADER_BYTES: &Key = &Key {
    name: "max_header_bytes",
    kind: Kind::Number,
    default: Some("16384"),
    value_name: "BYTES",
    help: "Largest request line and headers; more gets 431.",
};

/// `callback_store`.
pub(crate) const CALLBACK_STORE: &Key = &Key {
    name: "callback_store",
    kind: Kind::Credential,
    default: Some("embedded"),
    value_name: "STORE",
    help: "Where callbacks live: embedded (an SQLite file under data_dir, shared by the \
           processes of one host) or a redis:// URL (TeaL's keys, for several hosts).",
};

/// `data_dir`.
pub(crate) const DATA_DIR: &Key = &Key {
    name: "data_dir",
    kind: Kind::Text,
    default: Some("powens-relay"),
    value_name: "DIR",
    help: "Directory of the embedded callback store and of the journal (created if needed).",
};

/// `journal`.
pub(crate) const JOURNAL: &Key = &Key {
    name: "journal",
    kind: Kind::Choice(&["fallback", "always", "off"]),
    default: Some("fallback"),
    value_name: "MODE",
    help: "The journal under data_dir (with amqp_url): fallback (a webhook the broker does \
           not take is committed to it and answered 204, then published from it), always \
           (every webhook committed before its 204, published from it) or off (503 when \
           the broker does not take it).",
};

/// `journal_max_bytes`.
pub(crate) const JOURNAL_MAX_BYTES: &Key = &Key {
    name: "journal_max_bytes",
    kind: Kind::Number,
    default: Some("1073741824"),
    value_name: "BYTES",
    help: "Most bytes of webhooks the journal holds (1 GiB); beyond, webhooks not yet \
           published get 503 (delivered ones kept for replay go first).",
};

/// `journal_retention_secs`.
pub(crate) const JOURNAL_RETENTION_SECS: &Key = &Key {
    name: "journal_retention_secs",
    kind: Kind::Number,
    default: Some("604800"),
    value_name: SECS,
    help: "How long a journaled webhook is kept after its confirm, for replay and \
           duplicate detection (7 days).",
};

/// `dedup`.
pub(crate) const DEDUP: &Key = &Key {
    name: "dedup",
    kind: Kind::Bool,
    default: Some("true"),
    value_name: "BOOL",
    help: "With the journal: a webhook whose (domain, id_webhook_data) was accepted within \
           journal_retention_secs is answered 204 and not published again.",
};

/// `public_url`.
pub(crate) const PUBLIC_URL: &Key = &Key {
    name: "public_url",
    kind: Kind::Text,
    default: None,
    value_name: "URL",
    help: "The listener's public base URL, e.g. https://hooks.example.com/teal/: \
           callback URLs are built on it, and a raw-callback's full_url must point \
           under it. Without it, http:// and the listen address.",
};

/// `callback_one_shot`.
pub(crate) const CALLBACK_ONE_SHOT: &Key = &Key {
    name: "callback_one_shot",
    kind: Kind::Bool,
    default: Some("false"),
    value_name: "BOOL",
    help: "Each callback state is used once; a replay gets 400 (TeaL: replayable until \
           it expires).",
};

/// `redirect_fallback_hosts`.
pub(crate) const REDIRECT_FALLBACK_HOSTS: &Key = &Key {
    name: "redirect_fallback_hosts",
    kind: Kind::Text,
    default: Some(""),
    value_name: "HOSTS",
    help: "Comma-separated hosts that a state unknown to the store may redirect to, \
           decoded from the state itself (TeaL's POWENS_REDIRECT_FALLBACK); empty: off.",
};

/// `dispatcher`.
pub(crate) const DISPATCHER: &Key = &Key {
    name: "dispatcher",
    kind: Kind::Bool,
    default: Some("false"),
    value_name: "BOOL",
    help: "serve also hosts the dispatcher's routes (/websocket and its metadata) on \
           listen; without amqp_url, webhooks then reach its websocket clients in-process.",
};

/// `dispatcher_listen`.
pub(crate) const DISPATCHER_LISTEN: &Key = &Key {
    name: "dispatcher_listen",
    kind: Kind::Text,
    default: Some("127.0.0.1:8081"),
    value_name: "ADDR",
    help: "Address and port powens-relay dispatch listens on.",
};

/// `listener_url`.
pub(crate) const LISTENER_URL: &Key = &Key {
    name: "listener_url",
    kind: Kind::Text,
    default: None,
    value_name: "URL",
    help: "Public base URL of serve, for the dispatcher's metadata (callback_url…). \
           Without it, public_url.",
};

/// `dispatcher_password`.
pub(crate) const DISPATCHER_PASSWORD: &Key = &Key {
    name: "dispatcher_password",
    kind: Kind::SecretRef,
    default: Some("env:POWENS_RELAY_DISPATCHER_PASSWORD"),
    value_name: "REF",
    help: "Where the websocket password (user anonymous) is read: env:NAME or \
           file:PATH; by default the variable POWENS_RELAY_DISPATCHER_PASSWORD holds it.",
};

/// `dispatcher_max_clients`.
pub(crate) const DISPATCHER_MAX_CLIENTS: &Key = &Key {
    name: "dispatcher_max_clients",
    kind: Kind::Number,
    default: Some("10000"),
    value_name: "N",
    help: "Websocket clients connected at once; more get 503.",
};

/// `dispatcher_queue_len`.
pub(crate) const DISPATCHER_QUEUE_LEN: &Key = &Key {
    name: "dispatcher_queue_len",
    kind: Kind::Number,
    default: Some("256"),
    value_name: "N",
    help: "Messages waiting per websocket client; a client that lets more pile up is \
           closed with 1013.",
};

/// `dispatcher_ping_secs`.
pub(crate) const DISPATCHER_PING_SECS: &Key = &Key {
    name: "dispatcher_ping_secs",
    kind: Kind::Number,
    default: Some("20"),
    value_name: SECS,
    help: "Interval of websocket pings; a client silent for two intervals is dropped.",
};

/// `console`.
pub(crate) const CONSOLE: &Key = &Key {
    name: "console",
    kind: Kind::Bool,
    default: Some("false"),
    value_name: "BOOL",
    help: "Serve the operator console (live webhooks, refusals explained, the journal and \
           its replay) on console_listen; it shows bank data.",
};

/// `console_listen`.
pub(crate) const CONSOLE_LISTEN: &Key = &Key {
    name: "console_listen",
    kind: Kind::Text,
    default: Some("127.0.0.1:8082"),
    value_name: "ADDR",
    help: "Address and port of the console; keep it off the public listener.",
};

/// `console_password`.
pub(crate) const CONSOLE_PASSWORD: &Key = &Key {
    name: "console_password",
    kind: Kind::SecretRef,
    default: Some("env:POWENS_RELAY_CONSOLE_PASSWORD"),
    value_name: "REF",
    help: "Where the console's password (user anonymous) is read: env:NAME or file:PATH; \
           by default the variable POWENS_RELAY_CONSOLE_PASSWORD holds it.",
};

/// `log_format`.
pub(crate) const LOG_FORMAT: &Key = &Key {
    name: "log_format",
    kind: Kind::Choice(&["text", "json"]),
    default: Some("text"),
    value_name: "FORMAT",
    help: "text or json lines on standard error; the level comes from RUST_LOG (default info).",
};
