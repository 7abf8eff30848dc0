//! Prometheus metrics, rendered in the text format at `/metrics`.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Label of attempt counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `success` or `failure`.
    pub outcome: &'static str,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    /// Event copies accepted by publishes.
    pub published: Counter,
    /// Deliveries that ended `Success`.
    pub delivered: Counter,
    /// Deliveries that ended `Failed`.
    pub failed: Counter,
    /// Attempts by outcome.
    pub attempts: Family<OutcomeLabel, Counter>,
    /// Attempt duration, seconds.
    pub attempt_latency: Histogram,
    /// Pending deliveries, set at each scrape.
    pub backlog: Gauge,
    /// Leased deliveries waiting in memory for a slot of their endpoint,
    /// set at each scrape.
    pub waiting: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("hookgate");
        let published = Counter::default();
        let delivered = Counter::default();
        let failed = Counter::default();
        let attempts = Family::<OutcomeLabel, Counter>::default();
        let buckets = [
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ];
        let attempt_latency = Histogram::new(buckets.into_iter());
        let backlog = Gauge::default();
        let waiting = Gauge::default();

        registry.register(
            "events_published",
            "Event copies accepted",
            published.clone(),
        );
        registry.register(
            "deliveries_succeeded",
            "Deliveries that ended Success",
            delivered.clone(),
        );
        registry.register(
            "deliveries_failed",
            "Deliveries that ended Failed",
            failed.clone(),
        );
        registry.register("attempts", "Delivery attempts by outcome", attempts.clone());
        registry.register(
            "attempt_duration_seconds",
            "Time from send to the end of the response",
            attempt_latency.clone(),
        );
        registry.register(
            "retry_backlog",
            "Deliveries waiting for an attempt",
            backlog.clone(),
        );
        registry.register(
            "attempts_waiting",
            "Deliveries held in memory, waiting for a slot of their endpoint",
            waiting.clone(),
        );

        Self {
            registry,
            published,
            delivered,
            failed,
            attempts,
            attempt_latency,
            backlog,
            waiting,
        }
    }
}

impl Metrics {
    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
