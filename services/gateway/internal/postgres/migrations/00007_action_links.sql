-- +goose Up
-- The email action links used, by their id: each acts once. A row is
-- written in the transaction that acts, so a link whose action failed
-- can be used again; it is kept until the link expires (Verify refuses it
-- after that anyway).
CREATE TABLE action_links_used (
    id          text        PRIMARY KEY,
    action      text        NOT NULL,
    target      uuid        NOT NULL,
    recipient   text        NOT NULL,
    used_at     timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX action_links_used_expires ON action_links_used (expires_at);

-- +goose Down
DROP TABLE action_links_used;
