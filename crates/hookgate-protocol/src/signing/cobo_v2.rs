//! Cobo WaaS 2.0 signatures: Ed25519 over the double SHA-256 digest of
//! `body|timestamp`, sent as 128 lowercase hex characters.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use rand::rngs::OsRng;

use super::{cobo_digest, decode_hex, SignatureError};

/// A parsed Ed25519 public key.
pub type PublicKey = VerifyingKey;

/// The server's WaaS 2.0 signing key.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("cobo_v2::Signer")
            .field("public_key", &self.public_key_hex())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self {
            key: SigningKey::generate(&mut OsRng),
        }
    }

    /// The key whose 32-byte seed is `seed_hex`.
    pub fn from_seed_hex(seed_hex: &str) -> Result<Self, SignatureError> {
        let seed: [u8; 32] = decode_hex("Ed25519 seed", seed_hex)
            .map_err(SignatureError::MalformedKey)?
            .try_into()
            .map_err(|_| SignatureError::MalformedKey("Ed25519 seed must be 32 bytes".into()))?;
        Ok(Self {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The 32-byte seed as hex, for storing the key.
    pub fn seed_hex(&self) -> String {
        hex::encode(self.key.to_bytes())
    }

    /// The public key as 64 hex characters, as Cobo publishes it.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// Signs `body` sent at `timestamp` (Unix ms as text); hex signature.
    pub fn sign(&self, body: &[u8], timestamp: &str) -> String {
        let digest = cobo_digest(body, timestamp);
        hex::encode(self.key.sign(&digest).to_bytes())
    }
}

/// Parses a 64-hex-character Ed25519 public key.
pub fn parse_public_key(public_key_hex: &str) -> Result<VerifyingKey, SignatureError> {
    let bytes: [u8; 32] = decode_hex("Ed25519 public key", public_key_hex)
        .map_err(SignatureError::MalformedKey)?
        .try_into()
        .map_err(|v: Vec<u8>| {
            SignatureError::MalformedKey(format!(
                "Ed25519 public key must be 32 bytes (64 hex characters), got {} bytes",
                v.len()
            ))
        })?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| SignatureError::MalformedKey("not a valid Ed25519 point".into()))
}

/// Checks `signature_hex` over `body` sent at `timestamp`.
pub fn verify(
    public_key: &VerifyingKey,
    body: &[u8],
    timestamp: &str,
    signature_hex: &str,
) -> Result<(), SignatureError> {
    let bytes: [u8; 64] = decode_hex("signature", signature_hex)
        .map_err(SignatureError::MalformedSignature)?
        .try_into()
        .map_err(|v: Vec<u8>| {
            SignatureError::MalformedSignature(format!(
                "an Ed25519 signature is 64 bytes (128 hex characters), got {} bytes",
                v.len()
            ))
        })?;
    let signature = Signature::from_bytes(&bytes);
    let digest = cobo_digest(body, timestamp);
    public_key
        .verify_strict(&digest, &signature)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::vectors;

    #[test]
    fn every_vector_verifies_as_labelled() {
        for v in vectors::load().cobo_v2_ed25519 {
            let key = parse_public_key(&v.public_key_hex).unwrap();
            let outcome = verify(&key, v.body.as_bytes(), &v.biz_timestamp, &v.signature_hex);
            assert_eq!(outcome.is_ok(), v.valid, "vector {}", v.name);
            if !v.valid {
                assert_eq!(outcome, Err(SignatureError::Mismatch), "vector {}", v.name);
            }
        }
    }

    #[test]
    fn signing_reproduces_the_vectors() {
        for v in vectors::load().cobo_v2_ed25519 {
            let (Some(seed), true) = (&v.private_seed_hex, v.valid) else {
                continue;
            };
            let signer = Signer::from_seed_hex(seed).unwrap();
            assert_eq!(signer.public_key_hex(), v.public_key_hex);
            assert_eq!(
                signer.sign(v.body.as_bytes(), &v.biz_timestamp),
                v.signature_hex
            );
            if let Some(digest) = &v.digest_hex {
                let ours = cobo_digest(v.body.as_bytes(), &v.biz_timestamp);
                assert_eq!(hex::encode(ours), *digest);
            }
        }
    }

    #[test]
    fn malformed_inputs_are_named() {
        let signer = Signer::generate();
        let key = parse_public_key(&signer.public_key_hex()).unwrap();
        assert!(matches!(
            verify(&key, b"{}", "1", "zz"),
            Err(SignatureError::MalformedSignature(_))
        ));
        assert!(matches!(
            verify(&key, b"{}", "1", "abcd"),
            Err(SignatureError::MalformedSignature(_))
        ));
        assert!(matches!(
            parse_public_key("abcd"),
            Err(SignatureError::MalformedKey(_))
        ));
    }

    #[test]
    fn seed_round_trips() {
        let signer = Signer::generate();
        let again = Signer::from_seed_hex(&signer.seed_hex()).unwrap();
        assert_eq!(again.public_key_hex(), signer.public_key_hex());
    }
}
