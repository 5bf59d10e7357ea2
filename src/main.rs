//! `powens-relay`: the command line of powens-webhooks. See `powens-relay --help`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use chrono::Utc;
use clap::{Args, Parser, Subcommand};
use powens_webhooks::{
    FreshnessWindow, HmacHeaders, KeyRing, Secret, Signature, SignatureDate, SignedPrefix,
    Verifier, sign,
};

/// Environment variable holding the webhook secret for `sign` and `verify`.
const SECRET_ENV: &str = "POWENS_WEBHOOK_SECRET";

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
    Sign {
        #[command(flatten)]
        request: RequestArgs,
    },
    /// Check a BI-Signature: prints `valid` (exit 0) or `invalid: <reason>` (exit 1).
    ///
    /// The secret comes from POWENS_WEBHOOK_SECRET or --secret-file.
    Verify {
        #[command(flatten)]
        request: RequestArgs,
        /// The BI-Signature header value (base64).
        #[arg(long)]
        signature: String,
        /// Also refuse a date older than SECS seconds (or more than 120 s ahead).
        /// Without it the date is not checked against the clock.
        #[arg(long, value_name = "SECS")]
        max_age: Option<u64>,
    },
}

#[derive(Debug, Args)]
struct RequestArgs {
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

/// A failure to run a command at all (exit 2), as opposed to an invalid signature.
type Fatal = String;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sign { request } => run_sign(&request),
        Command::Verify {
            request,
            signature,
            max_age,
        } => run_verify(&request, &signature, max_age),
    };
    result.unwrap_or_else(|message| {
        eprintln!("error: {message}");
        ExitCode::from(2)
    })
}

fn run_sign(request: &RequestArgs) -> Result<ExitCode, Fatal> {
    let secret = load_secret(request.secret_file.as_deref())?;
    let body = read_body(request.body_file.as_deref())?;
    let date = SignatureDate::parse(&request.date).map_err(|e| e.to_string())?;
    let method = request.method.to_ascii_uppercase();
    let prefix = SignedPrefix::new(&method, &request.endpoint, date.raw());
    println!("{}", sign(&secret, &prefix, &body).to_base64());
    Ok(ExitCode::SUCCESS)
}

fn run_verify(
    request: &RequestArgs,
    signature: &str,
    max_age: Option<u64>,
) -> Result<ExitCode, Fatal> {
    let secret = load_secret(request.secret_file.as_deref())?;
    let body = read_body(request.body_file.as_deref())?;
    let mut verifier = Verifier::new(KeyRing::new(secret));
    if let Some(secs) = max_age {
        let window = FreshnessWindow::new(Duration::from_secs(secs), Duration::from_secs(120));
        verifier = verifier.with_freshness(window);
    }
    let method = request.method.to_ascii_uppercase();
    let outcome = SignatureDate::parse(&request.date)
        .and_then(|date| {
            Ok(HmacHeaders {
                signature: Signature::from_base64(signature)?,
                date,
            })
        })
        .map_err(|e| e.to_string())
        .and_then(|hmac| {
            verifier
                .verify(&method, &request.endpoint, &hmac, &body, Utc::now())
                .map_err(|e| e.to_string())
        });
    Ok(match outcome {
        Ok(_) => {
            println!("valid");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            println!("invalid: {reason}");
            ExitCode::FAILURE
        }
    })
}

fn load_secret(file: Option<&Path>) -> Result<Secret, Fatal> {
    match file {
        Some(path) => Secret::from_file(path),
        None => Secret::from_env(SECRET_ENV),
    }
    .map_err(|e| format!("{e}; give the secret in {SECRET_ENV} or with --secret-file"))
}

fn read_body(file: Option<&Path>) -> Result<Vec<u8>, Fatal> {
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
