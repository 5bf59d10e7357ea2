//! The subcommands' bodies, and what they share: reading the secret and the body.

pub mod callback;
pub mod consume;
pub mod dispatch;
pub mod send;
pub mod serve;
pub mod sign;

use std::io::Read;
use std::path::Path;

use powens_webhooks::Secret;
use powens_webhooks::relay::config::url_has_password;

/// Environment variable holding the webhook secret for `sign`, `verify` and `send`.
pub const SECRET_ENV: &str = "POWENS_WEBHOOK_SECRET";

/// A failure to run a command at all (exit 2), as opposed to an invalid signature.
pub type Fatal = String;

/// Refuses a flag whose URL carries a password (`--amqp-url`, `--callback-store`): the
/// command line is visible to every local user (`ps`, `/proc`). The environment variable
/// and the file are not.
pub fn no_password_in_argv(matches: &clap::ArgMatches) -> Result<(), Fatal> {
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
                let variable = format!("POWENS_RELAY_{}", key.to_ascii_uppercase());
                return Err(format!(
                    "{flag} holds a password, which every local user can read on the command \
                     line: set {variable} (or {key} in the configuration file) instead"
                ));
            }
        }
        current = sub;
    }
    Ok(())
}

/// Writes `text` to standard output. A reader that has gone (`| head -n 1`) is not an
/// error, where `println!` would panic: what it did not read, it did not want. Any
/// other failure (a full disk) is.
pub fn print_out(text: &str) -> Result<(), Fatal> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write to standard output: {e}"))
        }
        _ => Ok(()),
    }
}

/// A Tokio runtime for the commands that need one.
pub fn runtime() -> Result<tokio::runtime::Runtime, Fatal> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    // A worker writes its log lines before it sleeps, in one write under load.
    builder
        .on_thread_park(powens_webhooks::relay::flush_log_lines)
        .on_thread_stop(powens_webhooks::relay::flush_log_lines);
    builder
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// The webhook secret, from `file` or [`SECRET_ENV`].
pub fn load_secret(file: Option<&Path>) -> Result<Secret, Fatal> {
    match file {
        Some(path) => Secret::from_file(path),
        None => Secret::from_env(SECRET_ENV),
    }
    .map_err(|e| format!("{e}; give the secret in {SECRET_ENV} or with --secret-file"))
}

/// The body, from `file` or standard input.
pub fn read_body(file: Option<&Path>) -> Result<Vec<u8>, Fatal> {
    match file {
        Some(path) => std::fs::read(path)
            .map_err(|e| format!("cannot read the body file {}: {e}", path.display())),
        None => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .map_err(|e| format!("cannot read the body from standard input: {e}"))?;
            Ok(body)
        }
    }
}
