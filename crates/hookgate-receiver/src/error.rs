//! The one error type of the crate: what went wrong while reading, verifying,
//! parsing or deduplicating a delivery, phrased so that an integrator knows
//! what to fix.

use hookgate_protocol::signing::standard::SecretProblem;
use hookgate_protocol::signing::SignatureError;

/// Result with [`ReceiverError`] as the error.
pub type Result<T, E = ReceiverError> = std::result::Result<T, E>;

/// Why a delivery was refused, or a receiver could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// A header the scheme needs is absent.
    #[error("missing header `{name}`{}", alternative(.also))]
    MissingHeader {
        /// The header's documented name.
        name: &'static str,
        /// Another spelling that would also have been accepted.
        also: Option<&'static str>,
    },
    /// A header is present but is not visible ASCII text.
    #[error("header `{name}` is not text")]
    HeaderNotText {
        /// The header's documented name.
        name: &'static str,
    },
    /// The signature header is not in the scheme's encoding (not hex, wrong
    /// length, not DER, no entry of the expected version).
    #[error("malformed signature: {reason}")]
    MalformedSignature {
        /// What exactly is wrong.
        reason: String,
    },
    /// The configured public key is unusable (not hex, wrong length, not a
    /// point on the curve, a key of the other Cobo scheme).
    #[error("invalid public key: {reason}")]
    InvalidKey {
        /// What exactly is wrong.
        reason: String,
    },
    /// The configured `whsec_` secret is unusable.
    #[error("invalid webhook secret: {0}")]
    InvalidSecret(#[from] SecretProblem),
    /// The signature is well formed but was not made over these bytes and
    /// this timestamp with the configured key.
    #[error(
        "signature does not match: verify the raw body bytes exactly as received \
         (never re-serialised JSON) and check that the configured key is the sender's"
    )]
    SignatureMismatch,
    /// The timestamp header is not a whole number of the scheme's unit.
    #[error("timestamp `{value}` is not a Unix timestamp")]
    NotATimestamp {
        /// The header value as received.
        value: String,
    },
    /// The timestamp is older than the freshness window allows: a replay,
    /// a long-delayed delivery, or a clock that is far behind.
    #[error("timestamp is {age_ms} ms old, beyond the {tolerance_ms} ms freshness window")]
    TooOld {
        /// How far in the past, in ms.
        age_ms: u64,
        /// The window, in ms.
        tolerance_ms: u64,
    },
    /// The timestamp is further in the future than the window allows: the
    /// sender's or this machine's clock is wrong.
    #[error("timestamp is {ahead_ms} ms in the future, beyond the {tolerance_ms} ms window")]
    TooNew {
        /// How far in the future, in ms.
        ahead_ms: u64,
        /// The window, in ms.
        tolerance_ms: u64,
    },
    /// The body verified but is not the JSON shape expected.
    #[error("body is not a valid {what}: {source}")]
    MalformedBody {
        /// What the body was read as.
        what: &'static str,
        /// The parser's complaint.
        source: serde_json::Error,
    },
    /// The request body could not be read within the size limit.
    #[error("request body is unreadable or larger than the {limit}-byte limit")]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The deduplication store failed.
    #[error("deduplication store failed: {reason}")]
    DedupStore {
        /// The store's complaint.
        reason: String,
    },
}

fn alternative(also: &Option<&'static str>) -> String {
    also.map(|name| format!(" (or `{name}`)"))
        .unwrap_or_default()
}

impl From<SignatureError> for ReceiverError {
    fn from(error: SignatureError) -> Self {
        match error {
            SignatureError::MalformedSignature(reason) => Self::MalformedSignature { reason },
            SignatureError::MalformedKey(reason) => Self::InvalidKey { reason },
            SignatureError::Mismatch => Self::SignatureMismatch,
        }
    }
}

impl ReceiverError {
    /// The HTTP status a receiver should answer with: 401 for anything that
    /// makes the sender untrusted, 400 for a verified but unreadable body,
    /// 413 for an oversized body, 500 for the receiver's own faults.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::MissingHeader { .. }
            | Self::HeaderNotText { .. }
            | Self::MalformedSignature { .. }
            | Self::SignatureMismatch
            | Self::NotATimestamp { .. }
            | Self::TooOld { .. }
            | Self::TooNew { .. } => 401,
            Self::MalformedBody { .. } => 400,
            Self::BodyTooLarge { .. } => 413,
            Self::InvalidKey { .. } | Self::InvalidSecret(_) | Self::DedupStore { .. } => 500,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_header_names_both_spellings() {
        let error = ReceiverError::MissingHeader {
            name: "Biz-Timestamp",
            also: Some("BIZ_TIMESTAMP"),
        };
        assert_eq!(
            error.to_string(),
            "missing header `Biz-Timestamp` (or `BIZ_TIMESTAMP`)"
        );
        assert_eq!(error.http_status(), 401);
    }

    #[test]
    fn configuration_faults_are_not_blamed_on_the_sender() {
        let error = ReceiverError::from(SignatureError::MalformedKey("short".into()));
        assert_eq!(error.http_status(), 500);
    }
}
