//! The store's connection to Redis, kept by a task of its own.
//!
//! The keeper checks the connection every [`CHECK_INTERVAL`] (a `PING`; behind Sentinel
//! `INFO replication`, which also says whether the node is still the primary and how
//! many replicas it has), and replaces it as soon as a check or a request finds it
//! dead: so an idle relay has a working connection again before the next request
//! comes, rather than that request being the one to find out (the crate's
//! `ConnectionManager` fails that request). Requests never connect themselves: they
//! wait, within their own time budget, for the connection the keeper publishes, so that
//! a thousand requests during an outage make one connection attempt, not a thousand.
//!
//! Behind Sentinel, each connection attempt asks the sentinels for the primary (the
//! crate then checks that the node it names calls itself the primary), so that a
//! reconnection follows a fail-over.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::sentinel::SentinelClient;
use redis::{AsyncConnectionConfig, RedisError};
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, sleep, timeout, timeout_at};

/// How long connecting may take, sentinels' answers included.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the keeper checks an idle connection.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How long a check may wait for its answer before the connection counts as dead.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// The first wait between reconnection attempts; it doubles up to [`MAX_DELAY`].
const MIN_DELAY: Duration = Duration::from_millis(50);
/// The longest wait between reconnection attempts: a fail-over is followed within this
/// of the sentinels naming the new primary.
const MAX_DELAY: Duration = Duration::from_millis(500);
/// Connection attempts at start-up before giving up.
const FIRST_ATTEMPTS: u32 = 3;
/// How often "still no connection" is logged at warning level while Redis is away.
const STILL_DOWN_EVERY: Duration = Duration::from_secs(10);

/// Where connections go.
pub(super) enum Target {
    /// One Redis.
    Direct(redis::Client),
    /// The primary the sentinels name.
    Sentinel(SentinelClient),
}

impl Target {
    /// A new connection, and the node it goes to (`host:port`, for the logs).
    async fn connect(&mut self) -> Result<(MultiplexedConnection, String), RedisError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            // Each request bounds its own wait (super::ATTEMPT_TIMEOUT): none here.
            .set_response_timeout(None);
        let client = match self {
            Self::Direct(client) => client.clone(),
            Self::Sentinel(sentinel) => sentinel.async_get_client().await?,
        };
        let node = client.get_connection_info().addr().to_string();
        let connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        Ok((connection, node))
    }

    /// Connects within [`CONNECT_TIMEOUT`], and checks the connection once.
    async fn connect_checked(
        &mut self,
        replicas: &AtomicU32,
    ) -> Result<(MultiplexedConnection, String), String> {
        let sentinel = matches!(self, Self::Sentinel(_));
        let (connection, node) = timeout(CONNECT_TIMEOUT, self.connect())
            .await
            .map_err(|_| format!("no connection within {CONNECT_TIMEOUT:?}"))?
            .map_err(|e| e.to_string())?;
        check(connection.clone(), sentinel, replicas).await?;
        Ok((connection, node))
    }
}

/// A connection, numbered so that only the one found dead is dropped.
#[derive(Clone)]
pub(super) struct Connection {
    pub(super) generation: u64,
    pub(super) redis: MultiplexedConnection,
}

struct Shared {
    current: watch::Sender<Option<Connection>>,
    /// Wakes the keeper when a request found the connection dead.
    lost: Notify,
    /// What the request that found it dead saw, for the keeper's log line.
    cause: std::sync::Mutex<Option<String>>,
    /// Replicas connected to the primary at the last check (behind Sentinel).
    replicas: AtomicU32,
}

impl Shared {
    fn discard(&self, generation: u64) -> bool {
        self.current.send_if_modified(|current| {
            let found = current.as_ref().is_some_and(|c| c.generation == generation);
            if found {
                *current = None;
            }
            found
        })
    }
}

/// The connection and its keeper; dropping it stops the keeper and closes the
/// connection.
pub(super) struct Link {
    shared: Arc<Shared>,
    keeper: tokio::task::JoinHandle<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

impl Link {
    /// Connects (a few attempts, so that a relay whose Redis is down at start-up says
    /// so within seconds, and one that meets a blip does not), then leaves the
    /// connection to its keeper.
    ///
    /// # Errors
    /// What the last attempt met, as text (no secret: the crate's messages carry no
    /// credentials).
    pub(super) async fn open(mut target: Target) -> Result<Self, String> {
        let replicas = AtomicU32::new(0);
        let mut delay = MIN_DELAY * 2;
        let mut attempts = 1;
        let (redis, node) = loop {
            match target.connect_checked(&replicas).await {
                Ok(found) => break found,
                Err(error) if attempts >= FIRST_ATTEMPTS => return Err(error),
                Err(_) => {
                    attempts += 1;
                    sleep(delay.mul_f64(0.5 + fastrand::f64() / 2.0)).await;
                    delay *= 2;
                }
            }
        };
        let shared = Arc::new(Shared {
            current: watch::Sender::new(Some(Connection {
                generation: 0,
                redis,
            })),
            lost: Notify::new(),
            cause: std::sync::Mutex::new(None),
            replicas,
        });
        tracing::info!(node = %node, "callback store: connected to Redis");
        let keeper = tokio::spawn(keep(shared.clone(), target, node));
        Ok(Self { shared, keeper })
    }

    /// The connection, waiting for the keeper to replace a dead one until `deadline`.
    pub(super) async fn connection(&self, deadline: Instant) -> Option<Connection> {
        let mut current = self.shared.current.subscribe();
        let found = timeout_at(deadline, current.wait_for(Option::is_some)).await;
        found.ok()?.ok()?.clone()
    }

    /// Drops connection `generation`, found dead by a request (`cause`), and has the
    /// keeper replace it at once.
    pub(super) fn discard(&self, generation: u64, cause: &RedisError) {
        if self.shared.discard(generation) {
            if let Ok(mut slot) = self.shared.cause.lock() {
                *slot = Some(cause.to_string());
            }
            self.shared.lost.notify_one();
        }
    }

    /// Whether there is a connection now (`/readyz`).
    pub(super) fn is_up(&self) -> bool {
        self.shared.current.borrow().is_some()
    }

    /// The primary's replicas at the last check (behind Sentinel; 0 otherwise).
    pub(super) fn replicas(&self) -> u32 {
        self.shared.replicas.load(Ordering::Relaxed)
    }
}

/// Checks `connection`: `PING`, or behind Sentinel `INFO replication`, which must say
/// that the node is (still) the primary, and gives its replicas' count.
async fn check(
    mut connection: MultiplexedConnection,
    sentinel: bool,
    replicas: &AtomicU32,
) -> Result<(), String> {
    let command = if sentinel {
        let mut info = redis::cmd("INFO");
        info.arg("replication");
        info
    } else {
        redis::cmd("PING")
    };
    let reply: String = timeout(CHECK_TIMEOUT, command.query_async(&mut connection))
        .await
        .map_err(|_| format!("no answer to a health check within {CHECK_TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?;
    if sentinel {
        let (primary, online) = replication(&reply);
        if !primary {
            return Err("the node is no longer the primary".to_owned());
        }
        replicas.store(online, Ordering::Relaxed);
    }
    Ok(())
}

/// From `INFO replication`: whether the node is a primary, and its replicas online.
fn replication(info: &str) -> (bool, u32) {
    let mut primary = false;
    let mut online = 0u32;
    for line in info.lines().map(str::trim) {
        if line == "role:master" {
            primary = true;
        }
        // slave0:ip=10.0.0.2,port=6379,state=online,offset=123,lag=0
        let replica = line
            .strip_prefix("slave")
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(n, fields)| {
                !n.is_empty()
                    && n.bytes().all(|b| b.is_ascii_digit())
                    && fields.split(',').any(|f| f == "state=online")
            });
        online += u32::from(replica);
    }
    (primary, online)
}

/// The keeper: checks the connection, replaces it when it is found dead, forever.
async fn keep(shared: Arc<Shared>, mut target: Target, mut node: String) {
    let sentinel = matches!(target, Target::Sentinel(_));
    let mut generation = 0;
    loop {
        let cause = watch_over(&shared, sentinel).await;
        tracing::warn!(node = %node, error = %cause, "callback store: the connection to Redis is lost; reconnecting");
        let lost = Instant::now();
        let (redis, found) = reconnect(&mut target, &shared.replicas, lost).await;
        generation += 1;
        shared
            .current
            .send_replace(Some(Connection { generation, redis }));
        let down_ms = u64::try_from(lost.elapsed().as_millis()).unwrap_or(u64::MAX);
        if found == node {
            tracing::info!(node = %found, down_ms, "callback store: connected to Redis again");
        } else {
            tracing::warn!(node = %found, previous = %node, down_ms, "callback store: connected to a new Redis primary");
        }
        node = found;
    }
}

/// Returns when the current connection is found dead (by a check or a request), saying
/// why.
async fn watch_over(shared: &Shared, sentinel: bool) -> String {
    loop {
        tokio::select! {
            () = sleep(CHECK_INTERVAL) => {}
            () = shared.lost.notified() => {}
        }
        let current = shared.current.borrow().clone();
        let Some(connection) = current else {
            let cause = shared.cause.lock().ok().and_then(|mut c| c.take());
            return cause.unwrap_or_else(|| "a request found it dead".to_owned());
        };
        if let Err(cause) = check(connection.redis, sentinel, &shared.replicas).await {
            shared.discard(connection.generation);
            return cause;
        }
    }
}

/// Connects again, with backoff, until it works.
async fn reconnect(
    target: &mut Target,
    replicas: &AtomicU32,
    lost: Instant,
) -> (MultiplexedConnection, String) {
    let mut delay = MIN_DELAY;
    let mut warn_at = lost + STILL_DOWN_EVERY;
    let mut attempts = 0u64;
    loop {
        attempts += 1;
        match target.connect_checked(replicas).await {
            Ok(found) => return found,
            Err(error) if Instant::now() >= warn_at => {
                warn_at += STILL_DOWN_EVERY;
                tracing::warn!(
                    %error,
                    attempts,
                    down_secs = lost.elapsed().as_secs(),
                    "callback store: still no connection to Redis"
                );
            }
            Err(error) => {
                tracing::debug!(%error, attempts, "callback store: cannot connect to Redis")
            }
        }
        // Jittered, so that the replicas of a relay do not all come back at once.
        sleep(delay.mul_f64(0.5 + fastrand::f64() / 2.0)).await;
        delay = (delay * 2).min(MAX_DELAY);
    }
}

#[cfg(test)]
mod tests {
    use super::replication;

    #[test]
    fn info_replication_says_the_role_and_the_replicas_online() {
        let primary = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
            slave0:ip=10.0.0.2,port=6379,state=online,offset=42,lag=0\r\n\
            slave1:ip=10.0.0.3,port=6379,state=wait_bgsave,offset=0,lag=0\r\n\
            master_failover_state:no-failover\r\n";
        assert_eq!(replication(primary), (true, 1));
        let replica = "# Replication\r\nrole:slave\r\nmaster_host:10.0.0.1\r\n\
            slave_read_repl_offset:42\r\nslave_priority:100\r\n";
        assert_eq!(replication(replica), (false, 0));
    }
}
