-- +goose Up
-- in_doubt: an earlier attempt may have reached the provider without its
-- answer being recorded (its sender died, lost its database, or gave up
-- waiting): the next attempt first asks the provider where it can
-- (Slack), and otherwise sends again with its key (LINE, a webhook) or
-- marked as a possible repeat (Telegram, email). posted_at: when the
-- first attempt that may have reached the provider was claimed, the
-- earliest its message can be there.
ALTER TABLE deliveries
    ADD COLUMN in_doubt  boolean NOT NULL DEFAULT false,
    ADD COLUMN posted_at timestamptz;
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_outcome_check;
ALTER TABLE delivery_attempts ADD CONSTRAINT delivery_attempts_outcome_check
    CHECK (outcome IN ('sent', 'retry', 'failed', 'unknown', 'in_doubt'));

-- +goose Down
UPDATE delivery_attempts SET outcome = 'unknown' WHERE outcome = 'in_doubt';
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_outcome_check;
ALTER TABLE delivery_attempts ADD CONSTRAINT delivery_attempts_outcome_check
    CHECK (outcome IN ('sent', 'retry', 'failed', 'unknown'));
ALTER TABLE deliveries DROP COLUMN posted_at, DROP COLUMN in_doubt;
