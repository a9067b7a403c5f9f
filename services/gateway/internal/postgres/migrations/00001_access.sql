-- +goose Up
-- People who log in. The password is an argon2id PHC string.
CREATE TABLE users (
    name           text        PRIMARY KEY,
    email          text        NOT NULL DEFAULT '',
    role           text        NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    teams          text[]      NOT NULL DEFAULT '{}',
    password_hash  text        NOT NULL,
    disabled       boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    last_login_at  timestamptz
);

-- A login. The refresh token is single use: refresh_hash is the current
-- one; used_refresh_tokens holds those it replaced.
CREATE TABLE sessions (
    id             uuid        PRIMARY KEY,
    user_name      text        NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    refresh_hash   bytea       NOT NULL UNIQUE,
    created_at     timestamptz NOT NULL,
    refreshed_at   timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz
);
CREATE INDEX sessions_user ON sessions (user_name);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Every refresh token a session has replaced. Presented again, one was
-- copied, and its session is revoked, however many refreshes ago it was
-- replaced. They go with their session.
CREATE TABLE used_refresh_tokens (
    hash        bytea       PRIMARY KEY,
    session_id  uuid        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    used_at     timestamptz NOT NULL
);
CREATE INDEX used_refresh_tokens_session ON used_refresh_tokens (session_id);

-- API keys: the SHA-256 of the secret, never the secret.
CREATE TABLE api_keys (
    id            uuid        PRIMARY KEY,
    name          text        NOT NULL,
    hash          bytea       NOT NULL UNIQUE,
    prefix        text        NOT NULL,
    scopes        text[]      NOT NULL,
    team          text        NOT NULL DEFAULT '',
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);

-- What was done through the API. id is a UUIDv7: time-ordered.
CREATE TABLE audit_log (
    id        uuid        PRIMARY KEY,
    at        timestamptz NOT NULL,
    actor     text        NOT NULL,
    method    text        NOT NULL,
    target    text        NOT NULL,
    code      text        NOT NULL,
    message   text        NOT NULL DEFAULT '',
    trace_id  text        NOT NULL DEFAULT '',
    peer      text        NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_actor ON audit_log (actor, at DESC);

-- +goose Down
DROP TABLE audit_log;
DROP TABLE api_keys;
DROP TABLE used_refresh_tokens;
DROP TABLE sessions;
DROP TABLE users;
