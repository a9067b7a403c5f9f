-- +goose Up
-- Silences mute the alerts their matchers select (services/monitor/internal/silence).
CREATE TABLE silences (
    id         uuid        PRIMARY KEY,
    -- Alertmanager matchers, one canonical string each (alertname="X").
    matchers   text[]      NOT NULL CHECK (cardinality(matchers) > 0),
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    created_by text        NOT NULL,
    comment    text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    -- Set when someone expired it before its end.
    expired_at timestamptz,
    expired_by text        NOT NULL DEFAULT '',
    -- A weekly schedule {"time_zone": ..., "windows": [{"days": [...], "start": "HH:MM", "end": "HH:MM"}]};
    -- NULL for a one-off silence.
    schedule   jsonb,
    CHECK (ends_at > starts_at)
);
-- The silences that can still mute (active or pending: ends_at > now and
-- not expired), loaded for every batch of alerts; and pruning those that
-- ended, or were expired, long enough ago.
CREATE INDEX silences_ends_at ON silences (ends_at);
CREATE INDEX silences_expired_at ON silences (expired_at) WHERE expired_at IS NOT NULL;
-- Listing, newest first.
CREATE INDEX silences_newest ON silences (created_at DESC, id DESC);

-- +goose Down
DROP TABLE silences;
