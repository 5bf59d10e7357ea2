//! Log set-up: the global subscriber, its filter and format, and the writer that lets a
//! busy runtime thread write its lines in batches.

use std::cell::RefCell;
use std::io::Write;
use std::time::{Duration, Instant};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global log subscriber: level from `RUST_LOG` (default `info`), text or
/// JSON lines on standard error (standard output carries messages without a broker).
///
/// lapin is held at `info` whatever `RUST_LOG` says (at `trace` it prints whole AMQP
/// frames), and its warning about a returned message is silenced: it prints the message,
/// body and signature included. The relay logs unroutable messages itself.
///
/// Each line is written to standard error at once, unless the thread logging it has
/// opted into batches with [`flush_log_lines`].
pub(crate) fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    // lapin's connection and I/O-loop errors (a refused login, a cut connection) come
    // back to the relay as failed operations, which it logs once in its own words
    // ("cannot connect to the broker at …", "reconnecting"): lapin's own lines would
    // only repeat them with its internals.
    const QUIET: [&str; 6] = [
        "lapin=info",
        "lapin::returned_messages=error",
        "lapin::channel=off",
        "lapin::channels=off",
        "lapin::io_loop=off",
        "amq_protocol=info",
    ];
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    for directive in QUIET {
        if let Ok(directive) = directive.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| Lines)
        // Colour codes only for a person at a terminal, not in journald or a file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // A subscriber may already be installed (tests); keep it.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// The most bytes of log lines a thread holds back.
const BATCH_BYTES: usize = 16 * 1024;

/// The longest a log line is held back while its thread keeps logging.
const BATCH_AGE: Duration = Duration::from_millis(50);

thread_local! {
    /// This thread's lines not yet written, when it batches them.
    static BATCH: RefCell<Option<Batch>> = const { RefCell::new(None) };
}

/// Log lines held back by one thread.
struct Batch {
    lines: Vec<u8>,
    /// When the oldest of them was logged.
    since: Option<Instant>,
}

impl Batch {
    fn new() -> Self {
        Self {
            lines: Vec::with_capacity(BATCH_BYTES),
            since: None,
        }
    }

    /// Holds `line`, logged at `now`; whether the batch is due to be written out: full,
    /// or its oldest line too old.
    fn hold(&mut self, line: &[u8], now: Instant) -> bool {
        let since = *self.since.get_or_insert(now);
        self.lines.extend_from_slice(line);
        self.lines.len() >= BATCH_BYTES || now.duration_since(since) >= BATCH_AGE
    }

    /// Writes the lines out to standard error, and empties the batch.
    fn write_out(&mut self) {
        self.write_to(&mut std::io::stderr());
    }

    fn write_to(&mut self, out: &mut impl Write) {
        if !self.lines.is_empty() {
            // Nowhere to report a failure to write the logs.
            let _ = out.write_all(&self.lines);
            self.lines.clear();
        }
        self.since = None;
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        self.write_out();
    }
}

/// Writes this thread's held-back log lines, and from now on lets it hold back the
/// lines it logs until its next call, until [`BATCH_BYTES`] (16 KiB) are waiting, or
/// until a line has waited [`BATCH_AGE`] (50 ms), whichever comes first; what is left
/// is written when the thread ends.
///
/// Meant for the async runtime's `on_thread_park` hook, as `powens-relay` does: a
/// worker with nothing left to do writes its lines before sleeping, so that at low load
/// each line is written at once, and under load the lines of many requests go out in
/// one `write` instead of one each. A `write` to standard error (a pipe to journald)
/// takes the stderr lock and wakes the reader: it cost 4–5 % of the relay's CPU under
/// load, one per webhook. Only the workers park: blocking-pool threads, which might sit
/// idle with lines held back, never batch. Lines of different threads can come out of
/// order by up to 50 ms; each carries its timestamp.
pub(crate) fn flush_log_lines() {
    let _ = BATCH.try_with(|batch| {
        if let Ok(mut batch) = batch.try_borrow_mut() {
            batch.get_or_insert_with(Batch::new).write_out();
        }
    });
}

/// The log writer: standard error, through this thread's batch if it has one.
///
/// The formatter writes each event's whole line in one `write_all`, so that a batch
/// only ever holds whole lines.
struct Lines;

impl Write for Lines {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let held = BATCH
            .try_with(|batch| {
                let Ok(mut batch) = batch.try_borrow_mut() else {
                    return false;
                };
                let Some(batch) = batch.as_mut() else {
                    return false;
                };
                if batch.hold(line, Instant::now()) {
                    batch.write_out();
                }
                true
            })
            .unwrap_or(false);
        if !held {
            std::io::stderr().write_all(line)?;
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_holds_lines_until_it_is_full_or_its_oldest_line_is_too_old() {
        let line = [b'x'; 99].iter().chain(b"\n").copied().collect::<Vec<u8>>();
        let start = Instant::now();
        let mut batch = Batch::new();
        // 163 lines of 100 bytes stay below 16 KiB, logged within 50 ms: held.
        for n in 0..163 {
            assert!(
                !batch.hold(&line, start + Duration::from_micros(n * 300)),
                "{n}"
            );
        }
        // The 164th reaches 16 400 bytes: due.
        assert!(batch.hold(&line, start + Duration::from_millis(49)));

        // Written out in one piece: empty, and the age starts again.
        let mut out = Vec::new();
        batch.write_to(&mut out);
        assert_eq!(out, line.repeat(164));
        assert!(batch.lines.is_empty());
        assert_eq!(batch.since, None);
        let later = start + Duration::from_secs(1);
        assert!(!batch.hold(&line, later));
        assert!(!batch.hold(&line, later + BATCH_AGE - Duration::from_micros(1)));
        assert!(batch.hold(&line, later + BATCH_AGE));
    }
}
