package db

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Open connects a pool to dsn whose search_path is schema alone, so a
// service's unqualified table names live in, and only see, its own schema.
// The schema need not exist yet (Migrate creates it). Open pings the server
// before returning.
func Open(ctx context.Context, dsn, schema string) (*pgxpool.Pool, error) {
	if err := validateSchema(schema); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("db: parse dsn: %w", err) // pgx redacts the password
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("db: open pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("db: ping: %w", err)
	}
	return pool, nil
}

// validateSchema accepts lowercase identifiers only, so a schema's name is
// the same quoted or not.
func validateSchema(schema string) error {
	switch {
	case schema == "":
		return errors.New("db: schema: missing")
	case len(schema) > 63:
		return fmt.Errorf("db: schema %q: longer than 63 bytes", schema)
	case !schemaName.MatchString(schema):
		return fmt.Errorf("db: schema %q: must be a lowercase identifier (a-z, 0-9, _)", schema)
	case strings.HasPrefix(schema, "pg_"):
		return fmt.Errorf("db: schema %q: the pg_ prefix is reserved for system schemas", schema)
	}
	return nil
}
