-- +goose Up
-- Each incident's subject as the monitor announced it (incident.opened):
-- the repair service's own record of what a repair may touch, checked
-- whatever an analysis says. Pruned with the repairs.
CREATE TABLE incident_subjects (
    incident_id  uuid        PRIMARY KEY,
    subject      jsonb       NOT NULL,
    team         text        NOT NULL,
    received_at  timestamptz NOT NULL
);
CREATE INDEX incident_subjects_received ON incident_subjects (received_at);
-- The team that owns the repair's incident when it has no app (a
-- namespace mapped to a team); an app's repairs follow the app's owner.
ALTER TABLE repairs ADD COLUMN team text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE repairs DROP COLUMN team;
DROP TABLE incident_subjects;
