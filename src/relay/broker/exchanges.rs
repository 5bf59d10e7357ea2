//! TeaL's exchanges as a deployment names and declares them.

use lapin::options::ExchangeDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Channel, ExchangeKind};

use super::{BrokerError, short_string};
use crate::amq::TealExchange;

/// TeaL's exchanges as this deployment names and declares them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Exchanges {
    /// Prefix of the names (TeaL: none), e.g. `teal_`.
    pub(crate) prefix: String,
    /// Declared durable (TeaL: not).
    pub(crate) durable: bool,
}

impl Exchanges {
    /// The full name of `exchange`.
    pub(crate) fn name(&self, exchange: TealExchange) -> String {
        exchange.name(&self.prefix)
    }

    /// Declares each of `which` as a direct exchange with the configured durability.
    ///
    /// # Errors
    /// [`BrokerError::Declare`] (a 406 means it exists with other flags; the channel is
    /// then closed by the broker).
    pub(crate) async fn declare(
        &self,
        channel: &Channel,
        which: &[TealExchange],
    ) -> Result<(), BrokerError> {
        for exchange in which {
            let name = self.name(*exchange);
            channel
                .exchange_declare(
                    short_string(&name)?,
                    ExchangeKind::Direct,
                    ExchangeDeclareOptions {
                        durable: self.durable,
                        ..ExchangeDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(|e| BrokerError::Declare {
                    exchange: name,
                    durable: self.durable,
                    source: e.into(),
                })?;
        }
        Ok(())
    }
}
