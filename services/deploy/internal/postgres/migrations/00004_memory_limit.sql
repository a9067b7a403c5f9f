-- +goose Up
-- The app container's memory limit when a repair (or a person) raised it
-- above the plan's; 0: the plan's. Deployments keep it in their spec.
ALTER TABLE apps ADD COLUMN memory_limit_bytes bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE apps DROP COLUMN memory_limit_bytes;
