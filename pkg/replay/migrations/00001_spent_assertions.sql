-- +goose Up
-- The ids (jti) of the one-use assertions this service accepted, kept
-- until the assertion would no longer verify: a second use is refused, by
-- every replica.
CREATE TABLE spent_assertions (
    jti        text        PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX spent_assertions_expires_at ON spent_assertions (expires_at);

-- +goose Down
DROP TABLE spent_assertions;
