-- +goose Up
-- LINE accounts may be linked to users, like Telegram's and Slack's.
ALTER TABLE chat_identities DROP CONSTRAINT chat_identities_provider_check;
ALTER TABLE chat_identities ADD CONSTRAINT chat_identities_provider_check CHECK (provider IN ('telegram', 'slack', 'line'));
ALTER TABLE chat_link_codes DROP CONSTRAINT chat_link_codes_provider_check;
ALTER TABLE chat_link_codes ADD CONSTRAINT chat_link_codes_provider_check CHECK (provider IN ('telegram', 'slack', 'line'));

-- The LINE webhook events handled, by webhookEventId: LINE sends an event
-- again (deliveryContext.isRedelivery) when it did not see the webhook
-- answered, to whichever replica, and each must be handled once. A row is
-- written before the event is handled; rows older than two days are
-- pruned (LINE redelivers for a day at most).
CREATE TABLE line_events (
    event_id     text        PRIMARY KEY,
    received_at  timestamptz NOT NULL
);
CREATE INDEX line_events_received ON line_events (received_at);

-- +goose Down
DROP TABLE line_events;
DELETE FROM chat_link_codes WHERE provider = 'line';
DELETE FROM chat_identities WHERE provider = 'line';
ALTER TABLE chat_link_codes DROP CONSTRAINT chat_link_codes_provider_check;
ALTER TABLE chat_link_codes ADD CONSTRAINT chat_link_codes_provider_check CHECK (provider IN ('telegram', 'slack'));
ALTER TABLE chat_identities DROP CONSTRAINT chat_identities_provider_check;
ALTER TABLE chat_identities ADD CONSTRAINT chat_identities_provider_check CHECK (provider IN ('telegram', 'slack'));
