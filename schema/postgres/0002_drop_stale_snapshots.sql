-- Snapshots written before 2026-12-01 could lack the last events of a
-- command that crossed a snapshot boundary with several events (cqrs-es
-- builds the snapshot only up to the boundary; it was stored under the
-- commit's last sequence). Snapshots are a cache of the events: drop them;
-- aggregates load from their events and snapshot again as they grow.
DELETE FROM snapshots;
