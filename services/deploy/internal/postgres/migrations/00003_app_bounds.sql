-- +goose Up
-- An app's domain is its Ingress host and the name on its certificate:
-- two apps with one host would let one team serve, and get the
-- certificate of, another's. Hosts compare without case or trailing dot.
-- Apps that share a host (possible before this migration) leave it to
-- the app that had it first; the others lose their domain, and their
-- next deploy removes their Ingress.
UPDATE apps SET domain = '' WHERE name IN (
    SELECT name FROM (
        SELECT name, row_number() OVER (PARTITION BY lower(rtrim(domain, '.')) ORDER BY created_at, name) AS n
        FROM apps WHERE domain <> ''
    ) shared WHERE n > 1
);
UPDATE apps SET domain = lower(rtrim(domain, '.')) WHERE domain <> '';
CREATE UNIQUE INDEX apps_domain_unique ON apps (lower(rtrim(domain, '.'))) WHERE domain <> '';

-- The namespaces deleted apps left behind (deleted without their
-- resources: the namespace, labelled as the app's, and what is in it
-- stayed), with the team they were left by. A new app of the same name
-- would adopt that namespace; one of another team may do so only when
-- an admin says so (CreateAppRequest.adopt_namespace).
CREATE TABLE namespace_tombstones (
    cluster     text        NOT NULL REFERENCES clusters (name) ON DELETE CASCADE,
    namespace   text        NOT NULL,
    app         text        NOT NULL,
    owner       text        NOT NULL,
    deleted_by  text        NOT NULL,
    deleted_at  timestamptz NOT NULL,
    PRIMARY KEY (cluster, namespace)
);

-- +goose Down
DROP TABLE namespace_tombstones;
DROP INDEX apps_domain_unique;
