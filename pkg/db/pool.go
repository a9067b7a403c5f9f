package db

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// DefaultStatementTimeout bounds every statement of a pool from Open,
// unless StatementTimeout says otherwise: a runaway query (a regex over
// every alert, a lock held by a stuck transaction) fails instead of
// holding a connection, and its locks, for ever.
const DefaultStatementTimeout = 30 * time.Second

// DefaultConnectTimeout bounds making a connection (TCP, TLS and the
// startup handshake) unless the DSN says otherwise (connect_timeout): a
// server that is cut off rather than down (no answer instead of a refusal)
// fails a call in seconds, as an unavailable database (Unavailable), instead
// of holding it for the kernel's two minutes of TCP retries.
const DefaultConnectTimeout = 10 * time.Second

// OpenOption tunes Open.
type OpenOption func(*openConfig)

type openConfig struct {
	statementTimeout time.Duration
	login            *Login
}

// StatementTimeout sets the statement_timeout of every connection of the
// pool; 0 turns it off. Migrate runs without it (see Migrate).
func StatementTimeout(d time.Duration) OpenOption {
	return func(c *openConfig) { c.statementTimeout = d }
}

// As logs in as l instead of the user and password of the dsn, keeping
// the rest (host, database, TLS): a service logs in as its own role
// (Bootstrap) to the database the process was given.
func As(l Login) OpenOption {
	return func(c *openConfig) { c.login = &l }
}

// Open connects a pool to dsn whose search_path is schema alone, so a
// service's unqualified table names live in, and only see, its own schema.
// The schema need not exist yet (Migrate creates it). Every connection has
// a statement_timeout (DefaultStatementTimeout unless StatementTimeout
// says otherwise). Open pings the server before returning.
func Open(ctx context.Context, dsn, schema string, opts ...OpenOption) (*pgxpool.Pool, error) {
	oc := openConfig{statementTimeout: DefaultStatementTimeout}
	for _, o := range opts {
		o(&oc)
	}
	if err := validateSchema(schema); err != nil {
		return nil, err
	}
	if oc.statementTimeout < 0 {
		return nil, fmt.Errorf("db: statement timeout %s: must not be negative", oc.statementTimeout)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("db: parse dsn: %w", err) // pgx redacts the password
	}
	if oc.login != nil {
		cfg.ConnConfig.User, cfg.ConnConfig.Password = oc.login.Role, oc.login.Password
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	// A startup parameter, so it holds on every connection the pool ever
	// makes, and a statement can still SET LOCAL a longer one.
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = milliseconds(oc.statementTimeout)
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

// milliseconds is d as a PostgreSQL duration setting, rounded up so that
// a positive d never becomes 0 (off).
func milliseconds(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Millisecond-1)/time.Millisecond), 10)
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
