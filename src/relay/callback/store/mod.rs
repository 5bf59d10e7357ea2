//! Where callbacks live between their creation (a client, `powens-relay callback
//! create`, the dispatcher) and the browser's return: embedded by default, or Redis.
//!
//! - **Embedded**: an SQLite file, `callbacks.sqlite3` under `data_dir`. It survives a
//!   restart and needs no server, and several processes on one host may share it (the
//!   dispatcher writes, the listener reads): SQLite locks the file for each write, which
//!   single-process stores such as sled or redb do not allow.
//! - **Redis** (`callback_store = "redis://…"`): TeaL's layout, so that a mixed
//!   deployment works — key `callback_<state>`, value TeaL's JSON — and, unlike TeaL, a
//!   TTL matching `expires_at`, so that nothing is left behind. Behind Sentinel
//!   (`redis+sentinel://…`), the primary the sentinels name, followed through a
//!   fail-over, each creation acknowledged by a replica before it is answered. A
//!   connection found dead costs a request a retry, not an error (see `redis`).
//!
//! Both read an expired callback as unknown and delete it, as TeaL does.

mod embedded;
mod redis;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

pub(crate) use embedded::EmbeddedStore;
pub(crate) use redis::RedisStore;

use super::state::{CallbackRecord, CallbackState};

/// The embedded store's file, under `data_dir`.
pub(crate) const EMBEDDED_FILE: &str = "callbacks.sqlite3";

/// An error of the store's backend, as text: which crate reported it is not part of this
/// crate's API.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(Box<dyn std::error::Error + Send + Sync>);

impl BackendError {
    pub(crate) fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(error))
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The embedded store's file cannot be opened or created.
    #[error("cannot open the callback store {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: BackendError,
    },
    /// Redis cannot be reached.
    #[error("cannot connect to the callback store at {url}: {source}")]
    Connect {
        /// Redis, without its password.
        url: String,
        /// What failed.
        source: BackendError,
    },
    /// A read or write failed.
    #[error("the callback store failed: {0}")]
    Backend(#[source] BackendError),
    /// No connection to the store answered within the operation's time budget.
    #[error("the callback store did not answer within {waited:?}{}", after(.last))]
    Unavailable {
        /// The budget.
        waited: std::time::Duration,
        /// The last failure met, if any.
        #[source]
        last: Option<BackendError>,
    },
    /// A one-shot state's take lost its answer with the connection: it may have
    /// run, and the state is gone either way (whether it was used is unknown).
    #[error(
        "the callback store lost the answer to a one-shot state's take ({0}): the state \
         is gone, and whether that take used it is unknown"
    )]
    TakeUncertain(#[source] BackendError),
    /// A write reached the primary, but fewer of its replicas acknowledged it than
    /// asked: a fail-over now could lose it.
    #[error(
        "the callback store's primary has the callback, but {acknowledged} of the \
         {wanted} replicas waited for acknowledged it in time"
    )]
    NotReplicated {
        /// Replicas waited for.
        wanted: u32,
        /// Replicas that acknowledged the write.
        acknowledged: u32,
    },
}

/// `: <error>` after [`StoreError::Unavailable`]'s text, when there was one.
fn after(last: &Option<BackendError>) -> String {
    last.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
}

/// How a record is read: at which instant (expired records are unknown), and whether
/// it is deleted as it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lookup {
    /// The instant the record must be live at.
    pub(crate) now: DateTime<Utc>,
    /// Deleted in the same step: a one-shot state is used once, even by two requests at
    /// the same instant.
    pub(crate) take: bool,
}

impl Lookup {
    /// Read at `now`, left in the store (TeaL's replayable states).
    pub(crate) fn get(now: DateTime<Utc>) -> Self {
        Self { now, take: false }
    }

    /// Read at `now` and deleted.
    pub(crate) fn take(now: DateTime<Utc>) -> Self {
        Self { now, take: true }
    }
}

/// A callback store.
pub(crate) trait CallbackStore: Send + Sync + 'static {
    /// The record of `state`, read as `lookup` says; `None` when it is unknown,
    /// unreadable or expired (an expired one is deleted).
    fn read<'a>(
        &'a self,
        state: &'a CallbackState,
        lookup: Lookup,
    ) -> BoxFuture<'a, Result<Option<CallbackRecord>, StoreError>>;

    /// Writes the record of `state`, replacing any (as TeaL); it expires at its
    /// `expires_at`.
    fn put<'a>(
        &'a self,
        state: &'a CallbackState,
        record: &'a CallbackRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Whether the store can be used now, for `/readyz`: a Redis store while it has a
    /// connection (its keeper checks it every second); the embedded store always.
    fn is_available(&self) -> bool {
        true
    }
}

impl std::fmt::Debug for dyn CallbackStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallbackStore")
    }
}

/// Which store, as configured: `callback_store` empty or `embedded` for the embedded
/// store under `data_dir`, or a `redis://` / `rediss://` URL, or the Sentinel form
/// `redis+sentinel://` / `rediss+sentinel://` (its sentinels, the primary's name as
/// the path: see `docs/operations.md`).
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum StoreSpec {
    /// The SQLite file under this directory.
    Embedded(PathBuf),
    /// Redis at this URL, or behind the sentinels of this URL (it may hold a password:
    /// `Debug` hides it).
    Redis(String),
}

impl std::fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Embedded(dir) => write!(f, "Embedded({})", dir.display()),
            Self::Redis(url) => write!(f, "Redis({})", crate::relay::redact::redact_url(url)),
        }
    }
}

/// Why `callback_store` is refused. Never quotes it: it may hold a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct StoreSpecError(&'static str);

impl StoreSpecError {
    pub(crate) const fn new(reason: &'static str) -> Self {
        Self(reason)
    }
}

impl StoreSpec {
    /// Reads `callback_store` (with `data_dir` for the embedded store).
    ///
    /// # Errors
    /// [`StoreSpecError`].
    pub(crate) fn parse(text: &str, data_dir: &Path) -> Result<Self, StoreSpecError> {
        match text {
            "" | "embedded" => Ok(Self::Embedded(data_dir.to_owned())),
            url if url.starts_with("redis://") || url.starts_with("rediss://") => {
                ::redis::Client::open(url).map_err(|_| {
                    StoreSpecError::new(
                        "is not a Redis URL: redis://[[user]:password@]host[:port][/db]",
                    )
                })?;
                Ok(Self::Redis(url.to_owned()))
            }
            url if redis::is_sentinel_url(url) => {
                redis::SentinelUrl::parse(url)?;
                Ok(Self::Redis(url.to_owned()))
            }
            _ => Err(StoreSpecError::new(
                "must be empty, embedded, or a redis://, rediss://, redis+sentinel:// or \
                 rediss+sentinel:// URL",
            )),
        }
    }

    /// Opens the store: creates the embedded file (and `data_dir`) if needed, or
    /// connects to Redis.
    ///
    /// # Errors
    /// [`StoreError::Open`] or [`StoreError::Connect`].
    pub(crate) async fn open(&self) -> Result<Arc<dyn CallbackStore>, StoreError> {
        Ok(match self {
            Self::Embedded(dir) => Arc::new(EmbeddedStore::open(&dir.join(EMBEDDED_FILE))?),
            Self::Redis(url) => Arc::new(RedisStore::connect(url).await?),
        })
    }
}

#[cfg(test)]
mod tests;
