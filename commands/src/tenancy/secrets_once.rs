//! Secrets an answer shows once (a new API key), kept so that a retried
//! request with the same `Idempotency-Key` can answer them again — sealed
//! (AES-256-GCM, bound to the key's id) and only for [`WINDOW_SECS`]; then
//! the row is deleted and a replay answers without the secret. The event
//! log never holds them (it keeps only the secret's hash).

use crate::bus::{CommandBus, CommandError, IdempotencyKey};
use crate::secrets::Keyring;
use uuid::Uuid;

/// How long a shown-once secret can be shown again by a replay.
pub const WINDOW_SECS: i64 = 24 * 3600;

fn aad(id: Uuid) -> Vec<u8> {
    format!("idempotent-secret:{id}").into_bytes()
}

/// Keep `secret` of `id` sealed for the window of `k` (and drop expired ones).
pub async fn keep(
    bus: &CommandBus,
    keyring: &Keyring,
    k: &IdempotencyKey,
    id: Uuid,
    secret: &str,
) -> Result<(), CommandError> {
    let now = chrono::Utc::now().timestamp();
    let sealed = keyring.seal(secret.as_bytes(), &aad(id));
    crate::on_db!(bus.db(), p => {
        sqlx::query("DELETE FROM idempotent_secrets WHERE expires_at < $1")
            .bind(now)
            .execute(p)
            .await
            .map_err(CommandError::db)?;
        sqlx::query(
            "INSERT INTO idempotent_secrets (scope, idem_key, sealed, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (scope, idem_key) DO NOTHING",
        )
        .bind(&k.scope)
        .bind(&k.key)
        .bind(&sealed)
        .bind(now + WINDOW_SECS)
        .execute(p)
        .await
        .map_err(CommandError::db)?;
    });
    Ok(())
}

/// The secret `k` keeps for `id`, while its window lasts.
pub async fn read(
    bus: &CommandBus,
    keyring: &Keyring,
    k: &IdempotencyKey,
    id: Uuid,
) -> Result<Option<String>, CommandError> {
    let now = chrono::Utc::now().timestamp();
    let sealed: Option<String> = crate::on_db!(bus.db(), p => {
        sqlx::query_scalar(
            "SELECT sealed FROM idempotent_secrets WHERE scope = $1 AND idem_key = $2 AND expires_at >= $3",
        )
        .bind(&k.scope)
        .bind(&k.key)
        .bind(now)
        .fetch_optional(p)
        .await
        .map_err(CommandError::db)?
    });
    Ok(sealed
        .and_then(|s| keyring.open(&s, &aad(id)).ok())
        .and_then(|b| String::from_utf8(b).ok()))
}
