//! The reads: the drain's batches, listings and their filters, duplicates, figures.

use super::*;
use crate::relay::journal::entry::RecentId;
use crate::relay::journal::{Filter, Seq, State};

/// Webhooks for two domains and two events, ids 1..=8, received at `at(n)`; ids 3 and
/// 6 confirmed, id 8 held, id 7 without an `id_webhook_data`. Returns the seqs.
async fn sample(journal: &Journal) -> Vec<Seq> {
    let entries = (1..=8)
        .map(|n| {
            let key = if n % 2 == 0 {
                "b.biapi.pro"
            } else {
                "a.biapi.pro"
            };
            let mut e = entry(key, n);
            if n > 4 {
                e.event = Some("CONNECTION_SYNCED".to_owned());
            }
            if n == 7 {
                e.id_webhook_data = None;
            }
            if n == 8 {
                e.state = Undelivered::Held;
            }
            e
        })
        .collect();
    let seqs = append_all(journal, entries).await;
    journal.confirm(vec![seqs[2], seqs[5]]).await.unwrap();
    seqs
}

fn ids(entries: &[crate::relay::journal::EntryMeta]) -> Vec<i64> {
    entries
        .iter()
        .map(|e| e.received_at.timestamp() - at(0).timestamp())
        .collect()
}

#[tokio::test]
async fn pending_reads_waiting_entries_in_seq_order_in_batches() {
    let dir = TempDir::new("pending");
    let journal = open(dir.path());
    let seqs = sample(&journal).await;
    let reader = journal.reader();
    let first = reader.pending(None, 3).await.unwrap();
    let rest = reader.pending(Some(first[2].meta.seq), 100).await.unwrap();
    let seen: Vec<_> = first.iter().chain(&rest).map(|e| e.meta.seq).collect();
    let waiting = [0, 1, 3, 4, 6, 7].map(|i| seqs[i]);
    assert_eq!(seen, waiting, "pending and held, no confirmed, by seq");
    assert_eq!(rest.last().unwrap().meta.state, State::Held);
    assert_eq!(rest.last().unwrap().body, entry("b.biapi.pro", 8).body);
    assert!(reader.pending(Some(seqs[7]), 10).await.unwrap().is_empty());

    assert_eq!(
        reader.waiting_per_key().await.unwrap(),
        [("a.biapi.pro".to_owned(), 3), ("b.biapi.pro".to_owned(), 3)]
    );
    journal.confirm(seqs.clone()).await.unwrap();
    assert!(reader.waiting_per_key().await.unwrap().is_empty());
    journal.close().await;
}

#[tokio::test]
async fn list_applies_every_filter() {
    let dir = TempDir::new("list");
    let journal = open(dir.path());
    let seqs = sample(&journal).await;
    let reader = journal.reader();
    let list = |filter: Filter| async move { ids(&reader.list(&filter).await.unwrap()) };

    assert_eq!(list(Filter::default()).await, (1..=8).collect::<Vec<_>>());
    let domain = Some("a.biapi.pro".to_owned());
    assert_eq!(
        list(Filter {
            domain: domain.clone(),
            ..Default::default()
        })
        .await,
        [1, 3, 5, 7]
    );
    let event = Some("CONNECTION_SYNCED".to_owned());
    assert_eq!(
        list(Filter {
            event: event.clone(),
            ..Default::default()
        })
        .await,
        [5, 6, 7, 8]
    );
    // Since inclusive, until exclusive.
    let window = Filter {
        since: Some(at(3)),
        until: Some(at(6)),
        ..Default::default()
    };
    assert_eq!(list(window).await, [3, 4, 5]);
    let id = Filter {
        id_webhook_data: Some(4),
        ..Default::default()
    };
    assert_eq!(list(id).await, [4]);
    let pending = Filter {
        pending_only: true,
        ..Default::default()
    };
    assert_eq!(list(pending).await, [1, 2, 4, 5, 7, 8]);
    let page = Filter {
        after: Some(seqs[1]),
        limit: Some(2),
        ..Default::default()
    };
    assert_eq!(list(page).await, [3, 4]);
    let all = Filter {
        domain,
        event,
        since: Some(at(5)),
        until: Some(at(8)),
        pending_only: true,
        ..Default::default()
    };
    assert_eq!(list(all).await, [5, 7]);
    let none = Filter {
        domain: Some("c.biapi.pro".to_owned()),
        ..Default::default()
    };
    assert!(list(none).await.is_empty());

    let with_bodies = reader
        .list_with_bodies(&Filter {
            id_webhook_data: Some(3),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(with_bodies.len(), 1);
    assert_eq!(with_bodies[0].body, entry("a.biapi.pro", 3).body);
    assert_eq!(with_bodies[0].meta.state, State::Confirmed);
    assert_eq!(with_bodies[0].meta.message_id, "msg-a.biapi.pro-3");
    // A page after an entry, with bodies (the console's entry view): each entry with
    // its own body, in `seq` order.
    let page = reader
        .list_with_bodies(&Filter {
            after: Some(seqs[1]),
            limit: Some(3),
            pending_only: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let page: Vec<_> = page.iter().map(|e| (e.meta.seq, e.body.clone())).collect();
    // Webhooks 4, 5 and 7: 3 and 6 are confirmed.
    let expected = vec![
        (seqs[3], entry("b.biapi.pro", 4).body),
        (seqs[4], entry("a.biapi.pro", 5).body),
        (seqs[6], entry("a.biapi.pro", 7).body),
    ];
    assert_eq!(page, expected);
    journal.close().await;
}

#[tokio::test]
async fn recent_ids_see_accepted_webhooks() {
    let dir = TempDir::new("ids");
    let journal = open(dir.path());
    sample(&journal).await;
    let reader = journal.reader();
    let recent = reader.recent_ids(at(5)).await.unwrap();
    let expected = [(6, "b.biapi.pro"), (8, "b.biapi.pro"), (5, "a.biapi.pro")];
    let mut recent: Vec<_> = recent.into_iter().collect();
    recent.sort_by_key(|r| r.id_webhook_data);
    let mut expected: Vec<_> = expected
        .iter()
        .map(|&(n, key)| RecentId {
            routing_key: key.to_owned(),
            id_webhook_data: n,
            message_id: format!("msg-{key}-{n}"),
        })
        .collect();
    expected.sort_by_key(|r| r.id_webhook_data);
    assert_eq!(recent, expected, "whatever their state; none without an id");

    journal.close().await;
}

#[tokio::test]
async fn stats_count_states_bytes_and_the_oldest_waiting_entry() {
    let dir = TempDir::new("stats");
    let journal = open(dir.path());
    let empty = journal.reader().stats().await.unwrap();
    assert_eq!(
        (
            empty.totals.pending,
            empty.totals.bytes,
            empty.oldest_pending_received_at
        ),
        (0, 0, None)
    );
    let seqs = sample(&journal).await;
    journal.confirm(vec![seqs[0]]).await.unwrap();
    let stats = journal.reader().stats().await.unwrap();
    let totals = journal.totals();
    assert_eq!(
        (
            stats.totals.pending,
            stats.totals.held,
            stats.totals.confirmed,
            stats.totals.bytes,
            stats.totals.undelivered_bytes
        ),
        (
            totals.pending,
            totals.held,
            totals.confirmed,
            totals.bytes,
            totals.undelivered_bytes
        )
    );
    assert_eq!(
        (
            stats.totals.pending,
            stats.totals.held,
            stats.totals.confirmed
        ),
        (4, 1, 3)
    );
    let body_bytes: u64 = journal
        .reader()
        .list_with_bodies(&Filter::default())
        .await
        .unwrap()
        .iter()
        .map(|e| e.body.len() as u64)
        .sum();
    assert_eq!(stats.totals.bytes, body_bytes);
    assert_eq!(
        stats.oldest_pending_received_at,
        Some(at(2)),
        "entry 1 is confirmed"
    );
    assert!(stats.file_bytes >= 4096);
    journal.close().await;
}
