//! The dispatcher's metrics, registered beside the relay's: `powens_dispatcher_*`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TypeLabel {
    r#type: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabel {
    reason: &'static str,
}

/// Connections, messages pushed by type, closes by reason, refused handshakes.
#[derive(Debug, Default)]
pub(crate) struct DispatcherMetrics {
    pub(crate) connections: Gauge,
    pushed: Family<TypeLabel, Counter>,
    closes: Family<ReasonLabel, Counter>,
    refused: Family<ReasonLabel, Counter>,
    unwanted: Counter,
}

impl DispatcherMetrics {
    /// Registers the metrics in `registry` (which should have no prefix).
    pub(crate) fn register(&self, registry: &mut Registry) {
        let registry = registry.sub_registry_with_prefix("powens_dispatcher");
        registry.register(
            "connections",
            "Websocket clients connected",
            self.connections.clone(),
        );
        registry.register(
            "messages_pushed",
            "Messages written to websocket clients, by type",
            self.pushed.clone(),
        );
        registry.register(
            "closes",
            "Websocket connections ended, by reason",
            self.closes.clone(),
        );
        registry.register(
            "handshakes_refused",
            "Websocket handshakes refused, by reason",
            self.refused.clone(),
        );
        registry.register(
            "messages_unwanted",
            "Messages received that no client of this process was registered to",
            self.unwanted.clone(),
        );
    }

    pub(crate) fn pushed(&self, kind: &'static str) {
        self.pushed.get_or_create(&TypeLabel { r#type: kind }).inc();
    }

    pub(crate) fn closed(&self, reason: &'static str) {
        self.closes.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub(crate) fn refused(&self, reason: &'static str) {
        self.refused.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub(crate) fn unwanted(&self) {
        self.unwanted.inc();
    }
}
