//! `serve`: the relay.

use std::process::ExitCode;

use super::flags::{Flags, SERVE};
use crate::relay::config::RelayConfig;
use crate::relay::logs::init_logging;
use crate::relay::{Relay, shutdown_signal};

use super::{CliError, runtime};

/// `serve`'s flags: every configuration key.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    flags: Flags<SERVE>,
}

/// Runs the relay until SIGTERM or ctrl-c.
pub(crate) fn serve(args: ServeArgs) -> Result<ExitCode, CliError> {
    let config = RelayConfig::load(&args.flags.overrides)?;
    init_logging(config.log_format);
    super::say_data_dir(&config.journal.dir, true);
    runtime()?.block_on(async {
        let relay = Relay::start(&config).await?;
        let addr = relay.local_addr().map_err(CliError::LocalAddr)?;
        tracing::info!(
            %addr,
            domains = config.webhook.webhooks.domains().len(),
            public_path_prefix = %config.webhook.webhooks.public_path_prefix(),
            "listening on {addr}"
        );
        if let Some(console) = relay.console_addr().map_err(CliError::LocalAddr)? {
            tracing::info!(%console, "the console is at http://{console}/ (user anonymous)");
        }
        relay.run(shutdown_signal()).await;
        Ok(ExitCode::SUCCESS)
    })
}
