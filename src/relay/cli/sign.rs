//! `sign` and `verify`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::{
    FreshnessWindow, HeaderError, HmacHeaders, KeyRing, Signature, SignatureDate, SignedPrefix,
    Verifier, VerifyError,
};
use chrono::Utc;

use super::{CliError, load_secret, print_out, read_body};

/// The request to sign or verify.
#[derive(Debug, clap::Args)]
pub(crate) struct SignArgs {
    /// The request path Powens signs (ENDPOINT), e.g. /powens-webhook/budgea.biapi.pro/USER_SYNCED.
    #[arg(long, value_name = "PATH")]
    endpoint: String,
    /// The BI-Signature-Date header text, e.g. 2022-06-27T11:08:52.577831Z.
    #[arg(long)]
    date: String,
    /// The HTTP method (upper-cased before signing).
    #[arg(long, default_value = "POST")]
    method: String,
    /// File holding the body; without it the body is read from standard input.
    #[arg(long, value_name = "FILE")]
    body_file: Option<PathBuf>,
    /// File holding the secret (one trailing newline is ignored); without it the secret
    /// comes from POWENS_WEBHOOK_SECRET.
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
}

/// `verify`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    request: SignArgs,
    /// The BI-Signature header value (base64).
    #[arg(long)]
    signature: String,
    /// Also refuse a date older than SECS seconds (or more than 120 s ahead).
    /// Without it the date is not checked against the clock.
    #[arg(long, value_name = "SECS")]
    max_age: Option<u64>,
}

/// `sign`: prints the signature.
pub(crate) fn sign(request: &SignArgs) -> Result<ExitCode, CliError> {
    let secret = load_secret(request.secret_file.as_deref())?;
    let body = read_body(request.body_file.as_deref())?;
    let date = SignatureDate::parse(&request.date)?;
    let method = request.method.to_ascii_uppercase();
    let prefix = SignedPrefix::new(&method, &request.endpoint, date.raw());
    print_out(&format!(
        "{}\n",
        crate::sign(&secret, &prefix, &body).to_base64()
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// `verify`: prints `valid` (exit 0) or `invalid: <reason>` (exit 1).
pub(crate) fn verify(args: &VerifyArgs) -> Result<ExitCode, CliError> {
    let request = &args.request;
    let secret = load_secret(request.secret_file.as_deref())?;
    let body = read_body(request.body_file.as_deref())?;
    let mut verifier = Verifier::new(KeyRing::new(secret));
    if let Some(secs) = args.max_age {
        let window = FreshnessWindow::new(Duration::from_secs(secs), Duration::from_secs(120));
        verifier = verifier.with_freshness(window);
    }
    let method = request.method.to_ascii_uppercase();
    let outcome = SignatureDate::parse(&request.date)
        .and_then(|date| {
            Ok(HmacHeaders {
                signature: Signature::from_base64(&args.signature)?,
                date,
            })
        })
        .map_err(Invalid::from)
        .and_then(|hmac| {
            verifier
                .verify(&method, &request.endpoint, &hmac, &body, Utc::now())
                .map_err(Invalid::from)
        });
    Ok(match outcome {
        Ok(_) => {
            print_out("valid\n")?;
            ExitCode::SUCCESS
        }
        Err(reason) => {
            print_out(&format!("invalid: {reason}\n"))?;
            ExitCode::FAILURE
        }
    })
}

/// Why `verify` prints `invalid`.
#[derive(Debug, thiserror::Error)]
enum Invalid {
    /// The date or the signature is malformed.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The signature does not match, or the date is out of the window.
    #[error(transparent)]
    Verify(#[from] VerifyError),
}
