-- +goose Up
-- Which team each app belongs to, from the deploy service's app.* events:
-- what an app's incidents, analyses and repairs belong to. A deleted app
-- keeps a row (deleted) so that a late, older event does not bring it
-- back; occurred_at is the newest event applied.
CREATE TABLE app_teams (
    app          text        PRIMARY KEY,
    team         text        NOT NULL,
    deleted      boolean     NOT NULL DEFAULT false,
    occurred_at  timestamptz NOT NULL
);
CREATE INDEX app_teams_team ON app_teams (team) WHERE NOT deleted;

-- +goose Down
DROP TABLE app_teams;
