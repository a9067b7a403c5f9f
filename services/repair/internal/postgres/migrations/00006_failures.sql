-- +goose Up
-- Failed tries of a repair's current step in a row (Store.Failed): the
-- worker gives up after a few. attempts counts leases — every poll of a
-- verification takes one — and is the lease holder's token, so it is no
-- count of failures. A transition that hands the repair to the workers
-- for its next step starts the count again.
ALTER TABLE repairs ADD COLUMN failures integer NOT NULL DEFAULT 0;
-- Leases of the current step since it last went well (a poll, a
-- transition): a try whose worker died or was stopped in it fails
-- nothing, so only this counts it, and a step that never finishes is
-- given up all the same (Store.Lease).
ALTER TABLE repairs ADD COLUMN tries integer NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE repairs DROP COLUMN tries;
ALTER TABLE repairs DROP COLUMN failures;
