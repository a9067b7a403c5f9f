-- +goose Up
-- The Telegram updates handled, by bot: Telegram delivers an update again
-- when it did not see it acknowledged (a webhook answer lost, a poller
-- gone before confirming), and each must be handled once, whichever
-- replica and whichever way (webhook or getUpdates) it arrives. A row is
-- written before the update is handled; rows older than two days are
-- pruned (Telegram keeps an unconfirmed update for 24 hours).
CREATE TABLE telegram_updates (
    bot_id       text        NOT NULL,
    update_id    bigint      NOT NULL,
    received_at  timestamptz NOT NULL,
    PRIMARY KEY (bot_id, update_id)
);
CREATE INDEX telegram_updates_received ON telegram_updates (received_at);

-- The secret_token the gateway generated for a bot's webhook when none was
-- configured: the first replica to start makes it, the others read it, so
-- every replica verifies the same X-Telegram-Bot-Api-Secret-Token.
CREATE TABLE telegram_webhook_secrets (
    bot_id      text        PRIMARY KEY,
    secret      text        NOT NULL,
    created_at  timestamptz NOT NULL
);

-- +goose Down
DROP TABLE telegram_webhook_secrets;
DROP TABLE telegram_updates;
