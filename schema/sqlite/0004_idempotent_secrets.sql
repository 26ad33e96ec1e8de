-- A secret an answer shows once (a new API key), sealed (AES-256-GCM) and
-- kept only for the idempotency window, so a retried request with the same
-- Idempotency-Key can show it again; expired rows are deleted.
CREATE TABLE IF NOT EXISTS idempotent_secrets (
    scope       TEXT    NOT NULL,
    idem_key    TEXT    NOT NULL,
    sealed      TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (scope, idem_key)
);
CREATE INDEX IF NOT EXISTS idempotent_secrets_expiry ON idempotent_secrets (expires_at);
