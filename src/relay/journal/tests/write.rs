//! The writer: group commit, the state changes, the byte limit, a full disk, pruning,
//! closing.

use super::*;
use crate::relay::journal::request::Failure;
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
            stats.pending,
            stats.held,
            stats.confirmed,
            stats.bytes,
            stats.undelivered_bytes
        ),
        (1, 0, 2, expected.bytes, expected.undelivered_bytes),
        "the file agrees with the writer's figures"
    );
    journal.close().await;
}

#[tokio::test]
async fn the_byte_limit_drops_the_oldest_confirmed_first_and_never_a_pending_one() {
    let dir = TempDir::new("limit");
    let journal = Journal::open(dir.path(), Options { max_bytes: 1000 }).unwrap();
    let k = "a.biapi.pro";
    let seqs = append_all(&journal, (1..=3).map(|n| sized(k, n, 300)).collect()).await;
    // Confirmed in the order 2, 1: entry 2 is the oldest confirm.
    journal.confirm(vec![seqs[1]]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    journal.confirm(vec![seqs[0]]).await.unwrap();

    let appended = journal.append(sized(k, 4, 300)).await.unwrap();
    assert_eq!((appended.dropped, appended.dropped_bytes), (1, 300));
    let left: Vec<_> = journal.reader().list(&Default::default()).await.unwrap();
    let left: Vec<_> = left.iter().map(|e| e.seq).collect();
    assert_eq!(left, vec![seqs[0], seqs[2], appended.seq]);
    assert_eq!(journal.totals().bytes, 900);
    assert_eq!(
        (journal.counters().dropped, journal.counters().dropped_bytes),
        (1, 300)
    );

    // Pending: 600 bytes. 500 more would need a pending entry to go: refused, and the
    // confirmed one is not dropped for nothing.
    let error = journal.append(sized(k, 5, 500)).await.unwrap_err();
    assert!(
        matches!(error, AppendError::Full { max_bytes: 1000 }),
        "{error:?}"
    );
    assert!(error.to_string().contains("journal_max_bytes"));
    assert_eq!(
        journal
            .reader()
            .list(&Default::default())
            .await
            .unwrap()
            .len(),
        3
    );
    // 400 fits once the last confirmed entry goes; exactly at the limit.
    let appended = journal.append(sized(k, 6, 400)).await.unwrap();
    assert_eq!(appended.dropped, 1);
    assert_eq!(
        journal.totals(),
        Totals {
            pending: 3,
            held: 0,
            confirmed: 0,
            bytes: 1000,
            undelivered_bytes: 1000
        }
    );
    // Full now, for any size; a body larger than the limit always.
    assert!(matches!(
        journal.append(sized(k, 7, 1)).await,
        Err(AppendError::Full { .. })
    ));
    let pending = journal.reader().pending(None, 10).await.unwrap();
    assert_eq!(pending.len(), 3, "no pending entry was ever dropped");
    journal.close().await;
}

/// The writer's connection may not grow the file: a full disk, for this connection.
async fn fill_the_disk(journal: &Journal) {
    journal
        .writer_sql("PRAGMA max_page_count = 1")
        .await
        .unwrap(); // floors at its size
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_write_and_keeps_the_journal() {
    let dir = TempDir::new("disk");
    let journal = open(dir.path());
    let k = "a.biapi.pro";
    let seqs = append_all(&journal, (1..=5).map(|n| entry(k, n)).collect()).await;
    fill_the_disk(&journal).await;

    let error = journal.append(sized(k, 6, 256 * 1024)).await.unwrap_err();
    let AppendError::Disk { source, path } = &error else {
        panic!("{error:?}");
    };
    assert!(source.is_disk_full(), "{source}");
    assert_eq!(path, &dir.path().join("journal.sqlite3"));
    // In one batch with a failing append, the other requests still commit.
    let release = pause(&journal).await;
    let commits = journal.counters().commits;
    let (confirm, big, small, ()) = tokio::join!(
        journal.confirm(vec![seqs[0]]),
        journal.append(sized(k, 7, 256 * 1024)),
        journal.append(entry(k, 8)),
        async {
            until_queued(&journal, 3).await;
            drop(release);
        }
    );
    assert_eq!(confirm.unwrap(), 1);
    assert!(matches!(big, Err(AppendError::Disk { .. })), "{big:?}");
    let small = small.unwrap().seq;
    assert_eq!(journal.counters().commits, commits + 1);

    // Space again: appends work, nothing was lost.
    journal
        .writer_sql("PRAGMA max_page_count = 1073741823")
        .await
        .unwrap();
    let big = journal.append(sized(k, 9, 256 * 1024)).await.unwrap().seq;
    journal.close().await;
    let journal = open(dir.path());
    let pending: Vec<_> = journal.reader().pending(None, 100).await.unwrap();
    let pending: Vec<_> = pending.iter().map(|e| e.meta.seq).collect();
    assert_eq!(pending, [&seqs[1..], &[small, big]].concat());
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
        Err(AppendError::Closed)
    ));
    assert!(matches!(
        journal.confirm(vec![Seq(1)]).await,
        Err(WriteError::Closed)
    ));
    journal.close().await; // twice is fine
    assert_eq!(
        journal.reader().stats().await.unwrap().pending,
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

#[tokio::test]
async fn a_request_that_fails_midway_is_rolled_back_alone() {
    let dir = TempDir::new("midway");
    let journal = Journal::open(dir.path(), Options { max_bytes: 1000 }).unwrap();
    let k = "a.biapi.pro";
    let seqs = append_all(&journal, (1..=3).map(|n| sized(k, n, 300)).collect()).await;
    journal.confirm(vec![seqs[0]]).await.unwrap();
    journal
        .writer_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON entries WHEN NEW.message_id = 'refuse'
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        )
        .await
        .unwrap();
    let before = journal.totals();
    // Makes room (drops the confirmed entry), then its insert fails.
    let refused = NewEntry {
        message_id: "refuse".to_owned(),
        ..sized(k, 4, 400)
    };
    let release = pause(&journal).await;
    let (refused, fine, ()) = tokio::join!(
        journal.append(refused),
        journal.append(sized(k, 5, 50)),
        async {
            until_queued(&journal, 2).await;
            drop(release);
        }
    );
    assert!(
        matches!(refused, Err(AppendError::Disk { .. })),
        "{refused:?}"
    );
    assert_eq!(fine.unwrap().dropped, 0);
    let listed = journal.reader().list(&Default::default()).await.unwrap();
    assert_eq!(
        listed[0].seq, seqs[0],
        "the drop was rolled back with its append"
    );
    assert_eq!(listed.len(), 4);
    assert_eq!(journal.counters().dropped, 0);
    let totals = journal.totals();
    assert_eq!(
        totals.bytes,
        before.bytes + 50,
        "the writer's figures rolled back too"
    );
    let stats = journal.reader().stats().await.unwrap();
    assert_eq!(
        (stats.bytes, stats.confirmed),
        (totals.bytes, totals.confirmed)
    );
    journal.close().await;
}

#[tokio::test]
async fn a_failed_request_answers_with_its_own_reason() {
    let dir = TempDir::new("reasons");
    let journal = Journal::open(dir.path(), Options { max_bytes: 10 }).unwrap();
    let release = pause(&journal).await;
    let (full, fine, sql, ()) = tokio::join!(
        journal.append(sized("a.biapi.pro", 1, 11)),
        journal.append(sized("a.biapi.pro", 2, 10)),
        journal.writer_sql("SELECT nonsense FROM nowhere"),
        async {
            until_queued(&journal, 3).await;
            drop(release);
        }
    );
    assert!(matches!(full, Err(AppendError::Full { max_bytes: 10 })));
    assert_eq!(fine.unwrap().dropped, 0);
    assert!(matches!(sql, Err(Some(Failure::Disk(_)))));
    assert_eq!(journal.counters().commits, 1);
    journal.close().await;
}
