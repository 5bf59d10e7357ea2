//! `send`: a webhook signed as Powens signs it, POSTed to a relay.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tokio::time::Instant;

use crate::relay::send::{SendError, SendResponse, Target, send as post};
use crate::secret::Secret;

use super::{CliError, load_secret, print_out, read_body, runtime};

/// The pause between two attempts of `--wait`.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

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
    /// Try again, as Powens does, while the connection is refused (the relay is not
    /// listening yet) or the answer is 503 (nothing yet to receive the webhook), for
    /// up to SECS seconds; each attempt is signed anew.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    wait: u64,
}

/// Signs and posts; exit 0 on a 2xx, 1 on another status, 2 when nothing was sent (a
/// refused connection, a bad URL, no secret).
pub(crate) fn send(args: &SendArgs) -> Result<ExitCode, CliError> {
    let target = Target::parse(&args.url, args.event.as_deref())?;
    let secret = load_secret(args.secret_file.as_deref())?;
    let body = read_body(args.body_file.as_deref())?;
    let wait = Duration::from_secs(args.wait);
    let response = runtime()?.block_on(post_until(&target, &body, &secret, wait))?;
    print_out(&format!("{}\n{}", response.status, response.body))?;
    Ok(if (200..300).contains(&response.status) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Posts `body`, again while the connection is refused or the answer is 503, until
/// `wait` has passed; the last attempt's outcome.
async fn post_until(
    target: &Target,
    body: &[u8],
    secret: &Secret,
    wait: Duration,
) -> Result<SendResponse, SendError> {
    let deadline = Instant::now() + wait;
    loop {
        let outcome = post(target, body.to_vec(), secret).await;
        let again = match &outcome {
            Ok(response) => response.status == 503,
            Err(SendError::Connect { source, .. }) => {
                source.kind() == std::io::ErrorKind::ConnectionRefused
            }
            Err(_) => false,
        };
        if !again || Instant::now() + RETRY_PAUSE > deadline {
            return outcome;
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}
