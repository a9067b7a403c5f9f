-- +goose Up
-- The routing document (notify.v1.RoutingConfig as protobuf JSON), one
-- row per applied version: the highest is in force. Applying inserts the
-- next version, so two applies from the same version cannot both win
-- (the second hits the primary key). Only the last versions are kept.
CREATE TABLE routing_versions (
    version    bigint      PRIMARY KEY,
    config     jsonb       NOT NULL,
    applied_by text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- The incidents notify announced, with what routes look at (team, app,
-- namespace, priority, severity, labels): an incident's replies are
-- routed as its opening was, though their events carry only its id; and
-- those still firing are announced again on their routes' repeat
-- interval.
CREATE TABLE routed_incidents (
    incident_id  text        PRIMARY KEY,
    route        jsonb       NOT NULL,
    title        text        NOT NULL,
    opened_at    timestamptz NOT NULL,
    firing       integer     NOT NULL,
    alerts       integer     NOT NULL,
    acknowledged boolean     NOT NULL DEFAULT false,
    resolved_at  timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX routed_incidents_firing ON routed_incidents (opened_at)
    WHERE resolved_at IS NULL AND NOT acknowledged;

-- One row per re-announcement: the n-th repeat interval of an incident on
-- a channel is claimed here before it is sent, so every replica and
-- restart sends it at most once.
CREATE TABLE incident_repeats (
    incident_id text        NOT NULL REFERENCES routed_incidents ON DELETE CASCADE,
    channel     text        NOT NULL,
    n           integer     NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (incident_id, channel, n)
);

-- +goose Down
DROP TABLE incident_repeats;
DROP TABLE routed_incidents;
DROP TABLE routing_versions;
