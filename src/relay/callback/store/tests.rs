//! The callback stores: the embedded SQLite file (shared by two handles as by two
//! processes, kept across a reopen) and Redis (TeaL's keys and JSON, with a TTL), both
//! against the same contract.

use chrono::{TimeDelta, Utc};
use redis::AsyncCommands;
use url::Url;

use super::{CallbackStore, EmbeddedStore, Lookup, StoreSpec};
use crate::relay::callback::{CallbackRecord, CallbackState};
use crate::relay::testing::redis_url;

/// A name no other test (or earlier run) uses.
fn unique(what: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!(
        "test_{what}_{}_{nanos:x}_{}_",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn record(expires_in: TimeDelta, redirect: Option<&str>) -> CallbackRecord {
    CallbackRecord::new(
        Utc::now() + expires_in,
        redirect.map(|u| Url::parse(u).unwrap()),
        false,
    )
}

/// The contract both stores keep.
async fn contract(store: &dyn CallbackStore) {
    let now = Utc::now();
    let state = CallbackState::parse(&unique("state")).unwrap();
    assert_eq!(
        store.read(&state, Lookup::get(now)).await.unwrap(),
        None,
        "unknown"
    );

    let first = record(TimeDelta::minutes(5), Some("https://app.example.org/done"));
    store.put(&state, &first).await.unwrap();
    assert_eq!(
        store.read(&state, Lookup::get(now)).await.unwrap(),
        Some(first.clone())
    );
    // Read twice: not consumed by a read (TeaL's replayable states).
    assert_eq!(
        store.read(&state, Lookup::get(now)).await.unwrap(),
        Some(first)
    );

    // Replaced, as TeaL does.
    let second = record(TimeDelta::minutes(5), None);
    store.put(&state, &second).await.unwrap();
    assert_eq!(
        store.read(&state, Lookup::get(now)).await.unwrap(),
        Some(second.clone())
    );

    // Taken once: the second take finds nothing.
    assert_eq!(
        store.read(&state, Lookup::take(now)).await.unwrap(),
        Some(second)
    );
    assert_eq!(store.read(&state, Lookup::take(now)).await.unwrap(), None);
    assert_eq!(store.read(&state, Lookup::get(now)).await.unwrap(), None);

    // Expired: unknown, and deleted when read.
    let expired = CallbackState::parse(&unique("expired")).unwrap();
    store
        .put(&expired, &record(TimeDelta::seconds(30), None))
        .await
        .unwrap();
    let later = now + TimeDelta::seconds(31);
    assert_eq!(
        store.read(&expired, Lookup::get(later)).await.unwrap(),
        None
    );
    assert_eq!(
        store.read(&expired, Lookup::get(now)).await.unwrap(),
        None,
        "deleted"
    );
}

#[tokio::test]
async fn the_embedded_store_keeps_callbacks_across_handles_and_reopening() {
    let dir = std::env::temp_dir().join(unique("store"));
    let path = dir.join("callbacks.sqlite3");
    let store = EmbeddedStore::open(&path).unwrap();
    contract(&store).await;

    // Another handle on the same file (as another process), and the file reopened
    // after the first is dropped (as after a restart), see what was written.
    let state = CallbackState::parse("shared").unwrap();
    let written = record(TimeDelta::minutes(5), Some("https://app.example.org/x"));
    store.put(&state, &written).await.unwrap();
    let other: &dyn CallbackStore = &EmbeddedStore::open(&path).unwrap();
    assert_eq!(
        other.read(&state, Lookup::get(Utc::now())).await.unwrap(),
        Some(written.clone())
    );
    drop(store);
    let reopened = StoreSpec::parse("embedded", &dir)
        .unwrap()
        .open()
        .await
        .unwrap();
    assert_eq!(
        reopened
            .read(&state, Lookup::get(Utc::now()))
            .await
            .unwrap(),
        Some(written)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_redis_store_writes_teal_keys_with_a_ttl() {
    let url = redis_url();
    let spec = StoreSpec::parse(url, std::path::Path::new("unused")).unwrap();
    let store = spec.open().await.unwrap();
    contract(store.as_ref()).await;

    // TeaL's key and JSON, readable by TeaL; a TTL matching expires_at.
    let state = CallbackState::parse(&unique("teal")).unwrap();
    let written = record(TimeDelta::seconds(60), Some("https://app.example.org/done"));
    store.put(&state, &written).await.unwrap();
    let client = redis::Client::open(url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("callback_{}", state.as_str());
    let value: String = connection.get(&key).await.unwrap();
    let json: serde_json::Value = serde_json::from_str(&value).unwrap();
    assert_eq!(json["final_redirect_url"], "https://app.example.org/done");
    assert_eq!(json["with_fragment"], false);
    assert!(
        !json["expires_at"].as_str().unwrap().ends_with('Z'),
        "naive UTC"
    );
    let ttl: i64 = connection.ttl(&key).await.unwrap();
    assert!((55..=61).contains(&ttl), "TTL {ttl}");

    // What TeaL's dispatcher writes (no TTL, its own JSON spacing) is read.
    let teal_state = CallbackState::parse(&unique("from-teal")).unwrap();
    let teal_key = format!("callback_{}", teal_state.as_str());
    let expires = (Utc::now() + TimeDelta::minutes(1)).format("%Y-%m-%dT%H:%M:%S%.6f");
    let teal_value = format!(
        "{{\"expires_at\": \"{expires}\", \"final_redirect_url\": null, \"with_fragment\": true}}"
    );
    let _: () = connection.set(&teal_key, teal_value).await.unwrap();
    let read = store
        .read(&teal_state, Lookup::get(Utc::now()))
        .await
        .unwrap()
        .unwrap();
    assert!(read.with_fragment && read.final_redirect_url.is_none());
    let _: () = connection.del(&[key, teal_key]).await.unwrap();
}
