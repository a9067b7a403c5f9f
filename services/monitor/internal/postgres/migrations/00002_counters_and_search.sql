-- +goose Up
-- Counters kept on the incident by deltas (never recounted per alert), and
-- the incident.updated waiting for its interval (ADR 0004).
ALTER TABLE incidents
    ADD COLUMN alert_count   integer NOT NULL DEFAULT 0,
    ADD COLUMN firing_count  integer NOT NULL DEFAULT 0,
    -- When its last incident.* event was made.
    ADD COLUMN last_event_at timestamptz,
    -- Set while a change waits to be announced: when it is due.
    ADD COLUMN update_due_at timestamptz,
    -- The change waiting: a vigil.events.v1.IncidentChange.
    ADD COLUMN pending       bytea;
UPDATE incidents i SET alert_count = c.total, firing_count = c.firing
FROM (SELECT incident_id, count(*) AS total, count(*) FILTER (WHERE status = 'firing') AS firing
      FROM alerts GROUP BY incident_id) c
WHERE c.incident_id = i.id;
UPDATE incidents SET last_event_at = updated_at;
CREATE INDEX incidents_update_due ON incidents (update_due_at) WHERE update_due_at IS NOT NULL;
CREATE INDEX incidents_resolved_at ON incidents (resolved_at) WHERE status = 'resolved';

-- A silenced alert is stored but belongs to no incident: one row per
-- fingerprint with incident_id NULL.
ALTER TABLE alerts DROP CONSTRAINT alerts_pkey;
ALTER TABLE alerts ALTER COLUMN incident_id DROP NOT NULL;
ALTER TABLE alerts ADD COLUMN silenced_by uuid;
ALTER TABLE alerts ADD CONSTRAINT alerts_incident_fingerprint UNIQUE NULLS NOT DISTINCT (incident_id, fingerprint);
DROP INDEX alerts_fingerprint;
-- Search (EXPLAIN ANALYZE in docs/benchmarks.md): an incident's alerts by
-- recency; every alert by recency; label matchers through the GIN index.
CREATE INDEX alerts_incident_recent ON alerts (incident_id, last_seen_at DESC, fingerprint DESC);
CREATE INDEX alerts_recent ON alerts (last_seen_at DESC, fingerprint DESC);
CREATE INDEX alerts_labels ON alerts USING gin (labels jsonb_path_ops);

CREATE INDEX alert_resolutions_ends_at ON alert_resolutions (ends_at);

-- +goose Down
DROP INDEX alert_resolutions_ends_at;
DROP INDEX alerts_labels;
DROP INDEX alerts_recent;
DROP INDEX alerts_incident_recent;
DELETE FROM alerts WHERE incident_id IS NULL;
ALTER TABLE alerts DROP CONSTRAINT alerts_incident_fingerprint;
ALTER TABLE alerts DROP COLUMN silenced_by;
ALTER TABLE alerts ALTER COLUMN incident_id SET NOT NULL;
ALTER TABLE alerts ADD PRIMARY KEY (incident_id, fingerprint);
CREATE INDEX alerts_fingerprint ON alerts (fingerprint);
DROP INDEX incidents_resolved_at;
DROP INDEX incidents_update_due;
ALTER TABLE incidents DROP COLUMN pending, DROP COLUMN update_due_at, DROP COLUMN last_event_at,
    DROP COLUMN firing_count, DROP COLUMN alert_count;
