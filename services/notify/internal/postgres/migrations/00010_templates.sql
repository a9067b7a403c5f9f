-- +goose Up
-- The template set a channel's messages are drawn with (a subdirectory
-- of VIGIL_NOTIFY_TEMPLATES_DIR), and the one a delivery was queued with
-- (its route's over its channel's), kept with it like its locale.
-- Empty: the default set.
ALTER TABLE channels ADD COLUMN templates text NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN templates text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE deliveries DROP COLUMN templates;
ALTER TABLE channels DROP COLUMN templates;
