//! TeaL's AMQP layout: exchange names (with an optional prefix) and routing keys.

use std::fmt;

/// One of TeaL's direct exchanges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TealExchange {
    /// `callbacks`, routed by callback state.
    Callbacks,
    /// `openid_ciba_callbacks`, routed by CIBA authentication request id.
    OpenIdCibaCallbacks,
    /// `powens_domain_webhooks`, routed by the full Powens domain.
    PowensDomainWebhooks,
}

impl TealExchange {
    /// Every exchange, in TeaL's order.
    pub const ALL: [Self; 3] = [
        Self::Callbacks,
        Self::OpenIdCibaCallbacks,
        Self::PowensDomainWebhooks,
    ];

    /// The name without prefix.
    pub fn base_name(self) -> &'static str {
        match self {
            Self::Callbacks => "callbacks",
            Self::OpenIdCibaCallbacks => "openid_ciba_callbacks",
            Self::PowensDomainWebhooks => "powens_domain_webhooks",
        }
    }

    /// The name with `prefix` in front (TeaL's `AMQP_EXCHANGE_PREFIX`, e.g. `teal_`).
    ///
    /// ```
    /// use powens_webhooks::TealExchange;
    /// assert_eq!(TealExchange::PowensDomainWebhooks.name("teal_"), "teal_powens_domain_webhooks");
    /// assert_eq!(TealExchange::Callbacks.name(""), "callbacks");
    /// ```
    pub fn name(self, prefix: &str) -> String {
        format!("{prefix}{}", self.base_name())
    }

    /// The exchange whose prefixed name is `name`, if any: how a consumer tells which
    /// message type a delivery carries.
    pub fn from_name(name: &str, prefix: &str) -> Option<Self> {
        let base = name.strip_prefix(prefix)?;
        Self::ALL.into_iter().find(|e| e.base_name() == base)
    }
}

impl fmt::Display for TealExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for exchange in TealExchange::ALL {
            for prefix in ["", "teal_", "x."] {
                assert_eq!(
                    TealExchange::from_name(&exchange.name(prefix), prefix),
                    Some(exchange)
                );
            }
        }
        assert_eq!(TealExchange::from_name("callbacks", "teal_"), None);
        assert_eq!(TealExchange::from_name("teal_other", "teal_"), None);
    }
}
