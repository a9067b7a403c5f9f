-- +goose Up
-- Kubernetes clusters apps run on. The kubeconfig is sealed (pkg/seal,
-- AES-256-GCM, bound to the cluster's name): unreadable without the key.
CREATE TABLE clusters (
    name               text        PRIMARY KEY,
    server             text        NOT NULL,
    version            text        NOT NULL,
    kubeconfig_sealed  bytea       NOT NULL,
    created_at         timestamptz NOT NULL
);

CREATE TABLE apps (
    name            text        PRIMARY KEY,
    display_name    text        NOT NULL DEFAULT '',
    domain          text        NOT NULL DEFAULT '',
    framework       text        NOT NULL,
    plan            text        NOT NULL,
    image           text        NOT NULL,
    replicas        integer     NOT NULL DEFAULT 0,
    port            integer     NOT NULL DEFAULT 0,
    env             jsonb       NOT NULL DEFAULT '{}',
    -- Sealed JSON object of name -> value, bound to the app's name.
    secrets_sealed  bytea,
    secret_names    text[]      NOT NULL DEFAULT '{}',
    owner           text        NOT NULL DEFAULT '',
    cluster         text        NOT NULL REFERENCES clusters (name),
    namespace       text        NOT NULL,
    auto_repair     boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX apps_cluster ON apps (cluster);

-- One row per revision of an app. spec is everything rendered for it
-- (framework, plan, image, replicas, port, env, domain...) and
-- secrets_sealed the secrets then, so a rollback restores exactly what ran.
CREATE TABLE deployments (
    id              uuid        PRIMARY KEY,
    app             text        NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
    revision        bigint      NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('deploy', 'rollback')),
    rollback_to     bigint      NOT NULL DEFAULT 0,
    image           text        NOT NULL,
    config_hash     text        NOT NULL,
    cluster         text        NOT NULL,
    spec            jsonb       NOT NULL,
    secrets_sealed  bytea,
    requested_by    text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
    reason          text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    started_at      timestamptz,
    ended_at        timestamptz,
    UNIQUE (app, revision)
);
-- At most one deployment of an app under way.
CREATE UNIQUE INDEX deployments_one_active_per_app ON deployments (app) WHERE status IN ('pending', 'running');

CREATE TABLE deployment_steps (
    deployment_id  uuid        NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    seq            smallint    NOT NULL,
    name           text        NOT NULL,
    status         text        NOT NULL CHECK (status IN ('pending', 'running', 'done', 'skipped', 'failed')),
    message        text        NOT NULL DEFAULT '',
    started_at     timestamptz,
    ended_at       timestamptz,
    PRIMARY KEY (deployment_id, seq)
);

-- +goose Down
DROP TABLE deployment_steps;
DROP TABLE deployments;
DROP TABLE apps;
DROP TABLE clusters;
