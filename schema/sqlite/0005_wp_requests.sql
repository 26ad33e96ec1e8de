-- Every request the publisher makes to a WordPress site (the sync log):
-- an operational record, like an access log, written as each answer
-- arrives (so a worker killed mid-publish leaves what it sent). Never the
-- Application Password: method, path, status, time, WordPress's error code.
CREATE TABLE IF NOT EXISTS wp_requests (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_id  TEXT NOT NULL,
    account_id      TEXT NOT NULL,
    job_id          TEXT,
    content_id      TEXT,
    method          TEXT NOT NULL,
    path            TEXT NOT NULL,
    status          INTEGER,
    duration_ms     INTEGER NOT NULL,
    wp_code         TEXT,
    attempt         INTEGER NOT NULL,
    outcome         TEXT NOT NULL,
    error           TEXT,
    at              TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS wp_requests_integration ON wp_requests (integration_id, id);
CREATE INDEX IF NOT EXISTS wp_requests_job ON wp_requests (job_id, id);
