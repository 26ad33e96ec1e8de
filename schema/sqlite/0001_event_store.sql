-- Event store for the embedded default. SQLite serialises writers, so the
-- AUTOINCREMENT position is also the commit order (tx_id stays 0).
CREATE TABLE IF NOT EXISTS events (
    global_position INTEGER PRIMARY KEY AUTOINCREMENT,
    aggregate_type  TEXT    NOT NULL,
    aggregate_id    TEXT    NOT NULL,
    sequence        INTEGER NOT NULL CHECK (sequence >= 0),
    event_type      TEXT    NOT NULL,
    event_version   TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    metadata        TEXT    NOT NULL,
    event_id        TEXT    NOT NULL UNIQUE,
    tx_id           INTEGER NOT NULL DEFAULT 0,
    recorded_at     TEXT    NOT NULL,
    account_id      TEXT,
    UNIQUE (aggregate_type, aggregate_id, sequence)
);
CREATE INDEX IF NOT EXISTS events_account_idx ON events (account_id, global_position);

CREATE TABLE IF NOT EXISTS snapshots (
    aggregate_type   TEXT    NOT NULL,
    aggregate_id     TEXT    NOT NULL,
    last_sequence    INTEGER NOT NULL CHECK (last_sequence >= 0),
    current_snapshot INTEGER NOT NULL CHECK (current_snapshot >= 0),
    payload          TEXT    NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope          TEXT    NOT NULL,
    idem_key       TEXT    NOT NULL,
    request_hash   TEXT    NOT NULL,
    command_id     TEXT    NOT NULL,
    aggregate_type TEXT    NOT NULL,
    aggregate_id   TEXT    NOT NULL,
    first_sequence INTEGER NOT NULL,
    created_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (scope, idem_key)
);

CREATE TRIGGER IF NOT EXISTS events_claim_idempotency_key BEFORE INSERT ON events
WHEN json_extract(NEW.metadata, '$.idempotency_key') IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO idempotency_keys (scope, idem_key, request_hash, command_id, aggregate_type, aggregate_id, first_sequence)
    VALUES (coalesce(json_extract(NEW.metadata, '$.idempotency_scope'), ''),
            json_extract(NEW.metadata, '$.idempotency_key'),
            coalesce(json_extract(NEW.metadata, '$.request_hash'), ''),
            json_extract(NEW.metadata, '$.command_id'),
            NEW.aggregate_type, NEW.aggregate_id, NEW.sequence);
    SELECT RAISE(ABORT, 'idempotency key already used by another command')
    WHERE (SELECT command_id FROM idempotency_keys
            WHERE scope = coalesce(json_extract(NEW.metadata, '$.idempotency_scope'), '')
              AND idem_key = json_extract(NEW.metadata, '$.idempotency_key'))
          IS NOT json_extract(NEW.metadata, '$.command_id');
END;

CREATE TABLE IF NOT EXISTS projection_checkpoints (
    name            TEXT PRIMARY KEY,
    tx_id           INTEGER NOT NULL DEFAULT 0,
    global_position INTEGER NOT NULL DEFAULT 0,
    stream_seq      INTEGER NOT NULL DEFAULT 0,
    events_applied  INTEGER NOT NULL DEFAULT 0,
    updated_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS relay_checkpoints (
    stream          TEXT PRIMARY KEY,
    tx_id           INTEGER NOT NULL DEFAULT 0,
    global_position INTEGER NOT NULL DEFAULT 0,
    updated_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
