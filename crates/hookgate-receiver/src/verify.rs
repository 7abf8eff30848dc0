//! Verifying a delivery: find the headers, check the timestamp's freshness
//! (when a window is set), then check the signature over the raw body bytes.
//!
//! One [`Verifier`] holds one scheme and its key:
//!
//! | scheme | key | headers | timestamp |
//! |---|---|---|---|
//! | Cobo WaaS 2.0 | Ed25519, 64 hex | `Biz-Timestamp`, `Biz-Resp-Signature` | ms |
//! | Cobo WaaS 1.0 | secp256k1, 66 hex | the same | ms |
//! | Standard Webhooks | `whsec_` or `whpk_` | `webhook-id`, `-timestamp`, `-signature` | s |
//!
//! The Cobo headers are also accepted in their underscore spellings
//! (`BIZ_TIMESTAMP`, `BIZ_RESP_SIGNATURE`), and every name ignores case.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hookgate_protocol::headers::{
    BIZ_RESP_SIGNATURE, BIZ_RESP_SIGNATURE_UNDERSCORE, BIZ_TIMESTAMP, BIZ_TIMESTAMP_UNDERSCORE,
};
use hookgate_protocol::signing::standard::{self, Secret};
use hookgate_protocol::signing::{cobo_v1, cobo_v2};
use serde::de::DeserializeOwned;

use crate::error::{ReceiverError, Result};
use crate::freshness::{self, TimestampUnit, STANDARD_WEBHOOKS_DEFAULT};
use crate::headers::{require, HeaderSource};

const COBO_TIMESTAMP: &[&str] = &[BIZ_TIMESTAMP, BIZ_TIMESTAMP_UNDERSCORE];
const COBO_SIGNATURE: &[&str] = &[BIZ_RESP_SIGNATURE, BIZ_RESP_SIGNATURE_UNDERSCORE];

/// Which signature scheme a delivery uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Cobo WaaS 2.0: Ed25519 over the double SHA-256 of `body|ms`.
    CoboV2,
    /// Cobo WaaS 1.0: secp256k1 ECDSA (DER hex) over the same digest.
    CoboV1,
    /// Standard Webhooks: `v1` HMAC-SHA256 or `v1a` Ed25519 over
    /// `id.seconds.body`.
    StandardWebhooks,
}

impl Scheme {
    /// The unit of the scheme's timestamp header.
    pub fn timestamp_unit(self) -> TimestampUnit {
        match self {
            Scheme::CoboV2 | Scheme::CoboV1 => TimestampUnit::Milliseconds,
            Scheme::StandardWebhooks => TimestampUnit::Seconds,
        }
    }
}

#[derive(Clone, Debug)]
enum Key {
    CoboV2(ed25519_dalek::VerifyingKey),
    CoboV1(k256::ecdsa::VerifyingKey),
    Standard(standard::VerifyingKey),
}

/// Where "now" comes from; replaceable so that tests can fix the time.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// What a successful verification vouches for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The scheme that checked out.
    pub scheme: Scheme,
    /// The signed timestamp, as sent.
    pub timestamp: String,
    /// The `webhook-id` (Standard Webhooks only).
    pub webhook_id: Option<String>,
}

/// Checks deliveries of one scheme against one key.
#[derive(Clone)]
pub struct Verifier {
    key: Key,
    freshness: Option<Duration>,
    clock: Clock,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("scheme", &self.scheme())
            .field("freshness", &self.freshness)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for Cobo WaaS 2.0 deliveries, given the server's Ed25519
    /// public key as 64 hex characters. No freshness window by default.
    pub fn cobo_v2(public_key_hex: &str) -> Result<Self> {
        let hex = public_key_hex.trim();
        if hex.len() == 66 && (hex.starts_with("02") || hex.starts_with("03")) {
            return Err(ReceiverError::InvalidKey {
                reason: "this is a compressed secp256k1 key (WaaS 1.0); use Verifier::cobo_v1, \
                         or give the 64-hex Ed25519 key of the 2.0 server"
                    .into(),
            });
        }
        Ok(Self::new(
            Key::CoboV2(cobo_v2::parse_public_key(hex)?),
            None,
        ))
    }

    /// A verifier for Cobo WaaS 1.0 callbacks, given the server's secp256k1
    /// public key as 66 hex characters. No freshness window by default.
    pub fn cobo_v1(public_key_hex: &str) -> Result<Self> {
        let hex = public_key_hex.trim();
        if hex.len() == 64 {
            return Err(ReceiverError::InvalidKey {
                reason: "a 64-hex key is an Ed25519 key (WaaS 2.0); use Verifier::cobo_v2, \
                         or give the 66-hex compressed secp256k1 key of the 1.0 server"
                    .into(),
            });
        }
        Ok(Self::new(
            Key::CoboV1(cobo_v1::parse_public_key(hex)?),
            None,
        ))
    }

    /// A verifier for Standard Webhooks `v1` signatures, given the endpoint's
    /// `whsec_...` secret. Freshness window: five minutes.
    pub fn standard_secret(secret: &str) -> Result<Self> {
        let key = standard::VerifyingKey::Secret(Secret::parse(secret)?);
        Ok(Self::new(
            Key::Standard(key),
            Some(STANDARD_WEBHOOKS_DEFAULT),
        ))
    }

    /// A verifier for Standard Webhooks `v1a` signatures, given the sender's
    /// `whpk_...` Ed25519 public key. Freshness window: five minutes.
    pub fn standard_public_key(public_key: &str) -> Result<Self> {
        let key = standard::VerifyingKey::Ed25519(standard::parse_public_key(public_key)?);
        Ok(Self::new(
            Key::Standard(key),
            Some(STANDARD_WEBHOOKS_DEFAULT),
        ))
    }

    fn new(key: Key, freshness: Option<Duration>) -> Self {
        Self {
            key,
            freshness,
            clock: Arc::new(SystemTime::now),
        }
    }

    /// Refuses timestamps further than `window` from now, in either
    /// direction.
    pub fn with_freshness(mut self, window: Duration) -> Self {
        self.freshness = Some(window);
        self
    }

    /// Accepts any timestamp the signature covers.
    pub fn without_freshness(mut self) -> Self {
        self.freshness = None;
        self
    }

    /// Takes "now" from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The scheme this verifier checks.
    pub fn scheme(&self) -> Scheme {
        match self.key {
            Key::CoboV2(_) => Scheme::CoboV2,
            Key::CoboV1(_) => Scheme::CoboV1,
            Key::Standard(_) => Scheme::StandardWebhooks,
        }
    }

    /// The freshness window, if one is enforced.
    pub fn freshness(&self) -> Option<Duration> {
        self.freshness
    }

    /// Verifies `body`, exactly as received, against the request's headers,
    /// enforcing the freshness window if one is set.
    pub fn verify<H: HeaderSource + ?Sized>(&self, headers: &H, body: &[u8]) -> Result<Verified> {
        self.verify_with(headers, body, self.freshness)
    }

    /// Verifies like [`Verifier::verify`] but accepts any timestamp: for
    /// replaying stored deliveries, never for live traffic.
    pub fn verify_ignoring_timestamp<H: HeaderSource + ?Sized>(
        &self,
        headers: &H,
        body: &[u8],
    ) -> Result<Verified> {
        self.verify_with(headers, body, None)
    }

    /// Verifies, then parses the body as `T` (such as
    /// [`WebhookEvent`](crate::model::WebhookEvent)).
    pub fn verify_json<T: DeserializeOwned, H: HeaderSource + ?Sized>(
        &self,
        headers: &H,
        body: &[u8],
    ) -> Result<(T, Verified)> {
        let verified = self.verify(headers, body)?;
        Ok((crate::body::parse(body)?, verified))
    }

    fn verify_with<H: HeaderSource + ?Sized>(
        &self,
        headers: &H,
        body: &[u8],
        freshness: Option<Duration>,
    ) -> Result<Verified> {
        let (timestamp, signature, webhook_id) = self.read_headers(headers)?;

        if let Some(window) = freshness {
            freshness::check(
                timestamp,
                self.scheme().timestamp_unit(),
                (self.clock)(),
                window,
            )?;
        }

        match &self.key {
            Key::CoboV2(key) => cobo_v2::verify(key, body, timestamp, signature)?,
            Key::CoboV1(key) => cobo_v1::verify(key, body, timestamp, signature)?,
            Key::Standard(key) => {
                let id = webhook_id.unwrap_or_default();
                standard::verify(key, id, timestamp, body, signature)?
            }
        }

        Ok(Verified {
            scheme: self.scheme(),
            timestamp: timestamp.to_owned(),
            webhook_id: webhook_id.map(str::to_owned),
        })
    }

    fn read_headers<'h, H: HeaderSource + ?Sized>(
        &self,
        headers: &'h H,
    ) -> Result<(&'h str, &'h str, Option<&'h str>)> {
        match self.key {
            Key::CoboV2(_) | Key::CoboV1(_) => {
                let timestamp = require(headers, COBO_TIMESTAMP)?;
                let signature = require(headers, COBO_SIGNATURE)?;
                Ok((timestamp, signature, None))
            }
            Key::Standard(_) => {
                let id = require(headers, &[standard::WEBHOOK_ID])?;
                let timestamp = require(headers, &[standard::WEBHOOK_TIMESTAMP])?;
                let signature = require(headers, &[standard::WEBHOOK_SIGNATURE])?;
                Ok((timestamp, signature, Some(id)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn at_ms(ms: u64) -> impl Fn() -> SystemTime + Send + Sync + 'static {
        move || UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn cobo_v2_round_trip_with_either_header_spelling() {
        let signer = cobo_v2::Signer::generate();
        let verifier = Verifier::cobo_v2(&signer.public_key_hex()).unwrap();
        let signature = signer.sign(b"{}", "1700000000000");

        let dashed = [
            ("biz-timestamp", "1700000000000"),
            ("BIZ-RESP-SIGNATURE", &signature),
        ];
        let underscored = [
            ("BIZ_TIMESTAMP", "1700000000000"),
            ("biz_resp_signature", &signature),
        ];
        assert_eq!(
            verifier.verify(&dashed, b"{}").unwrap().scheme,
            Scheme::CoboV2
        );
        assert!(verifier.verify(&underscored, b"{}").is_ok());
    }

    #[test]
    fn cobo_freshness_is_off_by_default_and_can_be_enabled() {
        let signer = cobo_v2::Signer::generate();
        let headers = [
            ("Biz-Timestamp", "1000"),
            ("Biz-Resp-Signature", &signer.sign(b"x", "1000")),
        ];
        let verifier = Verifier::cobo_v2(&signer.public_key_hex()).unwrap();
        assert_eq!(verifier.freshness(), None);
        assert!(verifier.verify(&headers, b"x").is_ok());

        let strict = verifier
            .with_freshness(Duration::from_secs(60))
            .with_clock(at_ms(1_000_000));
        assert!(matches!(
            strict.verify(&headers, b"x"),
            Err(ReceiverError::TooOld { .. })
        ));
        assert!(strict.verify_ignoring_timestamp(&headers, b"x").is_ok());
    }

    #[test]
    fn standard_freshness_is_on_by_default() {
        let secret = Secret::generate();
        let signature = secret.sign("msg_1", "1700000000", b"{}");
        let headers = [
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", "1700000000"),
            ("webhook-signature", signature.as_str()),
        ];
        let verifier = Verifier::standard_secret(&secret.to_whsec()).unwrap();
        assert_eq!(verifier.freshness(), Some(STANDARD_WEBHOOKS_DEFAULT));

        let later = verifier.clone().with_clock(at_ms(1_700_000_301_000));
        assert!(matches!(
            later.verify(&headers, b"{}"),
            Err(ReceiverError::TooOld { .. })
        ));
        let earlier = verifier.clone().with_clock(at_ms(1_699_999_699_000));
        assert!(matches!(
            earlier.verify(&headers, b"{}"),
            Err(ReceiverError::TooNew { .. })
        ));
        let close = verifier.with_clock(at_ms(1_700_000_299_000));
        let verified = close.verify(&headers, b"{}").unwrap();
        assert_eq!(verified.webhook_id.as_deref(), Some("msg_1"));
    }

    #[test]
    fn keys_of_the_other_cobo_scheme_are_named() {
        let v1_key = cobo_v1::Signer::generate().public_key_hex();
        let v2_key = cobo_v2::Signer::generate().public_key_hex();
        let message = Verifier::cobo_v2(&v1_key).unwrap_err().to_string();
        assert!(message.contains("cobo_v1"), "{message}");
        let message = Verifier::cobo_v1(&v2_key).unwrap_err().to_string();
        assert!(message.contains("cobo_v2"), "{message}");
        assert!(matches!(
            Verifier::cobo_v2("abcd"),
            Err(ReceiverError::InvalidKey { .. })
        ));
    }

    #[test]
    fn a_pasted_signature_is_not_taken_for_a_secret() {
        let error = Verifier::standard_secret("v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=");
        assert!(matches!(
            error,
            Err(ReceiverError::InvalidSecret(
                standard::SecretProblem::LooksLikeSignature
            ))
        ));
    }

    #[test]
    fn missing_headers_are_named() {
        let verifier = Verifier::standard_secret(&Secret::generate().to_whsec()).unwrap();
        let headers = [("webhook-id", "m"), ("webhook-signature", "v1,AAAA")];
        assert!(matches!(
            verifier.verify(&headers, b"{}"),
            Err(ReceiverError::MissingHeader {
                name: "webhook-timestamp",
                also: None
            })
        ));
    }
}
