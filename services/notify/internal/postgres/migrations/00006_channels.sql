-- +goose Up
-- Channels managed through the API (ChannelService): where notify writes,
-- besides the channels of the environment. The credential (bot token,
-- access token, SMTP password, webhook secret) is sealed (pkg/seal) under
-- VIGIL_ENCRYPTION_KEY, bound to the channel's name.
CREATE TABLE channels (
    name        text        PRIMARY KEY,
    kind        text        NOT NULL,
    target      text        NOT NULL,
    settings    jsonb       NOT NULL DEFAULT '{}',
    credential  bytea,
    language    text        NOT NULL DEFAULT '',
    time_zone   text        NOT NULL DEFAULT '',
    team        text        NOT NULL DEFAULT '',
    user_name   text        NOT NULL DEFAULT '',
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX channels_user ON channels (user_name) WHERE user_name <> '';

-- Every change of channels bumps version in its transaction: each notify
-- replica polls it and reloads its channels when it moved.
CREATE TABLE channels_version (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    version bigint  NOT NULL
);
INSERT INTO channels_version (version) VALUES (0);

-- +goose Down
DROP TABLE channels_version;
DROP TABLE channels;
