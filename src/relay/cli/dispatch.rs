//! `dispatch`: TeaL's websocket dispatcher.

use std::process::ExitCode;

use super::flags::{DISPATCH, Flags};
use crate::relay::Dispatcher;
use crate::relay::config::RelayConfig;
use crate::relay::logs::init_logging;
use crate::relay::shutdown_signal;

use super::{CliError, runtime};

/// `dispatch`'s flags: every configuration key, as `serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct DispatchArgs {
    #[command(flatten)]
    flags: Flags<DISPATCH>,
}

/// Runs the dispatcher until SIGTERM or ctrl-c.
pub(crate) fn dispatch(args: DispatchArgs) -> Result<ExitCode, CliError> {
    let config = RelayConfig::load_for_dispatch(&args.flags.overrides)?;
    init_logging(config.log_format);
    super::say_data_dir(&config.journal.dir, true);
    runtime()?.block_on(async {
        let dispatcher = Dispatcher::start(&config).await?;
        let addr = dispatcher.local_addr().map_err(CliError::LocalAddr)?;
        tracing::info!(
            %addr,
            listener_url = %config.dispatcher.listener_url,
            "listening on {addr} (websocket at /websocket)"
        );
        dispatcher.run(shutdown_signal()).await;
        Ok(ExitCode::SUCCESS)
    })
}
