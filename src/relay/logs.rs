//! Log set-up: the global subscriber, its filter and format.

use super::config::LogFormat;

/// Installs the global log subscriber: level from `RUST_LOG` (default `info`), text or
/// JSON lines on standard error (standard output carries messages without a broker).
///
/// lapin is held at `info` whatever `RUST_LOG` says (at `trace` it prints whole AMQP
/// frames), and its warning about a returned message is silenced: it prints the message,
/// body and signature included. The relay logs unroutable messages itself.
pub fn init_logging(format: LogFormat) {
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
        .with_writer(std::io::stderr)
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
