//! The flags of `powens-relay serve`, each also a `POWENS_RELAY_*` variable.

use std::path::PathBuf;

use super::{FileDomain, LogFormat, Mode, Unroutable};

/// The flags of `powens-relay serve`; each overrides the configuration file's key of the
/// same name, and each has a `POWENS_RELAY_*` environment variable.
#[derive(Debug, Default, clap::Args)]
pub struct Overrides {
    /// TOML configuration file (see relay.example.toml). Without it, the flags and
    /// environment variables are the whole configuration.
    #[arg(long, env = "POWENS_RELAY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "POWENS_RELAY_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// RabbitMQ URL, e.g. amqp://user:pass@host:5672/%2f. Without one, messages are
    /// written to standard output as JSON lines. Prefer the environment variable or the
    /// file: a password on the command line is visible to every local user.
    #[arg(
        long,
        env = "POWENS_RELAY_AMQP_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub amqp_url: Option<String>,
    /// Prefix of the exchange names, e.g. teal_ [default: none].
    #[arg(long, env = "POWENS_RELAY_EXCHANGE_PREFIX", value_name = "PREFIX")]
    pub exchange_prefix: Option<String>,
    /// Declare the exchanges durable [default: false, as TeaL].
    #[arg(long, env = "POWENS_RELAY_EXCHANGE_DURABLE", value_name = "BOOL")]
    pub exchange_durable: Option<bool>,
    /// Path prefix that the reverse proxy strips, e.g. /hooks; it is put back in front
    /// of the path before verifying, since Powens signed the public path [default: none].
    #[arg(long, env = "POWENS_RELAY_PUBLIC_PATH_PREFIX", value_name = "PATH")]
    pub public_path_prefix: Option<String>,
    /// Largest accepted body, in bytes [default: 33554432, 32 MiB].
    #[arg(long, env = "POWENS_RELAY_BODY_LIMIT_BYTES", value_name = "BYTES")]
    pub body_limit_bytes: Option<u64>,
    /// Oldest accepted BI-Signature-Date, in seconds [default: 900].
    #[arg(long, env = "POWENS_RELAY_SIGNATURE_MAX_AGE_SECS", value_name = "SECS")]
    pub signature_max_age_secs: Option<u64>,
    /// How far ahead of the clock a BI-Signature-Date may be, in seconds [default: 120].
    #[arg(
        long,
        env = "POWENS_RELAY_SIGNATURE_MAX_AHEAD_SECS",
        value_name = "SECS"
    )]
    pub signature_max_ahead_secs: Option<u64>,
    /// How long to wait for the broker to confirm a message before answering 503
    /// [default: 5].
    #[arg(long, env = "POWENS_RELAY_PUBLISH_TIMEOUT_SECS", value_name = "SECS")]
    pub publish_timeout_secs: Option<u64>,
    /// How long one attempt to connect to the broker may take, in seconds [default: 3].
    #[arg(long, env = "POWENS_RELAY_CONNECT_TIMEOUT_SECS", value_name = "SECS")]
    pub connect_timeout_secs: Option<u64>,
    /// The longest wait between two attempts to reconnect to the broker, in seconds
    /// [default: 1].
    #[arg(
        long,
        env = "POWENS_RELAY_RECONNECT_MAX_DELAY_SECS",
        value_name = "SECS"
    )]
    pub reconnect_max_delay_secs: Option<u64>,
    /// Most webhook requests handled at once; more get 503 with Retry-After
    /// [default: 1024].
    #[arg(long, env = "POWENS_RELAY_MAX_IN_FLIGHT", value_name = "N")]
    pub max_in_flight: Option<u64>,
    /// Most open client connections; more wait in the listen backlog [default: 4096].
    #[arg(long, env = "POWENS_RELAY_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<u64>,
    /// How long reading a request's headers may take, and separately its body; also how
    /// long an idle keep-alive connection is kept, in seconds [default: 30].
    #[arg(long, env = "POWENS_RELAY_READ_TIMEOUT_SECS", value_name = "SECS")]
    pub read_timeout_secs: Option<u64>,
    /// Largest request line and headers, in bytes; more gets 431 [default: 16384].
    #[arg(long, env = "POWENS_RELAY_MAX_HEADER_BYTES", value_name = "BYTES")]
    pub max_header_bytes: Option<u64>,
    /// Answer to a message no queue is bound to receive [default: reject].
    #[arg(long, env = "POWENS_RELAY_UNROUTABLE", value_enum)]
    pub unroutable: Option<Unroutable>,
    /// Log format [default: text]. The level comes from RUST_LOG (default info).
    #[arg(long, env = "POWENS_RELAY_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// A domain, replacing the file's entry of the same name: DOMAIN=REF[,REF...] (mode
    /// verify; REF is env:NAME or file:PATH) or DOMAIN=forward. Repeatable; in the
    /// environment variable, separate domains with ';'.
    #[arg(
        long = "domain",
        env = "POWENS_RELAY_DOMAINS",
        value_name = "DOMAIN=SECRETS",
        value_delimiter = ';'
    )]
    pub domains: Vec<String>,
}

/// `DOMAIN=forward` or `DOMAIN=REF[,REF...]`.
pub(super) fn parse_domain_flag(spec: &str) -> Result<(String, FileDomain), String> {
    let (name, value) = spec
        .split_once('=')
        .ok_or("expected DOMAIN=env:NAME[,file:PATH...] or DOMAIN=forward")?;
    let domain = if value == "forward" {
        FileDomain {
            mode: Mode::Forward,
            secrets: Vec::new(),
        }
    } else {
        FileDomain {
            mode: Mode::Verify,
            secrets: value.split(',').map(str::to_owned).collect(),
        }
    };
    Ok((name.to_owned(), domain))
}
