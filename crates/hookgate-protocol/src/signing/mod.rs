//! Signature schemes over the exact body bytes.
//!
//! Both Cobo schemes sign the same message: the body bytes, one `|`, then the
//! send time in Unix milliseconds as decimal text. The message is hashed with
//! SHA-256 twice (the raw 32 bytes of the first hash are hashed again), and
//! that digest is what the key signs:
//!
//! - [`cobo_v2`]: Ed25519 (RFC 8032, pure), hex signature, 32-byte hex key;
//! - [`cobo_v1`]: ECDSA on secp256k1, low-S, DER-encoded then hex, 33-byte
//!   compressed hex key.
//!
//! Signers work on bytes, never on parsed JSON: a receiver that verifies a
//! re-serialisation of the body fails on the first escaped slash.

pub mod cobo_v1;
pub mod cobo_v2;
pub mod standard;

use sha2::{Digest, Sha256};

/// Why a signature or key was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// The signature is not in the encoding the scheme uses.
    #[error("malformed signature: {0}")]
    MalformedSignature(String),
    /// The public or private key is not in the encoding the scheme uses.
    #[error("malformed key: {0}")]
    MalformedKey(String),
    /// The signature is well formed but was not made over this body and
    /// timestamp with this key.
    #[error("signature does not match the body and timestamp")]
    Mismatch,
}

/// SHA-256(SHA-256(`body` | `|` | `timestamp`)): the digest both Cobo schemes
/// sign.
pub fn cobo_digest(body: &[u8], timestamp: &str) -> [u8; 32] {
    let mut first = Sha256::new();
    first.update(body);
    first.update(b"|");
    first.update(timestamp.as_bytes());
    Sha256::digest(first.finalize()).into()
}

fn decode_hex(what: &str, text: &str) -> Result<Vec<u8>, String> {
    hex::decode(text.trim()).map_err(|e| format!("{what} is not hex: {e}"))
}

#[cfg(test)]
pub(crate) mod vectors {
    use serde::Deserialize;

    pub const FILE: &str = include_str!("../../../../testdata/vectors/signatures.json");

    #[derive(Deserialize)]
    pub struct Vectors {
        pub cobo_v2_ed25519: Vec<V2>,
        pub cobo_v1_secp256k1: Vec<V1>,
    }

    #[derive(Deserialize)]
    pub struct V2 {
        pub name: String,
        pub private_seed_hex: Option<String>,
        pub public_key_hex: String,
        pub body: String,
        pub biz_timestamp: String,
        pub digest_hex: Option<String>,
        pub signature_hex: String,
        pub valid: bool,
    }

    #[derive(Deserialize)]
    pub struct V1 {
        pub name: String,
        pub private_key_hex: Option<String>,
        pub public_key_hex: String,
        pub body: Option<String>,
        pub biz_timestamp: Option<String>,
        pub signature_der_hex: Option<String>,
        pub valid: Option<bool>,
    }

    pub fn load() -> Vectors {
        serde_json::from_str(FILE).expect("vectors file parses")
    }
}
