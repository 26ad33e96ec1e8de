//! Where the signing and sealing keys come from: configuration, or (for a
//! single process with nothing configured) a file generated on first start.

use crate::config::Settings;
use anyhow::Context;
use igny8_commands::secrets::{Keyring, random_bytes};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug)]
pub struct Keys {
    pub jwt: Keyring,
    pub secrets: Keyring,
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    jwt: String,
    secrets: String,
}

impl Keys {
    pub fn load(s: &Settings) -> anyhow::Result<Keys> {
        let file = s.data_dir.join("keys.json");
        let stored: Option<KeyFile> = if s.jwt_keys.is_none() || s.secret_keys.is_none() {
            match std::fs::read_to_string(&file) {
                Ok(text) => Some(
                    serde_json::from_str(&text)
                        .with_context(|| format!("{} is not valid", file.display()))?,
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let fresh = KeyFile {
                        jwt: format!("k1:{}", hex::encode(random_bytes())),
                        secrets: format!("k1:{}", hex::encode(random_bytes())),
                    };
                    std::fs::create_dir_all(&s.data_dir)?;
                    write_private(&file, &serde_json::to_string_pretty(&fresh)?)?;
                    tracing::warn!(path = %file.display(), "no IGNY8_JWT_KEYS / IGNY8_SECRET_KEYS configured: generated keys; several gateways must share them");
                    Some(fresh)
                }
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
            }
        } else {
            None
        };
        let jwt_spec = s
            .jwt_keys
            .clone()
            .or_else(|| stored.as_ref().map(|f| f.jwt.clone()))
            .unwrap_or_default();
        let secret_spec = s
            .secret_keys
            .clone()
            .or_else(|| stored.as_ref().map(|f| f.secrets.clone()))
            .unwrap_or_default();
        Ok(Keys {
            jwt: Keyring::from_spec(&jwt_spec, s.jwt_current_kid.as_deref())
                .context("IGNY8_JWT_KEYS")?,
            secrets: Keyring::from_spec(&secret_spec, s.secret_current_kid.as_deref())
                .context("IGNY8_SECRET_KEYS")?,
        })
    }
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)?.write_all(text.as_bytes())
}
