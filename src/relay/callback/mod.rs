//! TeaL's listener, the other half: what the browser brings back at the end of a
//! Powens webview (`/callback`, `/errback`, `/raw-callback`) and the OpenID provider's
//! CIBA notifications (`/openid-ciba-callback`). Every input is untrusted and parsed
//! once, here, into types: the state, the query, the raw-callback's `full_url`, the
//! fallback's encoded states, the CIBA body.

mod ciba;
mod query;
mod redirect;
mod state;
pub(crate) mod store;

pub(crate) use ciba::CibaNotification;
pub(crate) use query::{FullUrl, MAX_PARAMS, Query, split_ampersand};
pub(crate) use redirect::{decode_base64_json, decode_packed, fallback, final_url};
pub(crate) use state::{CallbackRecord, CallbackState, LifetimeError, StateError, check_lifetime};

#[cfg(test)]
mod properties;
