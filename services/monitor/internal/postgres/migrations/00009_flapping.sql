-- +goose Up
-- Flapping (docs/noise.md): since when an incident flaps, and when it
-- settles unless its alerts change again (their last change plus the
-- flapping window). An alert's fire-resolve cycles are counted from
-- alert_resolutions, which replicas share already.
ALTER TABLE incidents ADD COLUMN flapping_since timestamptz, ADD COLUMN flap_until timestamptz;
CREATE INDEX incidents_flap_until ON incidents (flap_until) WHERE flap_until IS NOT NULL;

-- +goose Down
DROP INDEX incidents_flap_until;
ALTER TABLE incidents DROP COLUMN flap_until, DROP COLUMN flapping_since;
