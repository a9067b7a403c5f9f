-- +goose Up
-- The user a key acts for: the user who made it, or the user behind the
-- key that made it; '' for keys made with the bootstrap token. A key works
-- only while its owner is not disabled, so that disabling a person stops
-- the machines they gave keys to as well.
ALTER TABLE api_keys ADD COLUMN owner text NOT NULL DEFAULT '';
UPDATE api_keys SET owner = substr(created_by, length('user:') + 1) WHERE created_by LIKE 'user:%';
CREATE INDEX api_keys_owner ON api_keys (owner) WHERE owner <> '';

-- +goose Down
DROP INDEX api_keys_owner;
ALTER TABLE api_keys DROP COLUMN owner;
