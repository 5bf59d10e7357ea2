//! `dispatch`: TeaL's websocket dispatcher.

use std::process::ExitCode;

use crate::relay::Dispatcher;
use crate::relay::config::{Overrides, RelayConfig};
use crate::relay::logs::init_logging;
use crate::relay::shutdown_signal;

use super::{Fatal, runtime};

/// `dispatch`'s flags: every configuration key, as `serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct DispatchArgs {
    #[command(flatten)]
    overrides: Overrides,
}

/// Runs the dispatcher until SIGTERM or ctrl-c.
pub(crate) fn dispatch(args: DispatchArgs) -> Result<ExitCode, Fatal> {
    let config = RelayConfig::load_for_dispatch(&args.overrides).map_err(|e| e.to_string())?;
    init_logging(config.log_format);
    runtime()?.block_on(async {
        let dispatcher = Dispatcher::start(&config)
            .await
            .map_err(|e| e.to_string())?;
        let addr = dispatcher.local_addr().map_err(|e| e.to_string())?;
        tracing::info!(
            %addr,
            listener_url = %config.dispatcher.listener_url,
            "listening on {addr} (websocket at /websocket)"
        );
        dispatcher.run(shutdown_signal()).await;
        Ok(ExitCode::SUCCESS)
    })
}
