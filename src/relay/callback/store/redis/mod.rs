//! The Redis store: TeaL's keys and JSON, with a TTL; one Redis (`redis://`,
//! `rediss://`) or the primary Sentinel names ([`sentinel`]).
//!
//! # Failures
//!
//! Each operation has [`BUDGET`] in all. A command that fails because the connection
//! died is tried again on the next connection (the keeper's, [`link`]) while the budget
//! lasts, and so is one the server refused without running it (`READONLY` from a
//! demoted primary, `LOADING`…): a connection found dead costs a request some
//! milliseconds, not a 503. Only once the budget is spent does the request fail
//! ([`StoreError::Unavailable`], a 503 with `Retry-After`).
//!
//! Trying again is safe for every command but one: `GET` reads, `SET … EXAT` writes the
//! same value with the same expiry, `DEL` of an expired key deletes it once however
//! often it is sent. The exception is the take of a one-shot state (`GETDEL`) whose
//! answer was lost with the connection: it may have run, deleting the state, and its
//! answer (the state's record) is gone with the connection. It is sent again, which
//! cannot take the state twice; if that finds the record, the first did not run (the
//! state is taken now, once); if it finds nothing, the first one probably took it and
//! nobody can tell, so the request gets [`StoreError::TakeUncertain`] (503) rather
//! than a wrong `Unknown state`. The browser's retry then gets 400 `Unknown state` and
//! the client application starts the connection again; no callback was published
//! twice.

mod link;
mod sentinel;

use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::{ErrorKind, FromRedisValue, Pipeline, RedisError, ServerErrorKind};
use tokio::time::{Instant, sleep_until, timeout_at};

use super::{BackendError, CallbackStore, Lookup, StoreError};
use crate::relay::callback::state::{CallbackRecord, CallbackState};
use crate::relay::redact::redact_url;
use link::{Link, Target};
pub(crate) use sentinel::{SentinelUrl, is_sentinel_url};

/// How long one store operation may take, every attempt included; then the request
/// gets 503.
const BUDGET: Duration = Duration::from_secs(3);
/// How long one attempt may wait for its answer; then its connection counts as dead.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a write waits for its replicas' acknowledgement (below
/// [`ATTEMPT_TIMEOUT`]).
const WAIT_TIMEOUT: Duration = Duration::from_secs(1);
/// What WAIT leaves of an attempt's time, for its answer to arrive.
const WAIT_MARGIN: Duration = Duration::from_millis(100);
/// The pause before trying again a command the server refused without running it.
const REFUSED_PAUSE: Duration = Duration::from_millis(50);
/// At most one "no replica" warning per this long.
const NO_REPLICA_WARNING_EVERY: Duration = Duration::from_secs(10);

/// The Redis store; its connection is kept by a task of its own.
#[derive(Clone)]
pub(crate) struct RedisStore {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    link: Link,
    /// How many replicas a write waits for, at most (Sentinel form; 0 otherwise).
    wait_replicas: u32,
    /// When a write was last answered without a replica (warned at most once in a
    /// while).
    last_unreplicated: std::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisStore")
    }
}

/// How an attempt failed.
enum Failure {
    /// It cannot have run (no connection in time, or the server refused it): try again.
    NotRun(Option<RedisError>),
    /// The connection failed under it: it may have run. Try again if that is safe.
    MayHaveRun(RedisError),
    /// It ran and failed, or its answer is not what was expected.
    Final(RedisError),
}

/// What a Redis error means for the command that met it.
fn failure(error: RedisError) -> Failure {
    match error.kind() {
        // The node is a replica now (a fail-over), has no primary, or is loading its
        // data: it did not run the command.
        ErrorKind::Server(
            ServerErrorKind::ReadOnly
            | ServerErrorKind::MasterDown
            | ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain,
        ) => Failure::NotRun(Some(error)),
        _ if error.is_io_error() || error.is_unrecoverable_error() => Failure::MayHaveRun(error),
        _ => Failure::Final(error),
    }
}

fn backend(error: RedisError) -> StoreError {
    StoreError::Backend(BackendError::new(error))
}

/// The budget spent, `last` the last failure met.
fn unavailable(last: Option<RedisError>) -> StoreError {
    StoreError::Unavailable {
        waited: BUDGET,
        last: last.map(BackendError::new),
    }
}

impl RedisStore {
    /// Connects to Redis at `url`: `redis://` or `rediss://`, or the primary the
    /// sentinels of a `redis+sentinel://` or `rediss+sentinel://` URL name.
    ///
    /// # Errors
    /// [`StoreError::Connect`], naming Redis without its password.
    pub(crate) async fn connect(url: &str) -> Result<Self, StoreError> {
        let connect = |source| StoreError::Connect {
            url: redact_url(url),
            source,
        };
        let (target, wait_replicas) = if is_sentinel_url(url) {
            let sentinel = SentinelUrl::parse(url).map_err(|e| connect(BackendError::new(e)))?;
            let client = sentinel
                .client()
                .map_err(|e| connect(BackendError::new(e)))?;
            (Target::Sentinel(client), sentinel.wait_replicas())
        } else {
            let client = redis::Client::open(url).map_err(|e| connect(BackendError::new(e)))?;
            (Target::Direct(client), 0)
        };
        let link = Link::open(target)
            .await
            .map_err(|e| connect(BackendError::new(ConnectError(e))))?;
        Ok(Self {
            inner: std::sync::Arc::new(Inner {
                link,
                wait_replicas,
                last_unreplicated: std::sync::Mutex::new(None),
            }),
        })
    }

    /// One attempt, on the current connection, before `deadline`, of the commands
    /// `build` makes (given the instant the attempt must end by). A connection that
    /// fails under it, or does not answer within [`ATTEMPT_TIMEOUT`], is discarded (the
    /// keeper replaces it).
    async fn attempt<T: FromRedisValue>(
        &self,
        build: &mut impl FnMut(Instant) -> Pipeline,
        deadline: Instant,
    ) -> Result<T, Failure> {
        let link = &self.inner.link;
        let Some(mut connection) = link.connection(deadline).await else {
            return Err(Failure::NotRun(None));
        };
        let until = deadline.min(Instant::now() + ATTEMPT_TIMEOUT);
        let pipeline = build(until);
        let answer = timeout_at(until, pipeline.query_async(&mut connection.redis)).await;
        let failure = match answer {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => failure(error),
            Err(_) => Failure::MayHaveRun(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer from Redis in time",
            ))),
        };
        match &failure {
            Failure::NotRun(Some(error)) | Failure::MayHaveRun(error) => {
                tracing::debug!(%error, "callback store: trying again on a new connection");
                link.discard(connection.generation, error);
            }
            Failure::NotRun(None) | Failure::Final(_) => {}
        }
        if matches!(failure, Failure::NotRun(Some(_))) {
            // Refused by the server: give it (or the keeper) a moment.
            sleep_until(deadline.min(Instant::now() + REFUSED_PAUSE)).await;
        }
        Err(failure)
    }

    /// Runs the commands `build` makes for each attempt, which must be safe to run
    /// again (idempotent), until they succeed or the budget is spent.
    async fn run<T: FromRedisValue>(
        &self,
        mut build: impl FnMut(Instant) -> Pipeline,
    ) -> Result<T, StoreError> {
        let deadline = Instant::now() + BUDGET;
        let mut last = None;
        loop {
            match self.attempt(&mut build, deadline).await {
                Ok(value) => return Ok(value),
                Err(Failure::Final(error)) => return Err(backend(error)),
                Err(Failure::MayHaveRun(error) | Failure::NotRun(Some(error))) => {
                    last = Some(error);
                }
                Err(Failure::NotRun(None)) => {}
            }
            if Instant::now() >= deadline {
                return Err(unavailable(last));
            }
        }
    }

    /// Takes `key` (`GETDEL`): see the module's documentation for a take whose answer
    /// was lost.
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut getdel = |_| {
            let mut pipeline = redis::pipe();
            pipeline.cmd("GETDEL").arg(key);
            pipeline
        };
        let deadline = Instant::now() + BUDGET;
        let mut uncertain = None;
        let mut last = None;
        loop {
            match self
                .attempt::<(Option<Vec<u8>>,)>(&mut getdel, deadline)
                .await
            {
                // Found: no earlier attempt took it (it would be gone).
                Ok((Some(value),)) => return Ok(Some(value)),
                Ok((None,)) => {
                    return match uncertain {
                        None => Ok(None),
                        Some(error) => Err(StoreError::TakeUncertain(BackendError::new(error))),
                    };
                }
                Err(Failure::Final(error)) => return Err(backend(error)),
                Err(Failure::MayHaveRun(error)) => uncertain = Some(error),
                Err(Failure::NotRun(Some(error))) => last = Some(error),
                Err(Failure::NotRun(None)) => {}
            }
            if Instant::now() >= deadline {
                return Err(unavailable(uncertain.or(last)));
            }
        }
    }

    /// The replicas a write waits for now: as many as asked, at most as many as the
    /// primary has (none connected: the write is answered at once, with a warning).
    fn replicas_to_wait_for(&self) -> u32 {
        let wanted = self.inner.wait_replicas;
        let online = self.inner.link.replicas();
        if wanted > online {
            let now = Instant::now();
            if let Ok(mut last) = self.inner.last_unreplicated.lock()
                && last.is_none_or(|at| now >= at + NO_REPLICA_WARNING_EVERY)
            {
                *last = Some(now);
                tracing::warn!(
                    wanted,
                    online,
                    "callback store: fewer Redis replicas online than wait_replicas: callbacks \
                     created now are acknowledged by {online} and could be lost in a fail-over"
                );
            }
        }
        wanted.min(online)
    }
}

/// Why the first connection failed, as the link reported it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ConnectError(String);

impl CallbackStore for RedisStore {
    fn put<'a>(
        &'a self,
        state: &'a CallbackState,
        record: &'a CallbackRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let key = state.redis_key();
            let value = record
                .to_json()
                .map_err(|e| StoreError::Backend(BackendError::new(e)))?;
            // EXAT: the key goes when the callback expires (TeaL never expired its
            // keys). Rounded up, so that Redis never deletes it early.
            let expires = record
                .expires_at
                .map(|at| (at.timestamp() + i64::from(at.timestamp_subsec_nanos() > 0)).max(1));
            // Redis replicates after answering: a fail-over can promote a replica that
            // has not received the write. Waiting for replicas' acknowledgement before
            // answering makes a created callback survive it. Counted again at each
            // attempt: after a fail-over, the new primary may have fewer replicas.
            let mut wanted = 0;
            let answers: Vec<u32> = self
                .run(|until| {
                    let mut pipeline = redis::pipe();
                    pipeline.cmd("SET").arg(&key).arg(&value);
                    if let Some(secs) = expires {
                        pipeline.arg("EXAT").arg(secs);
                    }
                    pipeline.ignore();
                    wanted = self.replicas_to_wait_for();
                    if wanted > 0 {
                        // Within the attempt's time, so that WAIT answers before the
                        // attempt gives up on it (never 0: that would wait forever).
                        let left = until.saturating_duration_since(Instant::now());
                        let wait = WAIT_TIMEOUT.min(left.saturating_sub(WAIT_MARGIN));
                        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(1).max(1);
                        pipeline.cmd("WAIT").arg(wanted).arg(wait_ms);
                    }
                    pipeline
                })
                .await?;
            let acknowledged = answers.first().copied().unwrap_or_default();
            if acknowledged < wanted {
                return Err(StoreError::NotReplicated {
                    wanted,
                    acknowledged,
                });
            }
            Ok(())
        })
    }

    fn read<'a>(
        &'a self,
        state: &'a CallbackState,
        lookup: Lookup,
    ) -> BoxFuture<'a, Result<Option<CallbackRecord>, StoreError>> {
        Box::pin(async move {
            let key = state.redis_key();
            let text = if lookup.take {
                self.take(&key).await?
            } else {
                let get = |_| {
                    let mut pipeline = redis::pipe();
                    pipeline.cmd("GET").arg(&key);
                    pipeline
                };
                self.run::<(Option<Vec<u8>>,)>(get).await?.0
            };
            let Some(text) = text else { return Ok(None) };
            match CallbackRecord::from_json(&text) {
                Some(record) if !record.is_expired(lookup.now) => Ok(Some(record)),
                Some(_) if !lookup.take => {
                    // TeaL deletes an expired key when it reads it.
                    let del = |_| {
                        let mut pipeline = redis::pipe();
                        pipeline.cmd("DEL").arg(&key).ignore();
                        pipeline
                    };
                    self.run::<()>(del).await?;
                    Ok(None)
                }
                _ => Ok(None),
            }
        })
    }

    fn is_available(&self) -> bool {
        self.inner.link.is_up()
    }
}

#[cfg(test)]
mod tests;
