-- +goose Up
-- The locale a route chose for a delivery (its language and time zone),
-- kept with it in the queue: the sender draws the message when it sends,
-- from the channel's name, and would otherwise fall back to the channel's
-- own locale. Empty: the channel's.
ALTER TABLE deliveries
    ADD COLUMN language text NOT NULL DEFAULT '',
    ADD COLUMN time_zone text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE deliveries DROP COLUMN language, DROP COLUMN time_zone;
