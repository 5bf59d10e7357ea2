//! `powens-relay`: the command line of powens-webhooks. See `powens-relay --help`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use chrono::Utc;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use powens_webhooks::relay::config::{AmqpUrl, Overrides, RelayConfig};
use powens_webhooks::relay::consume::{Bindings, ConsumeError, ConsumerSettings, TealConsumer};
use powens_webhooks::relay::{Relay, ops, send};
use powens_webhooks::{
    Domain, FreshnessWindow, HmacHeaders, KeyRing, Secret, Signature, SignatureDate, SignedPrefix,
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
    /// Run the relay: receive webhooks, verify them, publish them to RabbitMQ and answer
    /// 204 once the broker confirmed. Without an AMQP URL, messages go to standard output.
    Serve {
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Sign a body (date = now) and POST it to a relay, as Powens would; prints the
    /// status and the response body. Exit 0 on a 2xx, 1 otherwise.
    ///
    /// The secret comes from POWENS_WEBHOOK_SECRET or --secret-file.
    Send {
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
    },
    /// Bind a private queue to the webhook exchange for a domain and print each message
    /// received as one JSON line (acknowledged once printed).
    Consume {
        /// RabbitMQ URL.
        #[arg(long, env = "POWENS_RELAY_AMQP_URL", hide_env_values = true)]
        amqp_url: String,
        /// A Powens domain to receive webhooks for (repeatable).
        #[arg(long, required = true)]
        domain: Vec<String>,
        /// Prefix of the exchange names, as the relay's.
        #[arg(long, env = "POWENS_RELAY_EXCHANGE_PREFIX", default_value = "")]
        exchange_prefix: String,
        /// Declare the exchange durable, as the relay does.
        #[arg(long, env = "POWENS_RELAY_EXCHANGE_DURABLE", default_value_t = false)]
        exchange_durable: bool,
        /// Stop after N messages.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
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
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Err(message) = no_password_in_argv(&matches) {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Sign { request } => run_sign(&request),
        Command::Verify {
            request,
            signature,
            max_age,
        } => run_verify(&request, &signature, max_age),
        Command::Serve { overrides } => run_serve(&overrides),
        Command::Send {
            url,
            event,
            body_file,
            secret_file,
        } => run_send(
            &url,
            event.as_deref(),
            body_file.as_deref(),
            secret_file.as_deref(),
        ),
        Command::Consume {
            amqp_url,
            domain,
            exchange_prefix,
            exchange_durable,
            count,
        } => run_consume(&amqp_url, &domain, exchange_prefix, exchange_durable, count),
    };
    result.unwrap_or_else(|message| {
        eprintln!("error: {message}");
        ExitCode::from(2)
    })
}

/// Refuses an `--amqp-url` flag that carries a password: the command line is visible to
/// every local user (`ps`, `/proc`). The environment variable and the file are not.
fn no_password_in_argv(matches: &clap::ArgMatches) -> Result<(), Fatal> {
    let Some((_, sub)) = matches.subcommand() else {
        return Ok(());
    };
    let from_flag = sub
        .try_get_one::<String>("amqp_url")
        .ok()
        .flatten()
        .filter(|_| sub.value_source("amqp_url") == Some(clap::parser::ValueSource::CommandLine));
    match from_flag {
        Some(url) if AmqpUrl::parse(url).is_ok_and(|u| u.has_password()) => Err(
            "--amqp-url holds a password, which every local user can read on the command line: \
             set POWENS_RELAY_AMQP_URL (or amqp_url in the configuration file) instead"
                .into(),
        ),
        _ => Ok(()),
    }
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

fn runtime() -> Result<tokio::runtime::Runtime, Fatal> {
    tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn run_serve(overrides: &Overrides) -> Result<ExitCode, Fatal> {
    let config = RelayConfig::load(overrides).map_err(|e| e.to_string())?;
    ops::init_logging(config.log_format);
    runtime()?.block_on(async {
        let relay = Relay::start(&config).await.map_err(|e| e.to_string())?;
        let addr = relay.local_addr().map_err(|e| e.to_string())?;
        tracing::info!(
            %addr,
            domains = config.domains.len(),
            public_path_prefix = %config.public_path_prefix,
            "listening on {addr}"
        );
        relay.run(ops::shutdown_signal()).await;
        Ok(ExitCode::SUCCESS)
    })
}

fn run_send(
    url: &str,
    event: Option<&str>,
    body_file: Option<&Path>,
    secret_file: Option<&Path>,
) -> Result<ExitCode, Fatal> {
    let target = send::Target::parse(url, event).map_err(|e| e.to_string())?;
    let secret = load_secret(secret_file)?;
    let body = read_body(body_file)?;
    let response = runtime()?
        .block_on(send::send(&target, body, &secret))
        .map_err(|e| e.to_string())?;
    println!("{}", response.status);
    print!("{}", response.body);
    Ok(if (200..300).contains(&response.status) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run_consume(
    amqp_url: &str,
    domains: &[String],
    exchange_prefix: String,
    exchange_durable: bool,
    count: Option<u64>,
) -> Result<ExitCode, Fatal> {
    let url = AmqpUrl::parse(amqp_url).map_err(|m| format!("--amqp-url {m}"))?;
    let bindings = Bindings {
        domains: domains
            .iter()
            .map(|d| Domain::parse(d).map_err(|e| format!("--domain: {e}")))
            .collect::<Result<_, _>>()?,
        ..Bindings::default()
    };
    let settings = ConsumerSettings {
        exchange_prefix,
        exchange_durable,
        ..ConsumerSettings::default()
    };
    runtime()?.block_on(async {
        let mut consumer = TealConsumer::connect(&url, &settings, &bindings)
            .await
            .map_err(|e| e.to_string())?;
        eprintln!("consuming from queue {}", consumer.queue());
        let mut received = 0u64;
        while count.is_none_or(|n| received < n) {
            let printed = consumer
                .handle_next(|message| {
                    let mut out = std::io::stdout().lock();
                    let written = out
                        .write_all(&message.body)
                        .and_then(|()| out.write_all(b"\n"))
                        .and_then(|()| out.flush());
                    std::future::ready(written)
                })
                .await;
            match printed {
                Ok(Some(Ok(()))) => received += 1,
                Ok(Some(Err(e))) => return Err(format!("cannot write to standard output: {e}")),
                Ok(None) => break,
                Err(e @ ConsumeError::Malformed { .. }) => eprintln!("skipped: {e}"),
                Err(e) => return Err(e.to_string()),
            }
        }
        consumer.close().await;
        Ok(ExitCode::SUCCESS)
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
