-- +goose Up
-- Whose an incident is and what it is about (pkg/subject), decided when it
-- opens from its first alert and what Vigil knew then. Incidents opened
-- before keep the team of their app, as they were shown.
ALTER TABLE incidents ADD COLUMN team text NOT NULL DEFAULT '';
ALTER TABLE incidents ADD COLUMN subject jsonb;
-- +goose StatementBegin
DO $$
BEGIN
    -- app_teams (pkg/appteam) is migrated first by the service; a schema
    -- migrated without it has no app to take a team from.
    IF to_regclass('app_teams') IS NOT NULL THEN
        UPDATE incidents i SET team = t.team FROM app_teams t WHERE t.app = i.app AND NOT t.deleted AND i.app <> '';
    END IF;
END
$$;
-- +goose StatementEnd
CREATE INDEX incidents_team_newest ON incidents (team, opened_at DESC, id DESC);

-- +goose Down
DROP INDEX incidents_team_newest;
ALTER TABLE incidents DROP COLUMN subject;
ALTER TABLE incidents DROP COLUMN team;
