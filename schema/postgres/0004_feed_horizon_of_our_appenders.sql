-- The feed's horizon counts only our own appenders.
--
-- Before: the feed read rows with tx_id < pg_snapshot_xmin, a server-wide
-- value, so any long transaction on the server (another database, another
-- schema, a pg_dump, a client idle in a transaction) froze every reader.
--
-- Now: every transaction that appends to this schema's `events` announces
-- itself, before it has a transaction id, with a shared transaction-level
-- advisory lock on (5783, hashtext(schema)). The horizon is the lowest
-- transaction id among the holders of that lock, or, with none holding one,
-- the first unassigned transaction id. A reader computes the horizon in one
-- statement, then reads rows below it in a later one (a newer snapshot):
-- an appender below the horizon had finished when the horizon was taken, so
-- its rows, if committed, are visible to the read; an appender that had not
-- yet got its id gets one above the horizon. Shared locks never wait on each
-- other: appends do not serialise.

-- The lock key of this session's schema (the readers' side).
CREATE OR REPLACE FUNCTION igny8_appender_key() RETURNS int4
    LANGUAGE sql STABLE AS $$ SELECT hashtext(current_schema()::text) $$;

-- Statement-level, so it runs before the INSERT writes a row (and before
-- the row defaults call pg_current_xact_id()).
CREATE OR REPLACE FUNCTION igny8_announce_appender() RETURNS trigger AS $$
DECLARE
    -- The schema of the table written (readers use their current schema,
    -- the one their unqualified `events` resolves to).
    k int4 := hashtext(TG_TABLE_SCHEMA::text);
BEGIN
    IF pg_current_xact_id_if_assigned() IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pg_locks
         WHERE locktype = 'advisory' AND pid = pg_backend_pid()
           AND classid = 5783::oid AND objid = k::oid AND objsubid = 2
    ) THEN
        -- The transaction wrote something else first: its id could be below
        -- a horizon a reader already took. Refuse rather than risk a skip.
        RAISE EXCEPTION 'igny8: events must be the first write of their transaction'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM pg_advisory_xact_lock_shared(5783, k);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS events_announce_appender ON events;
CREATE TRIGGER events_announce_appender BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION igny8_announce_appender();

-- The horizon, as a 64-bit transaction id (what `events.tx_id` stores).
-- pg_locks shows 32-bit ids: they are widened with the epoch of the next
-- id (an id in progress is less than 2^31 behind it).
CREATE OR REPLACE FUNCTION igny8_feed_horizon() RETURNS bigint AS $$
DECLARE
    next_id bigint := pg_snapshot_xmax(pg_current_snapshot())::text::bigint;
    oldest bigint;
BEGIN
    -- One read of the lock table for both sides of the join.
    WITH l AS MATERIALIZED (SELECT locktype, pid, mode, classid, objid, objsubid, transactionid FROM pg_locks),
         ids AS (
           SELECT ((next_id >> 32) << 32) + x.transactionid::text::bigint AS id
             FROM l a
             JOIN l x ON x.pid = a.pid AND x.locktype = 'transactionid' AND x.mode = 'ExclusiveLock'
            WHERE a.locktype = 'advisory' AND a.classid = 5783::oid
              AND a.objid = igny8_appender_key()::oid AND a.objsubid = 2)
    SELECT min(CASE WHEN id > next_id THEN id - 4294967296 ELSE id END) INTO oldest FROM ids;
    RETURN coalesce(oldest, next_id);
END
$$ LANGUAGE plpgsql VOLATILE;
