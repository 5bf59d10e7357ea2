//! `consume`: a private queue bound to the webhook exchange, each message printed.

use std::io::Write;
use std::process::ExitCode;

use crate::Domain;
use crate::relay::broker::AmqpUrl;
use crate::relay::broker::Broker;
use crate::relay::consume::{Bindings, ConsumeError, ConsumerSettings, QueueType, TealConsumer};
use crate::relay::shutdown_signal;

use super::{CliError, runtime};

/// `consume`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct ConsumeArgs {
    /// RabbitMQ URL (for a cluster, its nodes' URLs separated by commas); put one with a
    /// password in POWENS_RELAY_AMQP_URL rather than on the command line.
    #[arg(long, env = "POWENS_RELAY_AMQP_URL", hide_env_values = true)]
    amqp_url: Option<String>,
    /// A Powens domain to receive webhooks for (repeatable).
    #[arg(long, required = true)]
    domain: Vec<String>,
    /// Prefix of the exchange names, as the relay's.
    #[arg(long, env = "POWENS_RELAY_EXCHANGE_PREFIX", default_value = "")]
    exchange_prefix: String,
    /// Declare the exchange durable, as the relay does: `--exchange-durable` alone or
    /// with a value, as `serve` takes it (`--exchange-durable true`).
    #[arg(
        long,
        env = "POWENS_RELAY_EXCHANGE_DURABLE",
        value_name = "BOOL",
        num_args = 0..=1,
        default_value = "false",
        default_missing_value = "true",
        value_parser = clap::value_parser!(bool)
    )]
    exchange_durable: bool,
    /// Consume from a named durable queue that outlives this process (bound to the
    /// domains; messages wait in it while nobody consumes), instead of a private one.
    #[arg(long, value_name = "NAME")]
    queue: Option<String>,
    /// The named queue's type: `quorum` on a cluster (replicated, survives a node's
    /// loss), or `classic`.
    #[arg(
        long,
        value_name = "TYPE",
        requires = "queue",
        default_value = "classic"
    )]
    queue_type: QueueType,
    /// Stop after N messages.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

/// Prints each message as one JSON line, acknowledged once written.
pub(crate) fn consume(args: ConsumeArgs) -> Result<ExitCode, CliError> {
    let url = args.amqp_url.as_deref().ok_or(CliError::NoBroker)?;
    let nodes = AmqpUrl::parse_list(url).map_err(CliError::AmqpUrl)?;
    let broker = Broker::cluster(nodes).ok_or(CliError::NoBroker)?;
    let bindings = Bindings {
        domains: args
            .domain
            .iter()
            .map(|d| Domain::parse(d).map_err(CliError::Domain))
            .collect::<Result<_, _>>()?,
        ..Bindings::default()
    };
    let settings = ConsumerSettings {
        exchange_prefix: args.exchange_prefix,
        exchange_durable: args.exchange_durable,
        queue: args.queue,
        queue_type: args.queue_type,
        ..ConsumerSettings::default()
    };
    runtime()?.block_on(async {
        let mut consumer = TealConsumer::connect_to(broker, &settings, &bindings).await?;
        eprintln!("consuming from queue {}", consumer.queue());
        let mut received = 0u64;
        // SIGTERM or ctrl-c ends consuming cleanly (exit 0). A message received but not
        // yet acknowledged then goes with the private queue, as any unread one.
        let mut stop = std::pin::pin!(shutdown_signal());
        while args.count.is_none_or(|n| received < n) {
            let next = consumer.handle_next(|message| {
                let mut out = std::io::stdout().lock();
                let written = out
                    .write_all(&message.body)
                    .and_then(|()| out.write_all(b"\n"))
                    .and_then(|()| out.flush());
                std::future::ready(written)
            });
            let printed = tokio::select! {
                printed = next => printed,
                () = &mut stop => break,
            };
            match printed {
                Ok(Ok(())) => received += 1,
                Ok(Err(e)) => return Err(CliError::Stdout(e)),
                Err(e @ ConsumeError::Malformed { .. }) => eprintln!("skipped: {e}"),
                Err(e) => return Err(e.into()),
            }
        }
        consumer.close().await;
        Ok(ExitCode::SUCCESS)
    })
}
