//! Secrets at rest: AES-256-GCM with keys from configuration.
//!
//! A sealed value is `v1.<kid>.<nonce hex>.<ciphertext+tag hex>`: the key id
//! travels with the ciphertext, so keys rotate by adding a new current key
//! and keeping the old ones for opening. The associated data binds a sealed
//! value to its owner (e.g. the user id), so it cannot be moved elsewhere.
//! Used for password hashes in events, WordPress application passwords and
//! AI provider keys. Never logged: `Keyring`'s `Debug` prints key ids only.

use aes_gcm::aead::{Aead, Generate, Key, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use std::collections::HashMap;

#[derive(Clone)]
pub struct Keyring {
    current: String,
    keys: HashMap<String, [u8; 32]>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("key_ids", &ids)
            .finish()
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SecretError {
    #[error("malformed key specification: {0}")]
    BadSpec(String),
    #[error("sealed with unknown key id {0:?}")]
    UnknownKey(String),
    #[error("sealed value is malformed or was tampered with")]
    Corrupt,
}

/// 32 bytes from the operating system's CSPRNG.
pub fn random_bytes() -> [u8; 32] {
    let k = Key::<Aes256Gcm>::generate();
    let mut out = [0u8; 32];
    out.copy_from_slice(k.as_slice());
    out
}

fn valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 64
        && kid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Keyring {
    /// `kid:64-hex-chars[,kid:hex…]`; the first key seals unless `current` names another.
    pub fn from_spec(spec: &str, current: Option<&str>) -> Result<Self, SecretError> {
        let mut keys = HashMap::new();
        let mut first = None;
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (kid, hexkey) = part
                .split_once(':')
                .ok_or_else(|| SecretError::BadSpec("expected kid:hex".into()))?;
            if !valid_kid(kid) {
                return Err(SecretError::BadSpec(format!("bad key id {kid:?}")));
            }
            let bytes = hex::decode(hexkey.trim())
                .map_err(|_| SecretError::BadSpec(format!("key {kid}: not hex")))?;
            let key: [u8; 32] = bytes.try_into().map_err(|_| {
                SecretError::BadSpec(format!("key {kid}: must be 32 bytes (64 hex characters)"))
            })?;
            first.get_or_insert_with(|| kid.to_string());
            keys.insert(kid.to_string(), key);
        }
        let current = match current {
            Some(c) => c.to_string(),
            None => first.ok_or_else(|| SecretError::BadSpec("no keys".into()))?,
        };
        if !keys.contains_key(&current) {
            return Err(SecretError::BadSpec(format!(
                "current key {current:?} is not in the list"
            )));
        }
        Ok(Keyring { current, keys })
    }

    /// A fresh random key (tests, first start of the embedded mode).
    pub fn generate(kid: &str) -> Self {
        Keyring {
            current: kid.to_string(),
            keys: HashMap::from([(kid.to_string(), random_bytes())]),
        }
    }

    /// The spec string of this keyring (to persist a generated one).
    pub fn to_spec(&self) -> String {
        let mut parts: Vec<String> = vec![format!(
            "{}:{}",
            self.current,
            hex::encode(self.keys[&self.current])
        )];
        for (kid, k) in &self.keys {
            if kid != &self.current {
                parts.push(format!("{kid}:{}", hex::encode(k)));
            }
        }
        parts.join(",")
    }

    pub fn current_kid(&self) -> &str {
        &self.current
    }

    /// The raw key of `kid` (the JWT signer derives its keys from these).
    pub fn key(&self, kid: &str) -> Option<&[u8; 32]> {
        self.keys.get(kid)
    }

    pub fn kids(&self) -> impl Iterator<Item = &String> {
        self.keys.keys()
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> String {
        let key = &self.keys[&self.current];
        let cipher = Aes256Gcm::new(key.into());
        let nonce = Nonce::generate();
        let ct = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .unwrap_or_default();
        format!(
            "v1.{}.{}.{}",
            self.current,
            hex::encode(nonce),
            hex::encode(ct)
        )
    }

    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<Vec<u8>, SecretError> {
        let mut parts = sealed.split('.');
        let (Some("v1"), Some(kid), Some(nonce), Some(ct), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(SecretError::Corrupt);
        };
        let key = self
            .keys
            .get(kid)
            .ok_or_else(|| SecretError::UnknownKey(kid.to_string()))?;
        let nonce = hex::decode(nonce).map_err(|_| SecretError::Corrupt)?;
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| SecretError::Corrupt)?;
        let ct = hex::decode(ct).map_err(|_| SecretError::Corrupt)?;
        Aes256Gcm::new(key.into())
            .decrypt(&Nonce::from(nonce), Payload { msg: &ct, aad })
            .map_err(|_| SecretError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_rotate_and_tamper() {
        let old = Keyring::generate("k1");
        let sealed = old.seal(b"wp-app-password", b"site-1");
        assert!(!sealed.contains("wp-app-password"));
        assert_eq!(old.open(&sealed, b"site-1").unwrap(), b"wp-app-password");
        // Bound to its owner.
        assert_eq!(
            old.open(&sealed, b"site-2").unwrap_err(),
            SecretError::Corrupt
        );
        // Rotation: a new current key, the old one still opens old values.
        let spec = format!("k2:{},{}", hex::encode(random_bytes()), old.to_spec());
        let rotated = Keyring::from_spec(&spec, None).unwrap();
        assert_eq!(rotated.current_kid(), "k2");
        assert_eq!(
            rotated.open(&sealed, b"site-1").unwrap(),
            b"wp-app-password"
        );
        assert!(rotated.seal(b"x", b"").starts_with("v1.k2."));
        // Tampering and unknown keys are refused.
        let mut bad = sealed.clone();
        bad.pop();
        bad.push(if sealed.ends_with('0') { '1' } else { '0' });
        assert_eq!(old.open(&bad, b"site-1").unwrap_err(), SecretError::Corrupt);
        assert!(matches!(
            Keyring::generate("k9").open(&sealed, b"site-1"),
            Err(SecretError::UnknownKey(_))
        ));
        assert!(Keyring::from_spec("k1:abcd", None).is_err());
        assert!(
            format!("{old:?}").contains("k1")
                && !format!("{old:?}").contains(&hex::encode(old.key("k1").unwrap()))
        );
    }
}
