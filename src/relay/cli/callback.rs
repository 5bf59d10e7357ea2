//! `callback create` and `callback show`: the callback store, for operators and tests.

use std::process::ExitCode;

use super::flags::{Flags, STORE};
use crate::relay::callback::store::{BackendError, Lookup, StoreError, StoreSpec};
use crate::relay::callback::{CallbackRecord, CallbackState, check_lifetime};
use crate::relay::config::RelayConfig;
use chrono::{TimeDelta, Utc};
use url::Url;

use super::{CliError, print_out, runtime};

/// `callback`'s subcommands; the store comes from the same configuration as `serve`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum CallbackCommand {
    /// Create (or replace) the callback of a state, as a client does on the dispatcher.
    Create {
        /// The state the browser will bring back.
        #[arg(long)]
        state: String,
        /// Seconds until it expires: at least 10, at most 7 days (TeaL's limits).
        #[arg(long, value_name = "SECS")]
        expires_in: u64,
        /// Where to send the browser once the callback is published (302); without
        /// it, the browser gets 204.
        #[arg(long, value_name = "URL")]
        final_redirect_url: Option<String>,
        /// Show the fragment page first, so that the URL's fragment is published too.
        #[arg(long)]
        with_fragment: bool,
        #[command(flatten)]
        flags: Flags<STORE>,
    },
    /// Print the callback of a state as TeaL's JSON (exit 1 if there is none).
    Show {
        /// The state.
        #[arg(long)]
        state: String,
        #[command(flatten)]
        flags: Flags<STORE>,
    },
}

/// Runs a `callback` subcommand.
pub(crate) fn callback(command: CallbackCommand) -> Result<ExitCode, CliError> {
    match command {
        CallbackCommand::Create {
            state,
            expires_in,
            final_redirect_url,
            with_fragment,
            flags,
        } => {
            let state = CallbackState::parse(&state).map_err(CliError::State)?;
            let final_redirect_url = final_redirect_url
                .map(|u| {
                    Url::parse(&u)
                        .ok()
                        .filter(|u| matches!(u.scheme(), "http" | "https"))
                        .ok_or(CliError::RedirectUrl)
                })
                .transpose()?;
            let now = Utc::now();
            let expires_at = i64::try_from(expires_in)
                .ok()
                .and_then(TimeDelta::try_seconds)
                .and_then(|d| now.checked_add_signed(d))
                .ok_or(CliError::ExpiresInTooLarge)?;
            check_lifetime(expires_at, now).map_err(CliError::ExpiresIn)?;
            let record = CallbackRecord::new(expires_at, final_redirect_url, with_fragment);
            let spec = RelayConfig::load_store(&flags.overrides)?;
            say_store_dir(&spec);
            runtime()?.block_on(async {
                let store = spec.open().await?;
                store.put(&state, &record).await?;
                print_out(&format!("{}\n", record_json(&record)?))?;
                Ok(ExitCode::SUCCESS)
            })
        }
        CallbackCommand::Show { state, flags } => {
            let state = CallbackState::parse(&state).map_err(CliError::State)?;
            let spec = RelayConfig::load_store(&flags.overrides)?;
            say_store_dir(&spec);
            runtime()?.block_on(async {
                let store = spec.open().await?;
                match store.read(&state, Lookup::get(Utc::now())).await? {
                    Some(record) => {
                        print_out(&format!("{}\n", record_json(&record)?))?;
                        Ok(ExitCode::SUCCESS)
                    }
                    None => {
                        eprintln!("no callback for this state (unknown or expired)");
                        Ok(ExitCode::FAILURE)
                    }
                }
            })
        }
    }
}

/// The record as TeaL's JSON.
fn record_json(record: &CallbackRecord) -> Result<String, CliError> {
    record
        .to_json()
        .map_err(|e| CliError::Store(StoreError::Backend(BackendError::new(e))))
}

/// Where the embedded store lives, said on standard error (a Redis store: nothing).
fn say_store_dir(spec: &StoreSpec) {
    if let StoreSpec::Embedded(dir) = spec {
        super::say_data_dir(dir, false);
    }
}
