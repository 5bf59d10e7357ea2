//! `powens-relay`: the command line (see `powens-relay --help`), parsed here; each
//! subcommand lives in a module of its own. `src/main.rs` only calls [`main`].

mod callback;
mod consume;
mod dispatch;
mod error;
mod flags;
mod journal;
mod send;
mod serve;
mod sign;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::io::Read;
use std::path::Path;

use crate::Secret;
use crate::relay::redact::url_has_password;

/// Environment variable holding the webhook secret for `sign`, `verify` and `send`.
pub(crate) const SECRET_ENV: &str = "POWENS_WEBHOOK_SECRET";

pub(crate) use error::CliError;

/// Refuses a flag whose URL carries a password (`--amqp-url`, `--callback-store`): the
/// command line is visible to every local user (`ps`, `/proc`). The environment variable
/// and the file are not.
pub(crate) fn no_password_in_argv(matches: &clap::ArgMatches) -> Result<(), CliError> {
    let mut current = matches;
    while let Some((_, sub)) = current.subcommand() {
        for (flag, key) in [
            ("--amqp-url", "amqp_url"),
            ("--callback-store", "callback_store"),
        ] {
            let from_flag =
                sub.try_get_one::<String>(key).ok().flatten().filter(|_| {
                    sub.value_source(key) == Some(clap::parser::ValueSource::CommandLine)
                });
            if from_flag.is_some_and(|url| url_has_password(url)) {
                return Err(CliError::PasswordInArgv {
                    flag,
                    variable: format!("POWENS_RELAY_{}", key.to_ascii_uppercase()),
                    key,
                });
            }
        }
        current = sub;
    }
    Ok(())
}

/// Writes `text` to standard output. A reader that has gone (`| head -n 1`) is not an
/// error, where `println!` would panic: what it did not read, it did not want. Any
/// other failure (a full disk) is.
pub(crate) fn print_out(text: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Stdout(e)),
        _ => Ok(()),
    }
}

/// Says at start-up where the state lives (`data_dir`, absolute): in the log for the
/// services (`logged`), on standard error for the one-shot commands, whose standard
/// output is their result.
pub(crate) fn say_data_dir(dir: &Path, logged: bool) {
    let dir = dir.display();
    match logged {
        true => tracing::info!(data_dir = %dir, "data directory: {dir}"),
        false => eprintln!("data directory: {dir}"),
    }
}

/// A Tokio runtime for the commands that need one.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    // A worker writes its log lines before it sleeps, in one write under load.
    builder
        .on_thread_park(crate::relay::logs::flush_log_lines)
        .on_thread_stop(crate::relay::logs::flush_log_lines);
    builder.build().map_err(CliError::Runtime)
}

/// The webhook secret, from `file` or [`SECRET_ENV`].
pub(crate) fn load_secret(file: Option<&Path>) -> Result<Secret, CliError> {
    match file {
        Some(path) => Secret::from_file(path),
        None => Secret::from_env(SECRET_ENV),
    }
    .map_err(CliError::Secret)
}

/// The body, from `file` or standard input.
pub(crate) fn read_body(file: Option<&Path>) -> Result<Vec<u8>, CliError> {
    match file {
        Some(path) => std::fs::read(path).map_err(|source| CliError::BodyFile {
            path: path.to_owned(),
            source,
        }),
        None => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .map_err(CliError::Stdin)?;
            Ok(body)
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "powens-relay",
    version,
    about = "Sign, verify and relay Powens webhooks."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the BI-Signature of a webhook (base64), as Powens computes it.
    ///
    /// The secret comes from POWENS_WEBHOOK_SECRET or --secret-file, never from the
    /// command line.
    Sign(sign::SignArgs),
    /// Check a BI-Signature: prints `valid` (exit 0) or `invalid: <reason>` (exit 1).
    ///
    /// The secret comes from POWENS_WEBHOOK_SECRET or --secret-file.
    Verify(sign::VerifyArgs),
    /// Run the relay: receive webhooks, verify them, publish them to RabbitMQ and answer
    /// 204 once the broker confirmed. Without an AMQP URL, messages go to standard output.
    Serve(serve::ServeArgs),
    /// Sign a body (date = now) and POST it to a relay, as Powens would; prints the
    /// status and the response body. Exit 0 on a 2xx, 1 on another status, 2 when
    /// nothing was sent (a refused connection, a bad URL, no secret).
    ///
    /// The secret comes from POWENS_WEBHOOK_SECRET or --secret-file.
    Send(send::SendArgs),
    /// Bind a private queue to the webhook exchange for a domain and print each message
    /// received as one JSON line (acknowledged once printed).
    Consume(consume::ConsumeArgs),
    /// Run TeaL's websocket dispatcher: clients create callbacks and register to
    /// states, CIBA requests and Powens domains on GET /websocket, and receive their
    /// messages from RabbitMQ as they come.
    ///
    /// The password (user anonymous) comes from POWENS_RELAY_DISPATCHER_PASSWORD or the
    /// file named by --dispatcher-password file:PATH, never from the command line.
    Dispatch(dispatch::DispatchArgs),
    /// Create or show a callback in the callback store (the configuration of `serve`).
    #[command(subcommand)]
    Callback(callback::CallbackCommand),
    /// Look into the journal (webhooks kept under data_dir), publish some of them
    /// again, or drain another relay's journal (the configuration of `serve`).
    #[command(subcommand)]
    Journal(journal::JournalCommand),
}

/// Runs the `powens-relay` command line: parses the process's arguments, runs the
/// subcommand, and returns the exit code (2 when the command could not run at all).
#[must_use]
pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = no_password_in_argv(&matches).and_then(|()| match cli.command {
        Command::Sign(args) => sign::sign(&args),
        Command::Verify(args) => sign::verify(&args),
        Command::Serve(args) => serve::serve(args),
        Command::Send(args) => send::send(&args),
        Command::Consume(args) => consume::consume(args),
        Command::Dispatch(args) => dispatch::dispatch(args),
        Command::Callback(command) => callback::callback(command),
        Command::Journal(command) => journal::journal(command),
    });
    result.unwrap_or_else(|error| {
        eprintln!("error: {error}");
        ExitCode::from(2)
    })
}
