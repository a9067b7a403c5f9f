-- +goose Up
-- The kind of incident an analysis was about ("alertname/Kind"), as
-- analysis.completed announced it: what a repair's outcome is learned by.
ALTER TABLE analyses ADD COLUMN signature text NOT NULL DEFAULT '';

-- Playbooks: how often an action, proposed for a kind of incident, was
-- verified to work (repair.succeeded) or not (repair.failed). Learned, so
-- kept past the retention of the analyses they were learned from; bounded
-- by the kinds of incident times the actions.
CREATE TABLE playbooks (
    signature        text        NOT NULL,
    action           text        NOT NULL, -- vigil.types.v1.RepairAction, by name
    successes        integer     NOT NULL DEFAULT 0,
    failures         integer     NOT NULL DEFAULT 0,
    last_outcome     text        NOT NULL, -- "succeeded" or "failed"
    last_outcome_at  timestamptz NOT NULL,
    PRIMARY KEY (signature, action)
);

-- +goose Down
DROP TABLE playbooks;
ALTER TABLE analyses DROP COLUMN signature;
