-- +goose Up
-- Namespaces an admin mapped to teams (vigil namespaces map): who owns the
-- incidents about workloads Vigil did not deploy. cluster '' is any
-- cluster without a mapping of its own.
CREATE TABLE namespace_mappings (
    cluster     text        NOT NULL,
    namespace   text        NOT NULL,
    team        text        NOT NULL,
    updated_by  text        NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (namespace, cluster)
);

-- +goose Down
DROP TABLE namespace_mappings;
