-- +goose Up
-- Each incident's priority as the monitor last announced it
-- (incident.opened, then incident.updated), for the approval card's
-- header; priority_at is the incident's updated_at of that announcement,
-- so an older event that arrives late does not undo a newer one.
ALTER TABLE incident_subjects ADD COLUMN priority smallint NOT NULL DEFAULT 0;
ALTER TABLE incident_subjects ADD COLUMN priority_at timestamptz;

-- +goose Down
ALTER TABLE incident_subjects DROP COLUMN priority_at;
ALTER TABLE incident_subjects DROP COLUMN priority;
