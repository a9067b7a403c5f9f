-- +goose Up
-- The template set a channel's messages are drawn with (a subdirectory
-- of VIGIL_NOTIFY_TEMPLATES_DIR), and the one a delivery was queued with
-- (its route's over its channel's), kept with it like its locale.
-- Empty: the default set.
ALTER TABLE channels ADD COLUMN templates text NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN templates text NOT NULL DEFAULT '';
-- A re-announcement is a delivery like any other now, its key
-- repeat/<incident>/<n> on its channel: the claims it had here are the
-- deliveries' own.
DROP TABLE incident_repeats;
-- The parts of a delivery its channel's provider accepted (an email's
-- copy per address, by its Message-ID), recorded as each is accepted: a
-- retry, after a restart too, sends only the others.
ALTER TABLE deliveries ADD COLUMN parts text[] NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE deliveries DROP COLUMN parts;
CREATE TABLE incident_repeats (
    incident_id text        NOT NULL REFERENCES routed_incidents ON DELETE CASCADE,
    channel     text        NOT NULL,
    n           integer     NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (incident_id, channel, n)
);
ALTER TABLE deliveries DROP COLUMN templates;
ALTER TABLE channels DROP COLUMN templates;
