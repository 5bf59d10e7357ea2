//! Append rates on this disk, by hand (not a timed test: shared machines are noisy):
//! `cargo test --release --all-features --lib relay::journal::tests::measure -- --ignored --nocapture`

use std::time::Instant;

use super::*;

/// 1 KiB bodies: one appender waiting for each commit, then 64 concurrent appenders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
async fn measure_append_rates() {
    let dir = TempDir::new("measure");
    let journal = open(dir.path());
    let lone = 300;
    let started = Instant::now();
    for n in 0..lone {
        journal.append(sized("a.biapi.pro", n, 1024)).await.unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "1 appender: {lone} appends in {elapsed:.2?}: {:.0}/s, {:.0} µs per append",
        lone as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / lone as f64
    );

    for appenders in [8i64, 64, 256] {
        let per_task = 8000 / appenders;
        let before = journal.counters();
        let started = Instant::now();
        let tasks: Vec<_> = (0..appenders)
            .map(|t| {
                let journal = journal.clone();
                tokio::spawn(async move {
                    for n in 0..per_task {
                        let n = t * per_task + n;
                        journal.append(sized("a.biapi.pro", n, 1024)).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let elapsed = started.elapsed();
        let after = journal.counters();
        let rows = after.appended - before.appended;
        let commits = after.commits - before.commits;
        println!(
            "{appenders} appenders: {rows} appends in {elapsed:.2?}: {:.0}/s, {:.1} µs per \
             append, {commits} commits ({:.1} rows each)",
            rows as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1e6 / rows as f64,
            rows as f64 / commits as f64
        );
    }
    journal.close().await;
}
