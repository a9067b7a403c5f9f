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

-- +goose Down
DROP INDEX apps_domain_unique;
