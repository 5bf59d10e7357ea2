//! The writer: group commit, the state changes, pruning, closing, its settings.

use super::*;
use crate::relay::journal::{AppendError, Seq, State, Totals, WriteError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_one_commit() {
    let dir = TempDir::new("group");
    let journal = open(dir.path());
    let release = pause(&journal).await;
    let appends: Vec<_> = (0..64)
        .map(|n| {
            let journal = journal.clone();
            tokio::spawn(async move { journal.append(entry("a.biapi.pro", n)).await })
        })
        .collect();
    until_queued(&journal, 64).await;
    drop(release);
    let mut seqs = Vec::new();
    for append in appends {
        seqs.push(append.await.unwrap().unwrap().seq);
    }
    let counters = journal.counters();
    assert_eq!(
        (counters.commits, counters.appended),
        (1, 64),
        "64 queued appends, one transaction"
    );
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), 64);
    journal.close().await;

    let journal = open(dir.path());
    let pending = journal.reader().pending(None, 100).await.unwrap();
    let mut ids: Vec<_> = pending
        .iter()
        .filter_map(|e| e.meta.id_webhook_data)
        .collect();
    ids.sort();
    assert_eq!(ids, (0..64).collect::<Vec<_>>());
    journal.close().await;
}

#[tokio::test]
async fn confirm_and_defer_move_entries_between_states() {
    let dir = TempDir::new("states");
    let journal = open(dir.path());
    let held = NewEntry {
        state: Undelivered::Held,
        next_attempt_at: Some(at(100)),
        ..entry("b.biapi.pro", 3)
    };
    let seqs = append_all(
        &journal,
        vec![entry("a.biapi.pro", 1), entry("a.biapi.pro", 2), held],
    )
    .await;
    let size = |key, n| entry(key, n).body.len() as u64;
    let bytes = size("a.biapi.pro", 1) + size("a.biapi.pro", 2) + size("b.biapi.pro", 3);
    assert_eq!(
        journal.totals(),
        Totals {
            pending: 2,
            held: 1,
            confirmed: 0,
            bytes,
            undelivered_bytes: bytes
        }
    );

    assert!(
        journal
            .defer(seqs[0], "broker unavailable", at(50), Undelivered::Held)
            .await
            .unwrap()
    );
    assert!(
        journal
            .defer(seqs[0], "no queue bound", at(60), Undelivered::Held)
            .await
            .unwrap()
    );
    assert!(
        journal
            .defer(seqs[2], "bound now", at(70), Undelivered::Pending)
            .await
            .unwrap()
    );
    let list = journal.reader().list(&Default::default()).await.unwrap();
    let first = &list[0];
    assert_eq!(
        (
            first.state,
            first.attempts,
            first.last_error.as_deref(),
            first.next_attempt_at
        ),
        (State::Held, 2, Some("no queue bound"), Some(at(60)))
    );
    assert_eq!(list[2].state, State::Pending);

    let before = chrono::Utc::now();
    assert_eq!(journal.confirm(vec![seqs[0], seqs[1]]).await.unwrap(), 2);
    assert_eq!(
        journal.confirm(vec![seqs[0], Seq(999)]).await.unwrap(),
        0,
        "idempotent"
    );
    assert!(
        !journal
            .defer(seqs[0], "late", at(80), Undelivered::Pending)
            .await
            .unwrap()
    );
    let confirmed = &journal.reader().list(&Default::default()).await.unwrap()[0];
    assert_eq!(confirmed.state, State::Confirmed);
    assert!(confirmed.confirmed_at.unwrap() >= before - chrono::TimeDelta::seconds(1));
    assert_eq!(
        confirmed.last_error.as_deref(),
        Some("no queue bound"),
        "history kept"
    );

    let expected = Totals {
        pending: 1,
        held: 0,
        confirmed: 2,
        bytes,
        undelivered_bytes: size("b.biapi.pro", 3),
    };
    assert_eq!(journal.totals(), expected);
    let stats = journal.reader().stats().await.unwrap();
    assert_eq!(
        (
            stats.totals.pending,
            stats.totals.held,
            stats.totals.confirmed,
            stats.totals.bytes,
            stats.totals.undelivered_bytes
        ),
        (1, 0, 2, expected.bytes, expected.undelivered_bytes),
        "the file agrees with the writer's figures"
    );
    journal.close().await;
}
#[tokio::test]
async fn prune_respects_the_retention_and_never_takes_a_waiting_entry() {
    let dir = TempDir::new("prune");
    let journal = open(dir.path());
    let k = "a.biapi.pro";
    let seqs = append_all(&journal, (0..2500).map(|n| entry(k, n)).collect()).await;
    let confirmed_before = chrono::Utc::now();
    journal.confirm(seqs[..2498].to_vec()).await.unwrap();
    let hour = std::time::Duration::from_secs(3600);

    let now = chrono::Utc::now();
    assert_eq!(
        journal.prune(now, hour).await.unwrap(),
        0,
        "confirmed a moment ago"
    );
    let commits = journal.counters().commits;
    let later = confirmed_before + chrono::TimeDelta::hours(2);
    assert_eq!(journal.prune(later, hour).await.unwrap(), 2498);
    assert_eq!(
        journal.counters().commits - commits,
        3,
        "in transactions of 1000"
    );
    assert_eq!(journal.counters().pruned, 2498);
    let far = later + chrono::TimeDelta::days(3650);
    assert_eq!(
        journal.prune(far, std::time::Duration::ZERO).await.unwrap(),
        0
    );
    assert_eq!(
        journal.prune(far, std::time::Duration::MAX).await.unwrap(),
        0
    );
    let left: Vec<_> = journal.reader().pending(None, 10).await.unwrap();
    let left: Vec<_> = left.iter().map(|e| e.meta.seq).collect();
    assert_eq!(left, seqs[2498..]);
    assert_eq!(
        rows(dir.path()),
        (2, 2),
        "a pruned entry's body went with it"
    );
    let totals = journal.totals();
    assert_eq!((totals.pending, totals.confirmed), (2, 0));
    assert_eq!(totals.bytes, totals.undelivered_bytes);
    journal.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_commits_what_is_queued_then_refuses() {
    let dir = TempDir::new("close");
    let journal = open(dir.path());
    let release = pause(&journal).await;
    let appends: Vec<_> = (0..10)
        .map(|n| {
            let journal = journal.clone();
            tokio::spawn(async move { journal.append(entry("a.biapi.pro", n)).await })
        })
        .collect();
    until_queued(&journal, 10).await;
    let closing = {
        let journal = journal.clone();
        tokio::spawn(async move { journal.close().await })
    };
    until_queued(&journal, 11).await;
    drop(release);
    closing.await.unwrap();
    for append in appends {
        append.await.unwrap().unwrap();
    }
    assert!(matches!(
        journal.append(entry("a.biapi.pro", 11)).await,
        Err(AppendError::Write(WriteError::Closed))
    ));
    assert!(matches!(
        journal.confirm(vec![Seq(1)]).await,
        Err(WriteError::Closed)
    ));
    journal.close().await; // twice is fine
    assert_eq!(
        journal.reader().stats().await.unwrap().totals.pending,
        10,
        "reads still work"
    );
    // The lock is free.
    let journal = open(dir.path());
    assert_eq!(journal.totals().pending, 10);
    journal.close().await;
}

#[tokio::test]
async fn the_writer_logs_ahead_and_syncs_every_commit() {
    let dir = TempDir::new("pragmas");
    let journal = open(dir.path());
    assert_eq!(
        journal.writer_sql("PRAGMA journal_mode").await.unwrap(),
        ["wal"]
    );
    assert_eq!(
        journal.writer_sql("PRAGMA synchronous").await.unwrap(),
        ["2"],
        "FULL"
    );
    journal.close().await;
}
