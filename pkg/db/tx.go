package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Beginner begins a transaction: a pool, a connection, or a transaction
// (whose Begin is a savepoint).
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// InTx runs fn in a transaction, Vigil's one way to run one: it commits
// when fn returns nil and rolls back otherwise, also when fn panics or
// ctx is done (the rollback outlives ctx, so the connection goes back to
// the pool clean). fn's error is returned as it is, so callers can match
// their own sentinels. On a transaction, fn runs in a savepoint.
func InTx(ctx context.Context, b Beginner, fn func(pgx.Tx) error) (err error) {
	tx, err := b.Begin(ctx)
	if err != nil {
		return fmt.Errorf("db: begin transaction: %w", err)
	}
	defer func() {
		// After a commit this is a no-op returning ErrTxClosed. It runs even
		// when ctx is done, so the connection goes back to the pool clean.
		rbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if rbErr := tx.Rollback(rbCtx); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) && err != nil {
			err = errors.Join(err, fmt.Errorf("db: roll back transaction: %w", rbErr))
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("db: commit transaction: %w", err)
	}
	return nil
}
