//! Webhooks from the companion plugin: `X-Igny8-Timestamp` (Unix seconds)
//! and `X-Igny8-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`
//! under the connection's secret. A bad signature or a timestamp more than
//! [`REPLAY_WINDOW_SECS`] away is refused (401) and nothing is recorded; a
//! good one records the change on the publication (told twice: once).

use super::integrations::webhook_secret;
use super::publish::record_external;
use crate::bus::{CommandBus, CommandContext, CommandError};
use crate::secrets::Keyring;
use hmac::{Hmac, Mac};
use igny8_domain::ErrorKind;
use igny8_domain::publishing::{ExternalChange, WpIntegration, publication_id};
use serde::Deserialize;
use sha2::Sha256;
use uuid::Uuid;

pub const REPLAY_WINDOW_SECS: i64 = 300;

/// What the plugin sends.
#[derive(Debug, Deserialize)]
pub struct WebhookBody {
    /// edited, trashed, restored or deleted.
    pub event: String,
    pub post_id: u64,
    #[serde(default)]
    pub publish_id: Option<String>,
    pub content_id: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub modified_gmt: Option<String>,
    #[serde(default)]
    pub content_sha256: Option<String>,
}

fn unauthenticated(msg: &str) -> CommandError {
    CommandError::refused(ErrorKind::Unauthenticated, "INVALID_WEBHOOK_SIGNATURE", msg)
}

/// Check a webhook's signature (constant time) and timestamp.
pub fn verify(
    secret: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: i64,
) -> Result<(), CommandError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| unauthenticated("X-Igny8-Timestamp must be Unix seconds"))?;
    if (now - ts).abs() > REPLAY_WINDOW_SECS {
        return Err(unauthenticated(
            "the webhook's timestamp is outside the 5-minute window",
        ));
    }
    let hex_sig = signature
        .trim()
        .strip_prefix("sha256=")
        .unwrap_or(signature.trim());
    let sig = hex::decode(hex_sig)
        .map_err(|_| unauthenticated("X-Igny8-Signature must be sha256=<hex>"))?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(CommandError::internal)?;
    mac.update(timestamp.trim().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&sig)
        .map_err(|_| unauthenticated("the webhook's signature does not match"))
}

/// The signature header value the plugin computes (for tests and docs).
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Verify and record a webhook for `integration_id`: `Ok(true)` when it
/// recorded a change, `Ok(false)` when the change was known (or ours).
pub async fn receive(
    bus: &CommandBus,
    keyring: &Keyring,
    integration_id: Uuid,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Result<bool, CommandError> {
    let (i, _) = bus
        .load::<WpIntegration>(&integration_id.to_string())
        .await?;
    // An unknown connection answers as a bad signature: nothing to probe.
    let secret = i
        .live()
        .then(|| webhook_secret(keyring, integration_id, &i))
        .flatten()
        .ok_or_else(|| unauthenticated("the webhook's signature does not match"))?;
    let (Some(ts), Some(sig)) = (timestamp, signature) else {
        return Err(unauthenticated(
            "X-Igny8-Timestamp and X-Igny8-Signature are required",
        ));
    };
    verify(&secret, ts, sig, body, chrono::Utc::now().timestamp())?;
    let b: WebhookBody = serde_json::from_slice(body).map_err(|e| {
        CommandError::invalid("VALIDATION_ERROR", format!("not a webhook body: {e}"))
    })?;
    let kind = match b.event.as_str() {
        "edited" | "trashed" | "restored" | "deleted" => b.event.clone(),
        _ => {
            return Err(CommandError::invalid(
                "VALIDATION_ERROR",
                "event must be edited, trashed, restored or deleted",
            ));
        }
    };
    let content_id = Uuid::parse_str(&b.content_id)
        .map_err(|_| CommandError::invalid("VALIDATION_ERROR", "content_id must be a UUID"))?;
    let publication = publication_id(integration_id, content_id);
    let p = super::publish::load(bus, publication).await?;
    if p.post.as_ref().map(|x| x.post_id) != Some(b.post_id) {
        return Err(CommandError::not_found("publication"));
    }
    let ctx = CommandContext {
        account_id: i.account_id.map(|a| a.to_string()),
        actor: format!("wordpress:{integration_id}"),
        request_id: Uuid::new_v4().to_string(),
        correlation_id: b
            .publish_id
            .clone()
            .unwrap_or_else(|| publication.to_string()),
        ..CommandContext::default()
    };
    let change = ExternalChange {
        kind,
        source: "webhook".into(),
        status: b.status,
        modified_gmt: b.modified_gmt.map(|m| m.chars().take(19).collect()),
        content_sha256: b.content_sha256,
    };
    record_external(bus, &ctx, publication, change).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked_and_stale_ones_refused() {
        let body = br#"{"event":"edited"}"#;
        let sig = sign("s3cret", "1000", body);
        assert!(verify("s3cret", "1000", &sig, body, 1000).is_ok());
        assert!(verify("s3cret", "1000", &sig, body, 1000 + REPLAY_WINDOW_SECS).is_ok());
        assert!(
            verify("s3cret", "1000", &sig, body, 1001 + REPLAY_WINDOW_SECS).is_err(),
            "stale"
        );
        assert!(
            verify("other", "1000", &sig, body, 1000).is_err(),
            "wrong secret"
        );
        assert!(
            verify("s3cret", "1001", &sig, body, 1000).is_err(),
            "timestamp is signed"
        );
        assert!(
            verify("s3cret", "1000", &sig, b"{}", 1000).is_err(),
            "body is signed"
        );
        assert!(verify("s3cret", "1000", "sha256=zz", body, 1000).is_err());
    }
}
