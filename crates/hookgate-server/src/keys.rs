//! Secrets kept in the data directory: the two signing keys and the
//! generated admin token. Each is created on first start, written with
//! owner-only permissions, and read back on every later start.

use std::fs;
use std::io::Write;
use std::path::Path;

use hookgate_protocol::signing::{cobo_v1, cobo_v2};
use rand::RngCore;

use crate::error::{Error, Result};

/// The server's signing keys.
#[derive(Clone)]
pub struct Keys {
    /// WaaS 2.0 Ed25519.
    pub v2: cobo_v2::Signer,
    /// WaaS 1.0 secp256k1.
    pub v1: cobo_v1::Signer,
}

/// Loads the signing keys from `dir`, creating missing ones.
pub fn load_or_create(dir: &Path) -> Result<Keys> {
    let v2 = read_or_write(&dir.join("signing-ed25519.key"), || {
        cobo_v2::Signer::generate().seed_hex()
    })?;
    let v1 = read_or_write(&dir.join("signing-secp256k1.key"), || {
        cobo_v1::Signer::generate().private_hex()
    })?;
    Ok(Keys {
        v2: cobo_v2::Signer::from_seed_hex(&v2.0)
            .map_err(|e| Error::DataDir(format!("signing-ed25519.key: {e}")))?,
        v1: cobo_v1::Signer::from_private_hex(&v1.0)
            .map_err(|e| Error::DataDir(format!("signing-secp256k1.key: {e}")))?,
    })
}

/// The admin token from `dir`, creating one when missing. The flag says
/// whether it was just created (and so must be shown once).
pub fn admin_token(dir: &Path) -> Result<(String, bool)> {
    read_or_write(&dir.join("admin-token"), || {
        let mut raw = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        format!("hga_{}", hex::encode(raw))
    })
}

fn read_or_write(path: &Path, make: impl FnOnce() -> String) -> Result<(String, bool)> {
    match fs::read_to_string(path) {
        Ok(text) => return Ok((text.trim().to_owned(), false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Error::DataDir(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    }

    let value = make();
    let temporary = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary)?;
        file.write_all(value.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    };
    write().map_err(|e| Error::DataDir(format!("cannot write {}: {e}", path.display())))?;
    Ok((value, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("hookgate-keys-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        let first = load_or_create(&dir).unwrap();
        let second = load_or_create(&dir).unwrap();
        assert_eq!(first.v2.public_key_hex(), second.v2.public_key_hex());
        assert_eq!(first.v1.public_key_hex(), second.v1.public_key_hex());

        let (token, created) = admin_token(&dir).unwrap();
        assert!(created);
        assert_eq!(admin_token(&dir).unwrap(), (token, false));
        fs::remove_dir_all(dir).unwrap();
    }
}
