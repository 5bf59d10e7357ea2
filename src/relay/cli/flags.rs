//! The configuration flags of each subcommand: `--config`, and a flag and a
//! `POWENS_RELAY_*` variable for every key it reads, made from
//! [`KEYS`](crate::relay::config::keys::KEYS). `--help` shows only those. The flag of a
//! key the subcommand does not read is refused, saying which one reads it, rather than
//! accepted and ignored; the variables of other subcommands are left alone (one
//! environment often serves `serve` and `dispatch`).

use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{Arg, ArgAction, ArgMatches, value_parser};

use crate::relay::config::Overrides;
use crate::relay::config::keys::{self, KEYS, Key};
use crate::relay::config::value::Kind;

/// `serve` (and the relay's configuration as a whole).
pub(crate) const SERVE: u8 = 0;
/// `dispatch`.
pub(crate) const DISPATCH: u8 = 1;
/// `callback create` and `callback show`: the callback store only.
pub(crate) const STORE: u8 = 2;
/// `journal …`: the journal, and the broker to publish to.
pub(crate) const JOURNAL: u8 = 3;

/// The subcommand's name, for messages.
fn name(reader: u8) -> &'static str {
    match reader {
        SERVE => "serve",
        DISPATCH => "dispatch",
        JOURNAL => "journal",
        _ => "callback",
    }
}

/// Whether subcommand `reader` reads `key`.
pub(crate) fn reads(reader: u8, key: &Key) -> bool {
    match reader {
        // serve hosts the dispatcher on its own address: dispatcher_listen is dispatch's.
        SERVE => key.name != keys::DISPATCHER_LISTEN.name,
        DISPATCH => [
            keys::AMQP_URL,
            keys::EXCHANGE_PREFIX,
            keys::EXCHANGE_DURABLE,
            keys::PUBLIC_PATH_PREFIX,
            keys::CONNECT_TIMEOUT_SECS,
            keys::RECONNECT_MAX_DELAY_SECS,
            keys::MAX_CONNECTIONS,
            keys::READ_TIMEOUT_SECS,
            keys::MAX_HEADER_BYTES,
            keys::CALLBACK_STORE,
            keys::DATA_DIR,
            keys::PUBLIC_URL,
            keys::DISPATCHER_LISTEN,
            keys::LISTENER_URL,
            keys::DISPATCHER_PASSWORD,
            keys::DISPATCHER_MAX_CLIENTS,
            keys::DISPATCHER_QUEUE_LEN,
            keys::DISPATCHER_PING_SECS,
            keys::LOG_FORMAT,
        ]
        .iter()
        .any(|k| k.name == key.name),
        JOURNAL => [
            keys::AMQP_URL,
            keys::EXCHANGE_PREFIX,
            keys::EXCHANGE_DURABLE,
            keys::CONNECT_TIMEOUT_SECS,
            keys::RECONNECT_MAX_DELAY_SECS,
            keys::PUBLISH_TIMEOUT_SECS,
            keys::UNROUTABLE,
            keys::DATA_DIR,
            keys::JOURNAL_MAX_BYTES,
        ]
        .iter()
        .any(|k| k.name == key.name),
        _ => [keys::CALLBACK_STORE, keys::DATA_DIR]
            .iter()
            .any(|k| k.name == key.name),
    }
}

/// Why `flag` (of `key`, or `--domain` for `None`) is refused by `reader`.
fn foreign(reader: u8, flag: &str, key: Option<&Key>) -> String {
    let hint = match (reader, key.map(|k| k.name)) {
        (DISPATCH, Some("listen")) => {
            "dispatch listens on --dispatcher-listen (POWENS_RELAY_DISPATCHER_LISTEN)".to_owned()
        }
        (SERVE, Some("dispatcher_listen")) => {
            "serve hosts the dispatcher (--dispatcher true) on its own --listen address; \
             --dispatcher-listen is the address of powens-relay dispatch"
                .to_owned()
        }
        (_, None) => "domains are received by serve".to_owned(),
        (_, Some(_)) => {
            let owner = key.map_or(SERVE, |k| if reads(SERVE, k) { SERVE } else { DISPATCH });
            format!("it is a setting of powens-relay {}", name(owner))
        }
    };
    format!(
        "{flag} is not read by powens-relay {}: {hint}",
        name(reader)
    )
}

/// The configuration flags of subcommand `READER`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Flags<const READER: u8> {
    pub(crate) overrides: Overrides,
}

impl<const READER: u8> clap::Args for Flags<READER> {
    fn augment_args(command: clap::Command) -> clap::Command {
        let command = command.arg(
            Arg::new("config")
                .long("config")
                .env("POWENS_RELAY_CONFIG")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .help(
                    "TOML configuration file (see relay.example.toml). Without it, the flags \
                     and environment variables are the whole configuration.",
                ),
        );
        let command = KEYS.iter().fold(command, |command, key| {
            command.arg(match reads(READER, key) {
                true => flag(key),
                // Taken only to be refused (no variable: another subcommand's is fine).
                false => Arg::new(key.name)
                    .long(key.flag().trim_start_matches('-').to_owned())
                    .hide(true),
            })
        });
        let domain = Arg::new("domain")
            .long("domain")
            .value_name("DOMAIN=SECRETS")
            .action(ArgAction::Append);
        match READER {
            SERVE => command.arg(domain.env("POWENS_RELAY_DOMAINS").value_delimiter(';').help(
                "A domain, replacing the file's entry of the same name: DOMAIN=REF[,REF...] \
                 (mode verify; REF is env:NAME or file:PATH) or DOMAIN=forward. Repeatable; in \
                 the environment variable, separate domains with ';'.",
            )),
            // The journal's commands have a --domain of their own (a filter).
            JOURNAL => command,
            _ => command.arg(domain.hide(true)),
        }
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

/// The flag of `key`. Its value is taken as text and checked with the file's values,
/// never by clap, whose errors quote the value: it may be a secret typed in the wrong
/// place.
fn flag(key: &Key) -> Arg {
    let mut help = key.help.to_owned();
    match key.kind {
        Kind::Bool => help.push_str(" [possible values: true, false]"),
        Kind::Choice(words) => help.push_str(&format!(" [possible values: {}]", words.join(", "))),
        _ => {}
    }
    match key.default {
        Some("") => help.push_str(" [default: none]"),
        Some(default) => help.push_str(&format!(" [default: {default}]")),
        None => {}
    }
    let arg = Arg::new(key.name)
        .long(key.flag().trim_start_matches('-').to_owned())
        .value_name(key.value_name)
        .help(help);
    match key.kind {
        Kind::SecretRef => arg,
        Kind::Credential => arg.env(key.env()).hide_env_values(true),
        _ => arg.env(key.env()),
    }
}

impl<const READER: u8> clap::FromArgMatches for Flags<READER> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = Self::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        let refuse = |message: String| clap::Error::raw(ErrorKind::ArgumentConflict, message);
        let mut overrides = std::mem::take(&mut self.overrides);
        if let Some(path) = matches.get_one::<PathBuf>("config") {
            overrides = overrides.with_config(path);
        }
        for key in KEYS {
            if let Some(text) = matches.get_one::<String>(key.name) {
                if !reads(READER, key) {
                    return Err(refuse(format!(
                        "{}\n",
                        foreign(READER, &key.flag(), Some(key))
                    )));
                }
                overrides = overrides.with(key.name, text);
            }
        }
        if READER == JOURNAL {
            self.overrides = overrides;
            return Ok(());
        }
        if READER == JOURNAL {
            self.overrides = overrides;
            return Ok(());
        }
        if let Some(domains) = matches.get_many::<String>("domain") {
            if READER != SERVE {
                return Err(refuse(format!("{}\n", foreign(READER, "--domain", None))));
            }
            overrides = domains.fold(overrides, |o, d| o.with_domain(d.clone()));
        }
        self.overrides = overrides;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_read_by_serve_or_dispatch_and_the_store_commands_read_the_store() {
        for key in KEYS {
            assert!(reads(SERVE, key) || reads(DISPATCH, key), "{}", key.name);
        }
        let store: Vec<_> = KEYS
            .iter()
            .filter(|k| reads(STORE, k))
            .map(|k| k.name)
            .collect();
        assert_eq!(store, ["callback_store", "data_dir"]);
        assert!(!reads(DISPATCH, keys::LISTEN) && !reads(SERVE, keys::DISPATCHER_LISTEN));
    }
}
