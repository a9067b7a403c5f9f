-- +goose Up
-- Inhibition rules (services/monitor/internal/inhibit): the set in force,
-- as Alertmanager writes it (a JSON list of rules), with a version the API
-- checks before replacing it. from_file: the inhibition file
-- (VIGIL_INHIBIT_FILE) defines it, and the API does not change it.
CREATE TABLE inhibit_rules (
    id         int PRIMARY KEY CHECK (id = 1),
    rules      jsonb NOT NULL,
    version    bigint NOT NULL,
    from_file  boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL,
    updated_by text NOT NULL DEFAULT ''
);

-- Firing alerts that are sources of a rule, by key (the rule and the
-- values of its equal labels): a chunk's targets are looked up here in one
-- statement. both: the source matches the rule's target side too.
CREATE TABLE inhibit_sources (
    key         text NOT NULL,
    fingerprint text NOT NULL,
    starts_at   timestamptz NOT NULL,
    both_sides  boolean NOT NULL,
    PRIMARY KEY (key, fingerprint)
);
CREATE INDEX inhibit_sources_fingerprint ON inhibit_sources (fingerprint);

-- An inhibited alert is stored like a silenced one (no incident), with the
-- source alert that inhibits it and the key it was inhibited under; it is
-- released when no source holds that key any more.
ALTER TABLE alerts ADD COLUMN inhibited_by text;
ALTER TABLE alerts ADD COLUMN inhibit_key text;
CREATE INDEX alerts_inhibited ON alerts (inhibit_key) WHERE inhibited_by IS NOT NULL AND status = 'firing';

-- +goose Down
DROP INDEX alerts_inhibited;
ALTER TABLE alerts DROP COLUMN inhibit_key;
ALTER TABLE alerts DROP COLUMN inhibited_by;
DROP TABLE inhibit_sources;
DROP TABLE inhibit_rules;
