-- +goose Up
-- The team a silence belongs to: the owner of the namespace its matchers
-- confine it to ('' for silences made before, and for admins' silences of
-- no namespace: only admins and the default team may expire those).
ALTER TABLE silences ADD COLUMN team text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE silences DROP COLUMN team;
