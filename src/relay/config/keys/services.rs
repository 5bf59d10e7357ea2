//! The keys of the services `serve` may host beside the webhook route (the
//! dispatcher, the console) and of its logs.

use super::super::value::Kind;
use super::Key;
use super::SECS;

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
