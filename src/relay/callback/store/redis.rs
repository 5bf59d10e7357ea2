//! The Redis store: TeaL's keys and JSON, with a TTL.

use futures_util::future::BoxFuture;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

use super::{BackendError, CallbackStore, Lookup, StoreError};
use crate::relay::callback::state::{CallbackRecord, CallbackState};
use crate::relay::redact::redact_url;

/// How long connecting to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a command may wait for its answer (then the request gets 503).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);

/// The Redis store; its connection reconnects by itself.
#[derive(Clone)]
pub(crate) struct RedisStore {
    connection: ConnectionManager,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisStore")
    }
}

fn backend(error: redis::RedisError) -> StoreError {
    StoreError::Backend(BackendError::new(error))
}

impl RedisStore {
    /// Connects to Redis at `url`.
    ///
    /// # Errors
    /// [`StoreError::Connect`], naming Redis without its password.
    pub(crate) async fn connect(url: &str) -> Result<Self, StoreError> {
        let connect = |source| StoreError::Connect {
            url: redact_url(url),
            source,
        };
        let client = redis::Client::open(url).map_err(|e| connect(BackendError::new(e)))?;
        // Bounded, so that a relay whose Redis is down at start-up says so at once; the
        // connection then reconnects by itself.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| connect(BackendError::new(e)))?;
        Ok(Self { connection })
    }
}

impl CallbackStore for RedisStore {
    fn put<'a>(
        &'a self,
        state: &'a CallbackState,
        record: &'a CallbackRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let key = state.redis_key();
            let value = record
                .to_json()
                .map_err(|e| StoreError::Backend(BackendError::new(e)))?;
            let _: () = match record.expires_at {
                Some(at) => {
                    // EXAT: the key goes when the callback expires (TeaL never expired
                    // its keys). Rounded up, so that Redis never deletes it early.
                    let secs = at.timestamp() + i64::from(at.timestamp_subsec_nanos() > 0);
                    let secs = u64::try_from(secs.max(1)).unwrap_or(1);
                    let options =
                        redis::SetOptions::default().with_expiration(redis::SetExpiry::EXAT(secs));
                    connection.set_options(&key, value, options).await
                }
                None => connection.set(&key, value).await,
            }
            .map_err(backend)?;
            Ok(())
        })
    }

    fn read<'a>(
        &'a self,
        state: &'a CallbackState,
        lookup: Lookup,
    ) -> BoxFuture<'a, Result<Option<CallbackRecord>, StoreError>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let key = state.redis_key();
            let text: Option<Vec<u8>> = if lookup.take {
                connection.get_del(&key).await
            } else {
                connection.get(&key).await
            }
            .map_err(backend)?;
            let Some(text) = text else { return Ok(None) };
            match CallbackRecord::from_json(&text) {
                Some(record) if !record.is_expired(lookup.now) => Ok(Some(record)),
                Some(_) if !lookup.take => {
                    // TeaL deletes an expired key when it reads it.
                    let _: () = connection.del(&key).await.map_err(backend)?;
                    Ok(None)
                }
                _ => Ok(None),
            }
        })
    }
}
