-- +goose Up
-- An incident's messages, for its page in the console (ListIncidentMessages):
-- read on every view, so by index, in the order they were queued.
CREATE INDEX deliveries_incident_seq ON deliveries (incident_id, seq) WHERE incident_id <> '';

-- +goose Down
DROP INDEX deliveries_incident_seq;
