-- +goose Up
-- The webhook sources admins declare (SourceService): each has its own
-- URL, POST /api/v1/webhooks/sources/{name}. type says how its bodies are
-- read (generic: a CEL mapping, in settings); auth how its sender proves
-- who it is (key: a Vigil API key of its team; hmac: a signature with
-- secret, sealed (pkg/seal) under VIGIL_ENCRYPTION_KEY, bound to the
-- source's name).
CREATE TABLE sources (
    name        text        PRIMARY KEY,
    type        text        NOT NULL,
    team        text        NOT NULL DEFAULT '',
    auth        text        NOT NULL,
    secret      bytea,
    settings    jsonb       NOT NULL DEFAULT '{}',
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every change of sources bumps version in its transaction: each gateway
-- replica polls it and reloads its sources when it moved.
CREATE TABLE sources_version (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    version bigint  NOT NULL
);
INSERT INTO sources_version (version) VALUES (0);

-- +goose Down
DROP TABLE sources_version;
DROP TABLE sources;
