-- +goose Up
-- Repairs: one per analysis that proposed an action (analysis_id is
-- unique: a redelivered analysis.completed makes no second repair). The
-- row is also the work queue: a worker leases it (locked_until) outside
-- any transaction while it plans, executes or verifies; a lease that runs
-- out (a crash, a stop) lets another worker take it again, and executors
-- are idempotent by the repair's id.
CREATE TABLE repairs (
    id              uuid        PRIMARY KEY,
    analysis_id     uuid        NOT NULL UNIQUE,
    incident_id     uuid        NOT NULL,
    app             text        NOT NULL DEFAULT '',
    -- "cluster/namespace/Kind/name": what counters and cooldowns count by.
    resource        text        NOT NULL,
    action          text        NOT NULL,
    -- PROPOSED (deciding), PENDING_APPROVAL, QUEUED, RUNNING, VERIFYING,
    -- SUCCEEDED, FAILED, REJECTED, BLOCKED, EXPIRED, DRY_RUN.
    status          text        NOT NULL,
    -- Executed without a person: counts against the hourly limits from
    -- the moment it is decided.
    automatic       boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    decided_at      timestamptz,
    expires_at      timestamptz,
    cooldown_until  timestamptz,
    locked_until    timestamptz,
    attempts        integer     NOT NULL DEFAULT 0,
    -- vigil.repair.v1.Repair (without its steps), protobuf.
    repair          bytea       NOT NULL,
    -- What the executor returned, for verification and undo (JSON).
    result          jsonb
);
CREATE INDEX repairs_created ON repairs (created_at DESC, id DESC);
CREATE INDEX repairs_incident ON repairs (incident_id, created_at DESC);
CREATE INDEX repairs_resource ON repairs (resource, decided_at DESC);
CREATE INDEX repairs_automatic ON repairs (decided_at) WHERE automatic;
CREATE INDEX repairs_work ON repairs (updated_at) WHERE status IN ('PROPOSED', 'QUEUED', 'RUNNING', 'VERIFYING');
CREATE INDEX repairs_pending ON repairs (expires_at) WHERE status = 'PENDING_APPROVAL';

-- The timeline of each repair: every proposal, decision, answer (who,
-- from where), execution and verification.
CREATE TABLE repair_steps (
    repair_id  uuid        NOT NULL REFERENCES repairs (id) ON DELETE CASCADE,
    seq        bigserial,
    at         timestamptz NOT NULL,
    kind       text        NOT NULL,
    actor      text        NOT NULL DEFAULT '',
    channel    text        NOT NULL DEFAULT '',
    message    text        NOT NULL DEFAULT '',
    PRIMARY KEY (repair_id, seq)
);

-- Guardrails set through the API, by scope ("global", "app/<name>",
-- "namespace/<cluster>/<namespace>"); vigil.repair.v1.Guardrails, protobuf.
CREATE TABLE guardrails (
    scope       text        PRIMARY KEY,
    guardrails  bytea       NOT NULL,
    updated_at  timestamptz NOT NULL,
    updated_by  text        NOT NULL
);

-- +goose Down
DROP TABLE guardrails;
DROP TABLE repair_steps;
DROP TABLE repairs;
