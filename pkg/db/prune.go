package db

import (
	"context"

	"github.com/jackc/pgx/v5/pgconn"
)

// Execer runs a statement: a pool, a connection or a transaction.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// DeleteInBatches runs sql, a DELETE of at most batch rows whose limit is
// its last parameter (after args), until it deletes fewer than batch: a
// backlog (after a storm, or downtime) is cleared a batch per statement,
// each well inside the pool's statement_timeout, instead of one statement
// that never finishes. It returns the rows deleted, those of the batches
// done when it fails too.
func DeleteInBatches(ctx context.Context, q Execer, batch int, sql string, args ...any) (int64, error) {
	args = append(args, batch)
	var total int64
	for {
		tag, err := q.Exec(ctx, sql, args...)
		if err != nil {
			return total, err
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(batch) {
			return total, nil
		}
	}
}
