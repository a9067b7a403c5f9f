-- +goose Up
-- One row per event per channel: what was sent where, and its state.
CREATE TABLE deliveries (
    event_id    text        NOT NULL,
    channel     text        NOT NULL,
    subject     text        NOT NULL,
    target      text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('sent', 'retrying', 'failed')),
    attempts    integer     NOT NULL DEFAULT 0,
    last_error  text        NOT NULL DEFAULT '',
    message_id  text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, channel)
);

-- Every attempt to send, successful or not.
CREATE TABLE delivery_attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    text        NOT NULL,
    channel     text        NOT NULL,
    attempt     integer     NOT NULL,
    outcome     text        NOT NULL CHECK (outcome IN ('sent', 'retry', 'failed')),
    http_status integer     NOT NULL DEFAULT 0,
    error       text        NOT NULL DEFAULT '',
    retry_after interval,
    at          timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (event_id, channel) REFERENCES deliveries (event_id, channel) ON DELETE CASCADE
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (event_id, channel);

-- +goose Down
DROP TABLE delivery_attempts;
DROP TABLE deliveries;
