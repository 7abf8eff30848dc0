//! Standard Webhooks signatures: the scheme of the open Standard Webhooks
//! specification, offered beside the Cobo schemes for receivers that already
//! speak it.
//!
//! Three headers travel with a message: `webhook-id` (a unique message id),
//! `webhook-timestamp` (Unix **seconds**) and `webhook-signature`. What is
//! signed is the id, a `.`, the timestamp, a `.`, then the exact body bytes.
//! The signature header holds one or more space-separated entries of the form
//! `<version>,<base64 signature>`:
//!
//! - `v1`: HMAC-SHA256 with a shared secret, written `whsec_<base64 key>`;
//! - `v1a`: Ed25519 (pure) with the sender's private key; the receiver holds
//!   the public key, written `whpk_<base64 32 bytes>`.
//!
//! Several entries let a sender rotate keys: a message verifies when any
//! entry of the receiver's version matches. Entries of versions the receiver
//! does not use are ignored, never an error.
//!
//! This module is pure: the freshness of the timestamp is the receiver's
//! business, not the signature's.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey};
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore as _;
use sha2::Sha256;

use super::SignatureError;

/// Header carrying the unique message id.
pub const WEBHOOK_ID: &str = "webhook-id";
/// Header carrying the send time, Unix seconds as decimal text.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying the space-separated `<version>,<base64>` signatures.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// Prefix of a shared HMAC secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Prefix of an Ed25519 public key.
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";
/// Prefix of an Ed25519 private key (the 32-byte seed).
pub const PRIVATE_KEY_PREFIX: &str = "whsk_";

/// Version tag of HMAC-SHA256 signatures.
pub const VERSION_HMAC: &str = "v1";
/// Version tag of Ed25519 signatures.
pub const VERSION_ED25519: &str = "v1a";

/// The shortest HMAC secret accepted, in bytes. Anything shorter is too easy
/// to guess; the specification recommends 24 to 64 bytes.
pub const MIN_SECRET_LEN: usize = 16;

/// Why a text is not a usable `whsec_` secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretProblem {
    /// Nothing was given, or only the `whsec_` prefix.
    Empty,
    /// The part after `whsec_` is not standard base64.
    NotBase64,
    /// The decoded secret is shorter than [`MIN_SECRET_LEN`] bytes.
    TooShort {
        /// Decoded length in bytes.
        len: usize,
    },
    /// The text starts like a signature (`v1,`, `v1a,`): a signature header
    /// was pasted where the secret belongs.
    LooksLikeSignature,
    /// The text is an Ed25519 key (`whpk_`, `whsk_`), not an HMAC secret.
    LooksLikeEd25519Key,
}

impl std::fmt::Display for SecretProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretProblem::Empty => f.write_str("the webhook secret is empty"),
            SecretProblem::NotBase64 => {
                f.write_str("the webhook secret is not base64 after its `whsec_` prefix")
            }
            SecretProblem::TooShort { len } => write!(
                f,
                "the webhook secret decodes to {len} bytes; at least {MIN_SECRET_LEN} are needed"
            ),
            SecretProblem::LooksLikeSignature => f.write_str(
                "the webhook secret looks like a signature (`v1,...`); \
                 use the `whsec_...` secret of the endpoint instead",
            ),
            SecretProblem::LooksLikeEd25519Key => f.write_str(
                "the webhook secret is an Ed25519 key (`whpk_`/`whsk_`); \
                 configure it as a public key, not as an HMAC secret",
            ),
        }
    }
}

impl std::error::Error for SecretProblem {}

impl From<SecretProblem> for SignatureError {
    fn from(problem: SecretProblem) -> Self {
        SignatureError::MalformedKey(problem.to_string())
    }
}

/// A shared HMAC-SHA256 secret (`v1` signatures).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    key: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("standard::Secret")
            .field("len", &self.key.len())
            .finish_non_exhaustive()
    }
}

impl Secret {
    /// A fresh random 32-byte secret.
    pub fn generate() -> Self {
        let mut key = vec![0u8; 32];
        OsRng.fill_bytes(&mut key);
        Self { key }
    }

    /// Parses `whsec_<base64>`; the prefix may be left out. Surrounding
    /// whitespace (a trailing newline from a file) is ignored.
    pub fn parse(text: &str) -> Result<Self, SecretProblem> {
        let text = text.trim();
        if text.starts_with("v1,") || text.starts_with("v1a,") {
            return Err(SecretProblem::LooksLikeSignature);
        }
        if text.starts_with(PUBLIC_KEY_PREFIX) || text.starts_with(PRIVATE_KEY_PREFIX) {
            return Err(SecretProblem::LooksLikeEd25519Key);
        }

        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        if encoded.is_empty() {
            return Err(SecretProblem::Empty);
        }

        let key = BASE64
            .decode(encoded)
            .map_err(|_| SecretProblem::NotBase64)?;
        Self::from_bytes(key)
    }

    /// A secret from raw key bytes.
    pub fn from_bytes(key: Vec<u8>) -> Result<Self, SecretProblem> {
        match key.len() {
            0 => Err(SecretProblem::Empty),
            len if len < MIN_SECRET_LEN => Err(SecretProblem::TooShort { len }),
            _ => Ok(Self { key }),
        }
    }

    /// The secret as `whsec_<base64>`, the form shown to users.
    pub fn to_whsec(&self) -> String {
        format!("{SECRET_PREFIX}{}", BASE64.encode(&self.key))
    }

    /// Signs a message; returns one `v1,<base64>` entry.
    pub fn sign(&self, webhook_id: &str, timestamp: &str, body: &[u8]) -> String {
        let tag = self
            .mac(webhook_id, timestamp, body)
            .finalize()
            .into_bytes();
        format!("{VERSION_HMAC},{}", BASE64.encode(tag))
    }

    fn mac(&self, webhook_id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(webhook_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    fn matches(&self, webhook_id: &str, timestamp: &str, body: &[u8], tag: &[u8]) -> bool {
        // `verify_slice` compares in constant time.
        self.mac(webhook_id, timestamp, body)
            .verify_slice(tag)
            .is_ok()
    }
}

/// A sender's Ed25519 key (`v1a` signatures).
#[derive(Clone)]
pub struct Ed25519Signer {
    key: SigningKey,
}

impl std::fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("standard::Ed25519Signer")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl Ed25519Signer {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self {
            key: SigningKey::generate(&mut OsRng),
        }
    }

    /// Parses `whsk_<base64 32-byte seed>`; the prefix may be left out.
    pub fn parse(text: &str) -> Result<Self, SignatureError> {
        let seed = decode_key(text, PRIVATE_KEY_PREFIX, "Ed25519 private key")?;
        Ok(Self {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The private key as `whsk_<base64>`, for storing it.
    pub fn to_whsk(&self) -> String {
        format!("{PRIVATE_KEY_PREFIX}{}", BASE64.encode(self.key.to_bytes()))
    }

    /// The public key as `whpk_<base64>`, the form given to receivers.
    pub fn public_key(&self) -> String {
        format!(
            "{PUBLIC_KEY_PREFIX}{}",
            BASE64.encode(self.key.verifying_key().as_bytes())
        )
    }

    /// Signs a message; returns one `v1a,<base64>` entry.
    pub fn sign(&self, webhook_id: &str, timestamp: &str, body: &[u8]) -> String {
        let signature = self.key.sign(&signed_content(webhook_id, timestamp, body));
        format!("{VERSION_ED25519},{}", BASE64.encode(signature.to_bytes()))
    }
}

/// Parses `whpk_<base64 32 bytes>`; the prefix may be left out.
pub fn parse_public_key(text: &str) -> Result<ed25519_dalek::VerifyingKey, SignatureError> {
    let bytes = decode_key(text, PUBLIC_KEY_PREFIX, "Ed25519 public key")?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map_err(|_| SignatureError::MalformedKey("not a valid Ed25519 point".into()))
}

fn decode_key(text: &str, prefix: &str, what: &str) -> Result<[u8; 32], SignatureError> {
    let text = text.trim();
    let encoded = text.strip_prefix(prefix).unwrap_or(text);
    let bytes = BASE64
        .decode(encoded)
        .map_err(|_| SignatureError::MalformedKey(format!("{what} is not base64")))?;
    bytes.try_into().map_err(|v: Vec<u8>| {
        SignatureError::MalformedKey(format!("{what} must be 32 bytes, got {} bytes", v.len()))
    })
}

/// The bytes both versions sign: `id.timestamp.body`.
pub fn signed_content(webhook_id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(webhook_id.len() + timestamp.len() + body.len() + 2);
    content.extend_from_slice(webhook_id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp.as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

/// What a receiver checks signatures with.
#[derive(Clone, Debug)]
pub enum VerifyingKey {
    /// A shared secret: `v1` entries are checked.
    Secret(Secret),
    /// A sender's public key: `v1a` entries are checked.
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl VerifyingKey {
    /// The signature version this key checks.
    pub fn version(&self) -> &'static str {
        match self {
            VerifyingKey::Secret(_) => VERSION_HMAC,
            VerifyingKey::Ed25519(_) => VERSION_ED25519,
        }
    }

    fn matches(&self, webhook_id: &str, timestamp: &str, body: &[u8], encoded: &str) -> bool {
        let Ok(raw) = BASE64.decode(encoded) else {
            return false;
        };
        match self {
            VerifyingKey::Secret(secret) => secret.matches(webhook_id, timestamp, body, &raw),
            VerifyingKey::Ed25519(key) => {
                let Ok(bytes) = <[u8; 64]>::try_from(raw.as_slice()) else {
                    return false;
                };
                let content = signed_content(webhook_id, timestamp, body);
                key.verify_strict(&content, &Signature::from_bytes(&bytes))
                    .is_ok()
            }
        }
    }
}

/// Checks a `webhook-signature` header value against a message.
///
/// Passes when any entry of the key's version matches. An entry that is not
/// base64, or of another version, simply does not match. A header with no
/// entry of the key's version at all is [`SignatureError::MalformedSignature`]
/// (the sender signs with another scheme, or the header was mangled); entries
/// of the right version that all fail are [`SignatureError::Mismatch`].
pub fn verify(
    key: &VerifyingKey,
    webhook_id: &str,
    timestamp: &str,
    body: &[u8],
    signature_header: &str,
) -> Result<(), SignatureError> {
    let version = key.version();
    let mut candidates = 0usize;

    for entry in signature_header.split_ascii_whitespace() {
        let Some((entry_version, encoded)) = entry.split_once(',') else {
            continue;
        };
        if entry_version != version {
            continue;
        }
        candidates += 1;
        if key.matches(webhook_id, timestamp, body, encoded) {
            return Ok(());
        }
    }

    if candidates == 0 {
        return Err(SignatureError::MalformedSignature(format!(
            "no `{version},` entry in the signature header"
        )));
    }
    Err(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_SECRET: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn hmac_vector_reproduces() {
        let secret = Secret::parse(VECTOR_SECRET).unwrap();
        let body = concat!(
            r#"{"type":"wallets.transaction.succeeded","timestamp":"2023-12-01T02:14:26Z","#,
            r#""data":{"transaction_id":"f47ac10b-58cc-4372-a567-0e02b2c3d479"}}"#
        )
        .as_bytes();
        assert_eq!(
            secret.sign("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "1701396866", body),
            "v1,y5fSqXG8TNUE3NwPWHkZ7QscYTdmif8iAoA0tpSuwNo="
        );
        assert_eq!(secret.to_whsec(), VECTOR_SECRET);
    }

    #[test]
    fn secret_problems_are_named() {
        assert_eq!(Secret::parse(""), Err(SecretProblem::Empty));
        assert_eq!(Secret::parse("whsec_"), Err(SecretProblem::Empty));
        assert_eq!(
            Secret::parse("whsec_not base64!"),
            Err(SecretProblem::NotBase64)
        );
        assert_eq!(
            Secret::parse("whsec_AAECAw=="),
            Err(SecretProblem::TooShort { len: 4 })
        );
        assert_eq!(
            Secret::parse("v1,y5fSqXG8TNUE3NwPWHkZ7QscYTdmif8iAoA0tpSuwNo="),
            Err(SecretProblem::LooksLikeSignature)
        );
        assert_eq!(
            Secret::parse(&Ed25519Signer::generate().public_key()),
            Err(SecretProblem::LooksLikeEd25519Key)
        );
        assert!(Secret::parse(" whsec_AAECAwQFBgcICQoLDA0ODw==\n").is_ok());
        assert!(Secret::parse("AAECAwQFBgcICQoLDA0ODw==").is_ok());
    }

    #[test]
    fn rotation_and_unknown_versions() {
        let old = Secret::generate();
        let new = Secret::generate();
        let header = format!(
            "v2,zzzz {} v1,bm9wZQ== {}",
            old.sign("m", "1", b"{}"),
            "v1a,AAAA"
        );
        let key = VerifyingKey::Secret(old);
        assert_eq!(verify(&key, "m", "1", b"{}", &header), Ok(()));
        assert_eq!(
            verify(&VerifyingKey::Secret(new), "m", "1", b"{}", &header),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn header_without_our_version_is_malformed() {
        let key = VerifyingKey::Secret(Secret::generate());
        assert!(matches!(
            verify(&key, "m", "1", b"{}", "v1a,AAAA v2,BBBB"),
            Err(SignatureError::MalformedSignature(_))
        ));
    }

    #[test]
    fn ed25519_round_trips_and_ignores_hmac_entries() {
        let signer = Ed25519Signer::generate();
        let again = Ed25519Signer::parse(&signer.to_whsk()).unwrap();
        let key = VerifyingKey::Ed25519(parse_public_key(&again.public_key()).unwrap());
        let header = format!("v1,AAAA {}", signer.sign("msg_1", "1700000000", b"body"));
        assert_eq!(
            verify(&key, "msg_1", "1700000000", b"body", &header),
            Ok(())
        );
        assert_eq!(
            verify(&key, "msg_1", "1700000001", b"body", &header),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn public_key_length_is_checked() {
        assert!(matches!(
            parse_public_key("whpk_AAECAw=="),
            Err(SignatureError::MalformedKey(_))
        ));
    }
}
