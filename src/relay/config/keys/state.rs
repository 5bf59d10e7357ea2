//! The keys of what the relay keeps: the callback store, the data directory, the
//! journal, and the listener's routes that use them.

use super::super::value::Kind;
use super::Key;
use super::SECS;

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
