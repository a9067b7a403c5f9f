-- +goose Up
-- When a snoozed approval ("Later") is to be asked again: set by the
-- snooze, cleared by the reminder. The repair's message keeps who
-- snoozed it and until when.
ALTER TABLE repairs ADD COLUMN remind_at timestamptz;
CREATE INDEX repairs_remind ON repairs (remind_at) WHERE remind_at IS NOT NULL;

-- +goose Down
DROP INDEX repairs_remind;
ALTER TABLE repairs DROP COLUMN remind_at;
