-- +goose Up
-- Pruning finds deliveries past retention by their last activity.
CREATE INDEX deliveries_updated_at ON deliveries (updated_at);

-- +goose Down
DROP INDEX deliveries_updated_at;
