-- A projection that cannot apply an event stops there and says so: the
-- error, the event it is stuck at and since when (cleared when it applies
-- events again). layout_version: the read tables' layout the projection's
-- rows were built with (NULL: before versions were recorded); a different
-- version in the code rebuilds the projection on start.
ALTER TABLE projection_checkpoints ADD COLUMN error TEXT;
ALTER TABLE projection_checkpoints ADD COLUMN error_event_id TEXT;
ALTER TABLE projection_checkpoints ADD COLUMN error_at TEXT;
ALTER TABLE projection_checkpoints ADD COLUMN layout_version INTEGER;
