-- +goose Up
-- The incident a delivery is about, so that what follows an incident
-- (its analysis) can reply to the message that announced it. Deliveries
-- recorded before this column existed are about no incident we can name.
ALTER TABLE deliveries ADD COLUMN incident_id text NOT NULL DEFAULT '';
CREATE INDEX deliveries_incident ON deliveries (incident_id, channel, target)
    WHERE incident_id <> '';

-- +goose Down
DROP INDEX deliveries_incident;
ALTER TABLE deliveries DROP COLUMN incident_id;
