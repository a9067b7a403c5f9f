-- +goose Up
-- Deploy quiet (services/monitor/internal/quiet): the rollout that held an
-- alert (a types.v1.DeployHold, protojson). On an alert in no incident
-- (incident_id NULL, silenced_by NULL) it is held; on an alert in an
-- incident it was held and released, and names the deploy as evidence.
ALTER TABLE alerts ADD COLUMN held_by jsonb;
-- The release sweeper's look-up: the held alerts of an app that still fire.
CREATE INDEX alerts_held ON alerts ((held_by->>'app'))
    WHERE incident_id IS NULL AND held_by IS NOT NULL AND status = 'firing';

-- Each app's latest rollout, from deploy.* events: it holds the app's
-- warning alerts until release_at (the longest a rollout is waited for
-- while it runs; its end plus the settle time once it succeeded; its end
-- once it failed or rolled back). Replicas take due windows with SKIP
-- LOCKED.
CREATE TABLE deploy_windows (
    app           text PRIMARY KEY,
    deployment_id text        NOT NULL,
    revision      bigint      NOT NULL,
    outcome       text        NOT NULL CHECK (outcome IN ('rolling', 'succeeded', 'failed', 'rolled_back')),
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz,
    release_at    timestamptz NOT NULL
);
CREATE INDEX deploy_windows_release ON deploy_windows (release_at);

-- +goose Down
DROP TABLE deploy_windows;
DROP INDEX alerts_held;
ALTER TABLE alerts DROP COLUMN held_by;
