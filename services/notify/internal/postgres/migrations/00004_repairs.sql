-- +goose Up
-- The repair a delivery is about (an approval card, its decision, the
-- repair's progress), so that a decision can edit the card it answers.
-- Deliveries recorded before this column existed are about no repair.
ALTER TABLE deliveries ADD COLUMN repair_id text NOT NULL DEFAULT '';
CREATE INDEX deliveries_repair ON deliveries (repair_id, channel, target)
    WHERE repair_id <> '';

-- What an approval card shows, by repair: the request and, once known,
-- the decision, each the event as protobuf JSON. A decision draws the
-- card again with its outcome, in every chat; a card that goes out after
-- its decision goes out decided, without buttons.
CREATE TABLE approval_cards (
    repair_id  text        PRIMARY KEY,
    request    jsonb,
    decision   jsonb,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX approval_cards_updated_at ON approval_cards (updated_at);

-- +goose Down
DROP TABLE approval_cards;
DROP INDEX deliveries_repair;
ALTER TABLE deliveries DROP COLUMN repair_id;
