-- +goose Up
-- Failed logins in a row, per name tried (whether or not a user has it,
-- so that a lock tells nothing about who exists), shared by every
-- replica: the bound on guessing a password. A row goes when its user
-- logs in, or is pruned once its failures and lock are old.
CREATE TABLE login_failures (
    name             text        PRIMARY KEY,
    failures         integer     NOT NULL,
    last_failure_at  timestamptz NOT NULL,
    locked_until     timestamptz
);
CREATE INDEX login_failures_last ON login_failures (last_failure_at);

-- +goose Down
DROP TABLE login_failures;
