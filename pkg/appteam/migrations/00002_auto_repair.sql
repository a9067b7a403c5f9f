-- +goose Up
-- Whether the app's repairs may run without a person (its --auto-repair),
-- for the repair service's guardrails.
ALTER TABLE app_teams ADD COLUMN auto_repair boolean NOT NULL DEFAULT false;
ALTER TABLE app_teams ADD COLUMN cluster text NOT NULL DEFAULT '';
ALTER TABLE app_teams ADD COLUMN namespace text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE app_teams DROP COLUMN namespace;
ALTER TABLE app_teams DROP COLUMN cluster;
ALTER TABLE app_teams DROP COLUMN auto_repair;
