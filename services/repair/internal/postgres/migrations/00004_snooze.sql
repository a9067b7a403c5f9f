-- +goose Up
-- When a snoozed approval ("Later") is to be asked again: set by the
-- snooze, cleared by the reminder. The repair's message keeps who
-- snoozed it and until when. A repair answered while snoozed keeps its
-- remind_at, so the index holds only the waiting ones, which the reminder
-- pass (every few seconds) looks for.
ALTER TABLE repairs ADD COLUMN remind_at timestamptz;
CREATE INDEX repairs_remind ON repairs (remind_at) WHERE remind_at IS NOT NULL AND status = 'PENDING_APPROVAL';

-- +goose Down
DROP INDEX repairs_remind;
ALTER TABLE repairs DROP COLUMN remind_at;
