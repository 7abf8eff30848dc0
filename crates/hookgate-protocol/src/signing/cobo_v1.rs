//! Cobo WaaS 1.0 signatures: ECDSA on secp256k1 over the double SHA-256
//! digest of `body|timestamp`, low-S, DER-encoded, sent as hex. The public
//! key is the 33-byte compressed point in hex.

use k256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use k256::ecdsa::{Signature, SigningKey, VerifyingKey};
use rand::rngs::OsRng;

use super::{cobo_digest, decode_hex, SignatureError};

/// The server's WaaS 1.0 signing key.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("cobo_v1::Signer")
            .field("public_key", &self.public_key_hex())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self {
            key: SigningKey::random(&mut OsRng),
        }
    }

    /// The key whose 32-byte scalar is `private_key_hex`.
    pub fn from_private_hex(private_key_hex: &str) -> Result<Self, SignatureError> {
        let bytes = decode_hex("secp256k1 private key", private_key_hex)
            .map_err(SignatureError::MalformedKey)?;
        let key = SigningKey::from_slice(&bytes)
            .map_err(|_| SignatureError::MalformedKey("not a valid secp256k1 scalar".into()))?;
        Ok(Self { key })
    }

    /// The private scalar as hex, for storing the key.
    pub fn private_hex(&self) -> String {
        hex::encode(self.key.to_bytes())
    }

    /// The compressed public key as 66 hex characters.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().to_encoded_point(true).as_bytes())
    }

    /// Signs `body` sent at `timestamp`; hex of the DER signature.
    pub fn sign(&self, body: &[u8], timestamp: &str) -> String {
        let digest = cobo_digest(body, timestamp);
        let signature: Signature = self
            .key
            .sign_prehash(&digest)
            .expect("a 32-byte digest is always signable");
        let signature = signature.normalize_s().unwrap_or(signature);
        hex::encode(signature.to_der().as_bytes())
    }
}

/// Parses a compressed (or uncompressed) SEC1 hex public key.
pub fn parse_public_key(public_key_hex: &str) -> Result<VerifyingKey, SignatureError> {
    let bytes =
        decode_hex("secp256k1 public key", public_key_hex).map_err(SignatureError::MalformedKey)?;
    VerifyingKey::from_sec1_bytes(&bytes).map_err(|_| {
        SignatureError::MalformedKey(format!(
            "not a secp256k1 public key (expected 33 bytes compressed, got {} bytes)",
            bytes.len()
        ))
    })
}

/// Checks the hex DER `signature_hex` over `body` sent at `timestamp`. A
/// high-S signature is accepted as its low-S twin, as other verifiers do.
pub fn verify(
    public_key: &VerifyingKey,
    body: &[u8],
    timestamp: &str,
    signature_hex: &str,
) -> Result<(), SignatureError> {
    let der = decode_hex("signature", signature_hex).map_err(SignatureError::MalformedSignature)?;
    let signature = Signature::from_der(&der).map_err(|_| {
        SignatureError::MalformedSignature("not a DER-encoded ECDSA signature".into())
    })?;
    let signature = signature.normalize_s().unwrap_or(signature);
    let digest = cobo_digest(body, timestamp);
    public_key
        .verify_prehash(&digest, &signature)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::vectors;

    #[test]
    fn real_cobo_vector_verifies_and_tampered_does_not() {
        for v in vectors::load().cobo_v1_secp256k1 {
            let (Some(body), Some(ts), Some(sig), Some(valid)) =
                (&v.body, &v.biz_timestamp, &v.signature_der_hex, v.valid)
            else {
                continue;
            };
            let key = parse_public_key(&v.public_key_hex).unwrap();
            let outcome = verify(&key, body.as_bytes(), ts, sig);
            assert_eq!(outcome.is_ok(), valid, "vector {}", v.name);
        }
    }

    #[test]
    fn generated_key_matches_vector_and_round_trips() {
        for v in vectors::load().cobo_v1_secp256k1 {
            let Some(private) = &v.private_key_hex else {
                continue;
            };
            let signer = Signer::from_private_hex(private).unwrap();
            assert_eq!(signer.public_key_hex(), v.public_key_hex);

            let body = br#"{"id": "", "side": "withdraw"}"#;
            let signature = signer.sign(body, "1673345213334");
            let key = parse_public_key(&signer.public_key_hex()).unwrap();
            assert_eq!(verify(&key, body, "1673345213334", &signature), Ok(()));
            assert_eq!(
                verify(&key, body, "1673345213335", &signature),
                Err(SignatureError::Mismatch)
            );
        }
    }

    #[test]
    fn signatures_are_low_s() {
        let signer = Signer::generate();
        for i in 0..32 {
            let der = hex::decode(signer.sign(b"{}", &i.to_string())).unwrap();
            let signature = Signature::from_der(&der).unwrap();
            assert!(
                signature.normalize_s().is_none(),
                "high-S signature emitted"
            );
        }
    }
}
