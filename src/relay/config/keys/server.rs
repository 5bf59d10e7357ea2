//! The keys of the webhook route, its HTTP server and the broker it publishes to.

use super::super::value::Kind;
use super::Key;
use super::SECS;

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
