-- +goose Up
-- The team that owns an incident, as the monitor decided it from the
-- incident's subject (pkg/subject); incidents received before keep their
-- app's team.
ALTER TABLE incidents ADD COLUMN team text NOT NULL DEFAULT '';
UPDATE incidents i SET team = t.team FROM app_teams t WHERE t.app = i.app AND NOT t.deleted AND i.app <> '';

-- +goose Down
ALTER TABLE incidents DROP COLUMN team;
