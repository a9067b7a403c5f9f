-- +goose Up
-- Incidents as incident.opened announced them: what an analysis is about,
-- kept so that one can be analysed again on request.
CREATE TABLE incidents (
    id           uuid        PRIMARY KEY,
    app          text        NOT NULL DEFAULT '',
    event        bytea       NOT NULL, -- vigil.types.v1.Incident, protobuf
    opened_at    timestamptz NOT NULL,
    received_at  timestamptz NOT NULL
);
CREATE INDEX incidents_received ON incidents (received_at);

-- Analyses waiting to run. A worker leases one (locked_until) outside any
-- transaction while it gathers and decides; a lease that runs out (a crash,
-- a stop) lets another worker take it again.
CREATE TABLE jobs (
    incident_id   uuid        PRIMARY KEY REFERENCES incidents (id) ON DELETE CASCADE,
    engine        text        NOT NULL DEFAULT '',
    requested_at  timestamptz NOT NULL,
    attempts      integer     NOT NULL DEFAULT 0,
    locked_until  timestamptz
);

-- Results. analysis is the vigil.analysis.v1.Analysis, protobuf.
CREATE TABLE analyses (
    id           uuid        PRIMARY KEY,
    incident_id  uuid        NOT NULL,
    created_at   timestamptz NOT NULL,
    engine       text        NOT NULL,
    analysis     bytea       NOT NULL
);
CREATE INDEX analyses_incident ON analyses (incident_id, created_at DESC);
CREATE INDEX analyses_created ON analyses (created_at DESC, id DESC);

-- Recent deployments, from deploy's events: a deploy shortly before an
-- incident is evidence.
CREATE TABLE deploys (
    deployment_id  text        PRIMARY KEY,
    app            text        NOT NULL,
    revision       bigint      NOT NULL DEFAULT 0,
    image          text        NOT NULL DEFAULT '',
    status         text        NOT NULL,
    at             timestamptz NOT NULL
);
CREATE INDEX deploys_app ON deploys (app, at DESC);

-- +goose Down
DROP TABLE deploys;
DROP TABLE analyses;
DROP TABLE jobs;
DROP TABLE incidents;
