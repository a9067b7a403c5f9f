package outbox

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
)

// Handler is a bus.BatchHandler that handles a whole batch in one
// transaction: each delivery in its own savepoint, skipped when the inbox
// says this consumer already handled its event, recorded in the inbox
// otherwise. A delivery whose handler fails is rolled back alone; the others
// commit together.
type Handler struct {
	pool     *pgxpool.Pool
	consumer string
	router   *bus.Router[pgx.Tx]
	onCommit func(n int)
}

// NewHandler returns a Handler running router's handlers for the named
// consumer.
func NewHandler(pool *pgxpool.Pool, consumer string, router *bus.Router[pgx.Tx]) *Handler {
	return &Handler{pool: pool, consumer: consumer, router: router}
}

// OnCommit has f called once a batch of n deliveries has committed: what
// the handlers queued is visible then (wake the workers that take it; a
// wake-up from inside the transaction would find nothing yet).
func (h *Handler) OnCommit(f func(n int)) *Handler {
	h.onCommit = f
	return h
}

// HandleBatch implements bus.BatchHandler.
func (h *Handler) HandleBatch(ctx context.Context, ds []*bus.Delivery) []error {
	results := make([]error, len(ds))
	fail := func(err error) []error {
		for i := range results {
			results[i] = err
		}
		return results
	}
	// A delivery's failure is its own result: the batch commits the
	// others (each delivery is a savepoint).
	err := db.InTx(ctx, h.pool, func(tx pgx.Tx) error {
		for i, d := range ds {
			results[i] = h.handleOne(ctx, tx, d)
		}
		return nil
	})
	if err != nil {
		return fail(fmt.Errorf("batch: %w", err))
	}
	if h.onCommit != nil {
		h.onCommit(len(ds))
	}
	return results
}

func (h *Handler) handleOne(ctx context.Context, tx pgx.Tx, d *bus.Delivery) error {
	return db.InTx(ctx, tx, func(sp pgx.Tx) error {
		tag, err := sp.Exec(ctx, `
			INSERT INTO processed_events (consumer, event_id, subject) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING`, h.consumer, d.Event.GetMeta().GetId(), d.Subject)
		if err != nil {
			return fmt.Errorf("inbox: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil // handled before: a redelivery changes nothing
		}
		return h.router.Dispatch(sp, d)
	})
}
