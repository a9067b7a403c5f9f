package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-ops/vigil/pkg/db"
)

// pruneChunk bounds the deliveries one statement deletes (their attempts go
// with them), so pruning never holds locks long or makes one huge
// transaction.
const pruneChunk = 1000

// Prune deletes the deliveries, and their attempts, last touched before
// before, in statements of bounded size, each its own transaction; it
// returns how many it deleted, and stops early when ctx ends. Rows another
// transaction holds (a delivery being recorded) are skipped, not waited for.
//
// Enqueue relies on these rows to not send a redelivered event twice, so
// before must lie further back than an event is still handled (notify's
// max event age).
func (d *Deliveries) Prune(ctx context.Context, before time.Time) (int64, error) {
	n, err := db.DeleteInBatches(ctx, d.pool, pruneChunk, `DELETE FROM deliveries d USING (
			SELECT event_id, channel FROM deliveries WHERE updated_at < $1
			LIMIT $2 FOR UPDATE SKIP LOCKED
		) old WHERE d.event_id = old.event_id AND d.channel = old.channel`, before)
	if err != nil {
		return n, fmt.Errorf("prune deliveries: %w", err)
	}
	return n, nil
}
