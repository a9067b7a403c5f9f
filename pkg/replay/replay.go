// Package replay keeps, in a service's own schema, the ids (jti) of the
// one-use assertions the service accepted until they expire, so that each
// is accepted once by all its replicas together: an assertion captured on
// the way between two services cannot be played again.
package replay

import (
	"context"
	"embed"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-ops/vigil/pkg/db"
)

// Migrations create the spent_assertions table.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Migrate creates spent_assertions in schema; its version is kept apart
// from the service's own migrations.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	return db.Migrate(ctx, pool, schema, db.Sub(Migrations, "migrations"), db.VersionTable("goose_replay_version"))
}

// pruneEvery is how often Run deletes expired ids. They are harmless
// until then (an expired assertion fails verification first), so this
// only bounds the table.
const pruneEvery = time.Minute

// Store records spent ids in a pool's schema (after Migrate). It
// implements auth.Spender.
type Store struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

// New returns the Store of pool's schema.
func New(pool *pgxpool.Pool, log *slog.Logger) *Store {
	return &Store{pool: pool, log: log.With("component", "replay")}
}

// Spend records id as used until until; fresh is false when it was used
// already. One statement: the primary key decides between replicas.
func (s *Store) Spend(ctx context.Context, id string, until time.Time) (fresh bool, err error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO spent_assertions (jti, expires_at) VALUES ($1, $2)
		ON CONFLICT (jti) DO NOTHING`, id, until)
	if err != nil {
		return false, fmt.Errorf("replay: spend %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Prune deletes the ids that expired before now.
func (s *Store) Prune(ctx context.Context, now time.Time) (int64, error) {
	n, err := db.DeleteInBatches(ctx, s.pool, 10000, `DELETE FROM spent_assertions WHERE jti IN (
		SELECT jti FROM spent_assertions WHERE expires_at < $1 LIMIT $2)`, now)
	if err != nil {
		return n, fmt.Errorf("replay: prune: %w", err)
	}
	return n, nil
}

// Run prunes expired ids every minute until ctx ends.
func (s *Store) Run(ctx context.Context) error {
	return db.Retention{
		What: "spent assertions", Every: pruneEvery, Log: s.log,
		Prune: func(ctx context.Context) (int64, error) { return s.Prune(ctx, time.Now()) },
	}.Run(ctx)
}
