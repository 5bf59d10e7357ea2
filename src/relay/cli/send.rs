//! `send`: a webhook signed as Powens signs it, POSTed to a relay.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::relay::send::{Target, send as post};

use super::{CliError, load_secret, print_out, read_body, runtime};

/// `send`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct SendArgs {
    /// The webhook URL, e.g. http://127.0.0.1:8080/powens-webhook/budgea.biapi.pro/USER_SYNCED
    /// (or without the event, given with --event). Its path is the signed ENDPOINT.
    url: String,
    /// Event appended to the URL's path.
    #[arg(long)]
    event: Option<String>,
    /// File holding the body; without it the body is read from standard input.
    #[arg(long, value_name = "FILE")]
    body_file: Option<PathBuf>,
    /// File holding the secret; without it the secret comes from POWENS_WEBHOOK_SECRET.
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
}

/// Signs and posts; exit 0 on a 2xx, 1 otherwise.
pub(crate) fn send(args: &SendArgs) -> Result<ExitCode, CliError> {
    let target = Target::parse(&args.url, args.event.as_deref())?;
    let secret = load_secret(args.secret_file.as_deref())?;
    let body = read_body(args.body_file.as_deref())?;
    let response = runtime()?.block_on(post(&target, body, &secret))?;
    print_out(&format!("{}\n{}", response.status, response.body))?;
    Ok(if (200..300).contains(&response.status) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
