-- +goose Up
-- An admin allowed Vigil's repair identity to act in the mapped namespace.
ALTER TABLE namespace_mappings ADD COLUMN allow_repairs boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE namespace_mappings DROP COLUMN allow_repairs;
