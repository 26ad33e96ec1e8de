//! Argon2id password hashing, off the async runtime.

use crate::bus::CommandError;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use igny8_domain::ErrorKind;

pub const MIN_PASSWORD: usize = 8;
/// Argon2 takes any length; a cap (in characters, so a schema can state it:
/// at most 4 KB) keeps one request from buying minutes of CPU.
pub const MAX_PASSWORD: usize = 1024;

pub fn check_policy(password: &str) -> Result<(), CommandError> {
    let n = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
        return Err(CommandError::Domain {
            code: "INVALID_PASSWORD",
            kind: ErrorKind::Validation,
            message: format!("password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
        });
    }
    Ok(())
}

/// A PHC string (`$argon2id$v=19$...`) with a fresh random salt.
pub async fn hash(password: &str) -> Result<String, CommandError> {
    let pw = password.to_string();
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(pw.as_bytes())
            .map(|h| h.to_string())
            .map_err(CommandError::internal)
    })
    .await
    .map_err(CommandError::internal)?
}

pub async fn verify(password: &str, phc: &str) -> Result<bool, CommandError> {
    if password.chars().count() > MAX_PASSWORD {
        return Ok(false);
    }
    let (pw, phc) = (password.to_string(), phc.to_string());
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&phc).map_err(CommandError::internal)?;
        Ok(Argon2::default()
            .verify_password(pw.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(CommandError::internal)?
}

/// Spend about as long as a verification (unknown email: same timing).
pub async fn burn(password: &str) {
    let _ = hash(&password.chars().take(MAX_PASSWORD).collect::<String>()).await;
}
