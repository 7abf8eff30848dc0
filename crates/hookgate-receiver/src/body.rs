//! Parsing a verified body into its typed model.
//!
//! Parse only after verifying: the signature covers the raw bytes, and these
//! functions never see a body the caller has not checked.

use serde::de::DeserializeOwned;

use crate::error::{ReceiverError, Result};
use crate::model::{Transaction, V1Callback, WebhookEvent};

/// Reads a verified body as any JSON model.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|source| ReceiverError::MalformedBody {
        what: short_type_name::<T>(),
        source,
    })
}

/// Reads a verified WaaS 2.0 webhook event.
pub fn parse_event(body: &[u8]) -> Result<WebhookEvent> {
    parse(body)
}

/// Reads a verified WaaS 2.0 callback message (a bare `Transaction`).
pub fn parse_callback(body: &[u8]) -> Result<Transaction> {
    parse(body)
}

/// Reads a verified WaaS 1.0 callback, custodial or MPC.
pub fn parse_v1(body: &[u8]) -> Result<V1Callback> {
    parse(body)
}

fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_what_was_expected() {
        let error = parse_event(b"{\"event_id\":1}").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("body is not a valid WebhookEvent"),
            "{error}"
        );
        assert_eq!(error.http_status(), 400);
    }
}
