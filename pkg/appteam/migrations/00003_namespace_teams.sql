-- +goose Up
-- Namespaces an admin mapped to teams (deploy's namespace.* events): the
-- owners of workloads Vigil did not deploy. cluster '' is any cluster. A
-- removed mapping keeps its row (deleted), as app_teams does.
CREATE TABLE namespace_teams (
    cluster      text        NOT NULL,
    namespace    text        NOT NULL,
    team         text        NOT NULL,
    deleted      boolean     NOT NULL DEFAULT false,
    occurred_at  timestamptz NOT NULL,
    PRIMARY KEY (namespace, cluster)
);
CREATE INDEX app_teams_namespace ON app_teams (namespace) WHERE NOT deleted;

-- +goose Down
DROP INDEX app_teams_namespace;
DROP TABLE namespace_teams;
