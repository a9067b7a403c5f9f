-- +goose Up
-- Chat accounts linked to users: a button pressed in a chat is the act of
-- the account's user. One account per provider and user, one user per
-- account: a new link replaces the old one either way.
CREATE TABLE chat_identities (
    provider     text        NOT NULL CHECK (provider IN ('telegram', 'slack')),
    external_id  text        NOT NULL,
    user_name    text        NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    linked_at    timestamptz NOT NULL,
    linked_by    text        NOT NULL,
    PRIMARY KEY (provider, external_id),
    UNIQUE (provider, user_name)
);
CREATE INDEX chat_identities_user ON chat_identities (user_name);

-- One-time codes a user sends to a bot to link the account that sends
-- it: the SHA-256 of the code, never the code. Redeeming deletes it.
CREATE TABLE chat_link_codes (
    hash        bytea       PRIMARY KEY,
    user_name   text        NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    provider    text        NOT NULL CHECK (provider IN ('telegram', 'slack')),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX chat_link_codes_user ON chat_link_codes (user_name, created_at DESC);
CREATE INDEX chat_link_codes_expires ON chat_link_codes (expires_at);

-- +goose Down
DROP TABLE chat_link_codes;
DROP TABLE chat_identities;
