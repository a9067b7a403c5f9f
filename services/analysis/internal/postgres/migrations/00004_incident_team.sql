-- +goose Up
-- The team that owns an incident, as the monitor decided it from the
-- incident's subject (pkg/subject); incidents received before keep their
-- app's team.
ALTER TABLE incidents ADD COLUMN team text NOT NULL DEFAULT '';
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

-- +goose Down
ALTER TABLE incidents DROP COLUMN team;
