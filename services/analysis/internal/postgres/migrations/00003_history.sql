-- +goose Up
-- The outcome of the repair of an analysis' incident, on the analysis the
-- outcome was learned by: what a later incident of the same kind shows as
-- its history.
ALTER TABLE analyses ADD COLUMN outcome_action text NOT NULL DEFAULT ''; -- vigil.types.v1.RepairAction, by name
ALTER TABLE analyses ADD COLUMN outcome_succeeded boolean;
ALTER TABLE analyses ADD COLUMN outcome_at timestamptz;
CREATE INDEX analyses_signature ON analyses (signature, created_at DESC) WHERE signature <> '';

-- +goose Down
DROP INDEX analyses_signature;
ALTER TABLE analyses DROP COLUMN outcome_at;
ALTER TABLE analyses DROP COLUMN outcome_succeeded;
ALTER TABLE analyses DROP COLUMN outcome_action;
