//! Server settings: a TOML file, then `HOOKGATE_*` environment variables over
//! it, then defaults for whatever neither names.
//!
//! Nested keys use a double underscore in the environment:
//! `HOOKGATE_DELIVERY__TIMEOUT_MS=5000` sets `[delivery] timeout_ms`. The
//! documented default file is `hookgate.example.toml` at the repository root.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Everything the server can be told.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address the HTTP API, portal and metrics listen on.
    pub listen: SocketAddr,
    /// Where the signing keys, the generated admin token and (without
    /// `database_url`) the SQLite database live.
    pub data_dir: PathBuf,
    /// PostgreSQL to keep the data in, as `postgres://user:password@host/db`;
    /// several nodes given the same database share the work. Unset: the
    /// embedded SQLite database in `data_dir`, for one node.
    pub database_url: Option<String>,
    /// Most pooled connections a node opens to PostgreSQL (one more, outside
    /// the pool, listens for the other nodes).
    pub database_max_connections: u32,
    /// Bearer token of the producer surface. Generated and stored in the data
    /// directory at first start when unset.
    pub admin_token: Option<String>,
    /// Largest request body the API accepts, in bytes.
    pub max_body_bytes: usize,
    /// `tracing` filter, such as `info` or `hookgate_server=debug`.
    pub log: String,
    /// How deliveries are attempted and retried.
    pub delivery: DeliverySettings,
    /// Which addresses deliveries may dial.
    pub network: NetworkSettings,
}

/// How deliveries are attempted and retried.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliverySettings {
    /// Time allowed for one attempt, connect to last byte read.
    pub timeout_ms: u64,
    /// How long a claimed delivery stays with the node that claimed it. Must
    /// exceed `timeout_ms` by at least [`LEASE_MARGIN`].
    pub lease_ms: u64,
    /// Gaps between webhook attempts; the last gap repeats if attempts remain.
    pub webhook_retry_ms: Vec<u64>,
    /// Webhook attempts in all, first included.
    pub webhook_max_attempts: u32,
    /// Gaps between callback attempts; the last gap repeats.
    pub callback_retry_ms: Vec<u64>,
    /// Callback attempts in all, first included.
    pub callback_max_attempts: u32,
    /// Gaps between WaaS 1.0 transaction notification pushes; the last
    /// repeats.
    pub waas1_notification_retry_ms: Vec<u64>,
    /// WaaS 1.0 transaction notification pushes in all.
    pub waas1_notification_max_attempts: u32,
    /// Random extra delay added to each gap, as a fraction of it (0.1 = up to
    /// 10% later). Jitter only ever delays, so no retry comes early.
    pub jitter: f64,
    /// Longest `Retry-After` (on 429 or 503) that is honoured.
    pub retry_after_cap_ms: u64,
    /// Attempts in flight at once, across all endpoints.
    pub max_in_flight: usize,
    /// Attempts in flight at once to one endpoint, so that one slow endpoint
    /// cannot hold every slot.
    pub max_in_flight_per_endpoint: usize,
    /// Longest wait between two looks for due retries.
    pub poll_interval_ms: u64,
    /// Also send `BIZ_TIMESTAMP` and `BIZ_RESP_SIGNATURE`.
    pub underscore_headers: bool,
    /// Store and acknowledge everything, attempt nothing: for maintenance
    /// of a receiving side, or to build a backlog on purpose. Deliveries
    /// wait, durably, until a start without it.
    pub paused: bool,
}

/// Which addresses deliveries may dial.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkSettings {
    /// Networks opened despite being non-public (loopback, private, ...),
    /// such as `["127.0.0.0/8"]` for local development.
    pub allow_cidrs: Vec<IpNet>,
}

/// The least a lease must outlast the attempt timeout by.
pub const LEASE_MARGIN: Duration = Duration::from_secs(5);

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("hookgate-data"),
            database_url: None,
            database_max_connections: 16,
            admin_token: None,
            max_body_bytes: 1024 * 1024,
            log: "info".into(),
            delivery: DeliverySettings::default(),
            network: NetworkSettings::default(),
        }
    }
}

impl Default for DeliverySettings {
    fn default() -> Self {
        const S: u64 = 1000;
        const MIN: u64 = 60 * S;
        const H: u64 = 60 * MIN;
        Self {
            timeout_ms: 2 * S,
            lease_ms: 30 * S,
            webhook_retry_ms: vec![
                30 * S,
                MIN,
                5 * MIN,
                15 * MIN,
                30 * MIN,
                H,
                2 * H,
                4 * H,
                8 * H,
            ],
            webhook_max_attempts: 10,
            callback_retry_ms: vec![5 * S, 10 * S, 30 * S, MIN, 5 * MIN],
            callback_max_attempts: 30,
            waas1_notification_retry_ms: vec![
                30 * S,
                MIN,
                2 * MIN,
                5 * MIN,
                10 * MIN,
                20 * MIN,
                30 * MIN,
                H,
                2 * H,
                4 * H,
                6 * H,
                12 * H,
                24 * H,
            ],
            waas1_notification_max_attempts: 14,
            jitter: 0.1,
            retry_after_cap_ms: H,
            max_in_flight: 1024,
            max_in_flight_per_endpoint: 128,
            poll_interval_ms: 500,
            underscore_headers: true,
            paused: false,
        }
    }
}

/// The settings' top-level names, as `HOOKGATE_<NAME>` (or
/// `HOOKGATE_<NAME>__<FIELD>`) variables may set them. Any other `HOOKGATE_*`
/// variable (the command line's `HOOKGATE_SERVER`, the test suite's
/// `HOOKGATE_TEST_*`, a typo) is not a setting: it is left out, and
/// [`Settings::unused_environment`] names it so that `serve` can say so.
fn setting_names() -> Vec<String> {
    match serde_json::to_value(Settings::default()) {
        Ok(serde_json::Value::Object(fields)) => fields.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Whether an environment key (after the prefix, lowercased, `__` split into
/// dots) names a setting.
fn names_a_setting(key: &str, names: &[String]) -> bool {
    let top = key.split('.').next().unwrap_or_default();
    names.iter().any(|name| name.eq_ignore_ascii_case(top))
}

impl Settings {
    /// Reads `file` (when given), then the environment, over the defaults.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let names = setting_names();
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(Error::Settings(format!(
                    "settings file {} not found",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        let settings: Settings = figment
            .merge(
                Env::prefixed("HOOKGATE_")
                    .split("__")
                    .filter(move |key| names_a_setting(key.as_str(), &names)),
            )
            .extract()
            .map_err(|e| Error::Settings(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// The `HOOKGATE_*` environment variables that name no setting (other
    /// than `HOOKGATE_CONFIG`), which [`Settings::load`] leaves out.
    pub fn unused_environment() -> Vec<String> {
        let names = setting_names();
        std::env::vars()
            .filter_map(|(name, _)| {
                let key = name
                    .strip_prefix("HOOKGATE_")?
                    .to_ascii_lowercase()
                    .replace("__", ".");
                (key != "config" && !names_a_setting(&key, &names)).then_some(name)
            })
            .collect()
    }

    /// Checks what the types alone cannot.
    pub fn validate(&self) -> Result<()> {
        if let Some(url) = &self.database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(Error::Settings(
                    "database_url must be a PostgreSQL URL (postgres://user@host/database)".into(),
                ));
            }
        }
        if self.database_max_connections < 2 {
            return Err(Error::Settings(
                "database_max_connections must be at least 2".into(),
            ));
        }
        let d = &self.delivery;
        if d.timeout_ms == 0 {
            return Err(Error::Settings(
                "delivery.timeout_ms must be above 0".into(),
            ));
        }
        if Duration::from_millis(d.lease_ms) < Duration::from_millis(d.timeout_ms) + LEASE_MARGIN {
            return Err(Error::Settings(format!(
                "delivery.lease_ms ({}) must exceed delivery.timeout_ms ({}) by at least {} ms, \
                 or a slow attempt could be taken over while still running",
                d.lease_ms,
                d.timeout_ms,
                LEASE_MARGIN.as_millis()
            )));
        }
        if d.webhook_retry_ms.is_empty()
            || d.callback_retry_ms.is_empty()
            || d.waas1_notification_retry_ms.is_empty()
        {
            return Err(Error::Settings(
                "retry schedules must list at least one gap".into(),
            ));
        }
        if d.webhook_max_attempts == 0
            || d.callback_max_attempts == 0
            || d.waas1_notification_max_attempts == 0
        {
            return Err(Error::Settings("max attempts must be at least 1".into()));
        }
        if !(0.0..=1.0).contains(&d.jitter) {
            return Err(Error::Settings(
                "delivery.jitter must be between 0 and 1".into(),
            ));
        }
        if d.max_in_flight == 0 || d.max_in_flight_per_endpoint == 0 {
            return Err(Error::Settings(
                "in-flight limits must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Settings::default().validate().unwrap();
    }

    #[test]
    fn short_lease_is_refused() {
        let mut settings = Settings::default();
        settings.delivery.lease_ms = settings.delivery.timeout_ms + 1;
        let message = settings.validate().unwrap_err().to_string();
        assert!(message.contains("lease_ms"), "{message}");
    }
}
