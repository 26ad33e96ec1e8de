-- Event store: the postgres-es tables, extended with defaulted columns.
-- postgres-es inserts the first seven columns by name; everything else is
-- filled by defaults, so the library keeps working unchanged.
CREATE TABLE IF NOT EXISTS events (
    -- ids are ASCII: the "C" collation compares them bytewise (fast, same equality)
    aggregate_type  text COLLATE "C" NOT NULL,
    aggregate_id    text COLLATE "C" NOT NULL,
    sequence        bigint NOT NULL CHECK (sequence >= 0),
    event_type      text   NOT NULL,
    event_version   text   NOT NULL,
    payload         jsonb  NOT NULL,
    metadata        jsonb  NOT NULL,
    -- extensions
    event_id        uuid        NOT NULL DEFAULT gen_random_uuid(),
    global_position bigserial   NOT NULL,
    -- the writing transaction: the feed only reads rows of transactions older
    -- than every running one (pg_snapshot_xmin), so a late commit is never skipped
    tx_id           bigint      NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    account_id      text COLLATE "C" GENERATED ALWAYS AS (metadata ->> 'account_id') STORED,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
CREATE UNIQUE INDEX IF NOT EXISTS events_global_position_uq ON events (global_position);
CREATE UNIQUE INDEX IF NOT EXISTS events_event_id_uq ON events (event_id);
CREATE INDEX IF NOT EXISTS events_feed_idx ON events (tx_id, global_position);
CREATE INDEX IF NOT EXISTS events_account_idx ON events (account_id, global_position);

CREATE TABLE IF NOT EXISTS snapshots (
    aggregate_type   text   NOT NULL,
    aggregate_id     text   NOT NULL,
    last_sequence    bigint NOT NULL CHECK (last_sequence >= 0),
    current_snapshot bigint NOT NULL CHECK (current_snapshot >= 0),
    payload          jsonb  NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);

-- Idempotency keys are written by a trigger in the same transaction as the
-- command's events: a key exists if and only if its events were committed.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope          text   NOT NULL,
    idem_key       text   NOT NULL,
    request_hash   text   NOT NULL,
    command_id     text   NOT NULL,
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    first_sequence bigint NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, idem_key)
);

CREATE OR REPLACE FUNCTION igny8_claim_idempotency_key() RETURNS trigger AS $$
DECLARE
    k text := NEW.metadata ->> 'idempotency_key';
    s text := coalesce(NEW.metadata ->> 'idempotency_scope', '');
    owner text;
BEGIN
    IF k IS NULL THEN
        RETURN NEW;
    END IF;
    INSERT INTO idempotency_keys (scope, idem_key, request_hash, command_id, aggregate_type, aggregate_id, first_sequence)
    VALUES (s, k, coalesce(NEW.metadata ->> 'request_hash', ''), NEW.metadata ->> 'command_id',
            NEW.aggregate_type, NEW.aggregate_id, NEW.sequence)
    ON CONFLICT (scope, idem_key) DO NOTHING;
    SELECT command_id INTO owner FROM idempotency_keys WHERE scope = s AND idem_key = k;
    IF owner IS DISTINCT FROM NEW.metadata ->> 'command_id' THEN
        RAISE EXCEPTION 'idempotency key already used by another command' USING ERRCODE = 'unique_violation';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS events_claim_idempotency_key ON events;
-- The WHEN clause is evaluated without entering PL/pgSQL: commands without
-- a key pay nothing for this trigger.
CREATE TRIGGER events_claim_idempotency_key BEFORE INSERT ON events
    FOR EACH ROW WHEN (NEW.metadata ? 'idempotency_key')
    EXECUTE FUNCTION igny8_claim_idempotency_key();

-- Where each projection is: applied in the same transaction as its effect.
CREATE TABLE IF NOT EXISTS projection_checkpoints (
    name            text PRIMARY KEY,
    tx_id           bigint NOT NULL DEFAULT 0,
    global_position bigint NOT NULL DEFAULT 0,
    stream_seq      bigint NOT NULL DEFAULT 0,
    events_applied  bigint NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Where the relay is: the last event whose publish JetStream acknowledged.
CREATE TABLE IF NOT EXISTS relay_checkpoints (
    stream          text PRIMARY KEY,
    tx_id           bigint NOT NULL DEFAULT 0,
    global_position bigint NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
