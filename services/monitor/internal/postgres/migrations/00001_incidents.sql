-- +goose Up
CREATE TABLE incidents (
    id              uuid PRIMARY KEY,
    group_key       text        NOT NULL,
    group_labels    jsonb       NOT NULL,
    title           text        NOT NULL,
    severity        smallint    NOT NULL,
    status          text        NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    app             text        NOT NULL DEFAULT '',
    namespace       text        NOT NULL DEFAULT '',
    correlation_id  text        NOT NULL,
    opened_at       timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by text        NOT NULL DEFAULT '',
    resolved_at     timestamptz,
    resolved_by     text        NOT NULL DEFAULT ''
);
-- At most one unresolved incident per group: replicas racing on the same
-- group serialise on an advisory lock; this is the backstop.
CREATE UNIQUE INDEX incidents_one_unresolved_per_group ON incidents (group_key) WHERE status <> 'resolved';
CREATE INDEX incidents_group_resolved ON incidents (group_key, resolved_at DESC) WHERE status = 'resolved';
CREATE INDEX incidents_newest ON incidents (opened_at DESC, id DESC);

-- An alert as an incident knows it: one row per fingerprint per incident.
CREATE TABLE alerts (
    incident_id   uuid        NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    fingerprint   text        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('firing', 'resolved')),
    labels        jsonb       NOT NULL,
    annotations   jsonb       NOT NULL,
    source        smallint    NOT NULL,
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz,
    generator_url text        NOT NULL DEFAULT '',
    external_url  text        NOT NULL DEFAULT '',
    count         integer     NOT NULL DEFAULT 1,
    first_seen_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    PRIMARY KEY (incident_id, fingerprint)
);
CREATE INDEX alerts_fingerprint ON alerts (fingerprint);

-- Alert instances (fingerprint + start) known to have resolved, so a
-- "fired" delivered after its "resolved" does not reopen anything.
CREATE TABLE alert_resolutions (
    fingerprint text        NOT NULL,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    PRIMARY KEY (fingerprint, starts_at)
);

-- +goose Down
DROP TABLE alert_resolutions;
DROP TABLE alerts;
DROP TABLE incidents;
