//! The journal's metrics, and its upkeep: the gauges refreshed every second, the
//! entries past their retention pruned every minute.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Shared;

/// How often the gauges are refreshed.
const GAUGES_EVERY: Duration = Duration::from_secs(1);
/// How often entries past their retention are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// `powens_relay_journal_*` and `powens_relay_duplicates_total`.
#[derive(Debug, Default)]
pub(super) struct JournalMetrics {
    pub(super) pending: Gauge,
    pub(super) held: Gauge,
    pub(super) oldest_pending_seconds: Gauge,
    pub(super) bytes: Gauge,
    pub(super) appended: Counter,
    pub(super) published: Counter,
    pub(super) duplicates: Counter,
}

impl JournalMetrics {
    /// Registers the metrics in `registry` (under `powens_relay`).
    pub(super) fn register(&self, registry: &mut Registry) {
        let metrics = self;
        let registry = registry.sub_registry_with_prefix("powens_relay");
        registry.register(
            "journal_pending",
            "Webhooks in the journal waiting to be published",
            metrics.pending.clone(),
        );
        registry.register(
            "journal_held",
            "Webhooks in the journal held until a queue is bound (unroutable = hold)",
            metrics.held.clone(),
        );
        registry.register(
            "journal_oldest_pending_seconds",
            "Age of the oldest webhook waiting in the journal (0: none)",
            metrics.oldest_pending_seconds.clone(),
        );
        registry.register(
            "journal_bytes",
            "Bytes of webhooks in the journal (what journal_max_bytes bounds)",
            metrics.bytes.clone(),
        );
        registry.register(
            "journal_appended",
            "Webhooks committed to the journal",
            metrics.appended.clone(),
        );
        registry.register(
            "journal_published",
            "Webhooks published from the journal and confirmed",
            metrics.published.clone(),
        );
        registry.register(
            "duplicates",
            "Webhooks answered 204 and not published again: accepted before (dedup)",
            metrics.duplicates.clone(),
        );
    }
}

/// Refreshes the gauges and prunes, until the journal closes.
pub(super) async fn upkeep(shared: Arc<Shared>) {
    let mut gauges = tokio::time::interval(GAUGES_EVERY);
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    while !shared.closing.load(Ordering::Acquire) {
        tokio::select! {
            _ = gauges.tick() => refresh(&shared).await,
            _ = prune.tick() => {
                match shared.journal.prune(Utc::now(), shared.settings.retention).await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::debug!(pruned, "journal: entries past their retention removed"),
                    Err(e) => tracing::warn!(error = %e, "journal: pruning failed"),
                }
            }
            () = shared.stopped.notified() => {}
        }
    }
}

async fn refresh(shared: &Shared) {
    let totals = shared.journal.totals();
    let metrics = &shared.metrics;
    metrics.pending.set(clamp(totals.pending));
    metrics.held.set(clamp(totals.held));
    metrics.bytes.set(clamp(totals.bytes));
    let oldest = match totals.pending + totals.held {
        0 => 0,
        _ => match shared.journal.reader().stats().await {
            Ok(stats) => stats
                .oldest_pending_received_at
                .map_or(0, |at| (Utc::now() - at).num_seconds().max(0)),
            Err(e) => {
                tracing::debug!(error = %e, "journal: the oldest entry could not be read");
                return;
            }
        },
    };
    metrics.oldest_pending_seconds.set(oldest);
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
