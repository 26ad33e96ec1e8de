-- Every request the publisher makes to a WordPress site (the sync log):
-- an operational record, like an access log, written as each answer
-- arrives (so a worker killed mid-publish leaves what it sent). Never the
-- Application Password: method, path, status, time, WordPress's error code.
CREATE TABLE IF NOT EXISTS wp_requests (
    id              bigserial PRIMARY KEY,
    integration_id  text NOT NULL,
    account_id      text NOT NULL,
    job_id          text,
    content_id      text,
    method          text NOT NULL,
    path            text NOT NULL,
    status          integer,
    duration_ms     bigint NOT NULL,
    wp_code         text,
    attempt         integer NOT NULL,
    outcome         text NOT NULL,
    error           text,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS wp_requests_integration ON wp_requests (integration_id, id);
CREATE INDEX IF NOT EXISTS wp_requests_job ON wp_requests (job_id, id);
