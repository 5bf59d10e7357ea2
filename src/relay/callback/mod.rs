//! TeaL's listener, the other half: what the browser brings back at the end of a
//! Powens webview (`/callback`, `/errback`, `/raw-callback`) and the OpenID provider's
//! CIBA notifications (`/openid-ciba-callback`). Every input is untrusted and parsed
//! once, here, into types: the state, the query, the raw-callback's `full_url`, the
//! fallback's encoded states, the CIBA body.

mod ciba;
mod query;
mod redirect;
mod state;
pub mod store;

pub use ciba::{CibaNotification, InvalidPayload};
pub use query::{FullUrl, FullUrlError, MAX_PARAMS, Query, QueryError, split_ampersand};
pub use redirect::{FallbackRedirect, decode_base64_json, decode_packed, fallback, final_url};
pub use state::{
    CallbackRecord, CallbackState, LifetimeError, MAX_LIFETIME, MAX_STATE_LEN, MIN_LIFETIME,
    StateError, check_lifetime,
};
