package postgres

import (
	"context"
	"fmt"
	"time"
)

// pruneChunk bounds the rows one statement deletes, so pruning never holds
// locks long or makes one huge transaction.
const pruneChunk = 1000

// Pruner runs Prune's statements: a pool or a transaction.
type Pruner interface {
	Execer
	Querier
}

// Pruned counts what Prune deleted.
type Pruned struct {
	Incidents, SilencedAlerts, Resolutions, Silences int64
}

// Prune deletes what is older than before: incidents resolved before it
// (their alerts with them), silenced alerts last seen before it, the
// resolutions of alert instances that ended before it, and silences that
// ended before it. Each in statements of
// bounded size, each its own transaction; it stops early when ctx ends.
func (Store) Prune(ctx context.Context, q Pruner, before time.Time) (Pruned, error) {
	var p Pruned
	steps := []struct {
		n   *int64
		sql string
	}{
		{&p.Incidents, `DELETE FROM incidents WHERE id IN (SELECT id FROM incidents
			WHERE status = 'resolved' AND resolved_at < $1 LIMIT $2)`},
		{&p.SilencedAlerts, `DELETE FROM alerts WHERE ctid IN (SELECT ctid FROM alerts
			WHERE incident_id IS NULL AND last_seen_at < $1 LIMIT $2)`},
		{&p.Resolutions, `DELETE FROM alert_resolutions WHERE ctid IN (SELECT ctid FROM alert_resolutions
			WHERE ends_at < $1 LIMIT $2)`},
	}
	for _, s := range steps {
		for ctx.Err() == nil {
			tag, err := q.Exec(ctx, s.sql, before, pruneChunk)
			if err != nil {
				return p, fmt.Errorf("prune: %w", err)
			}
			*s.n += tag.RowsAffected()
			if tag.RowsAffected() < pruneChunk {
				break
			}
		}
	}
	if ctx.Err() == nil {
		var err error
		if p.Silences, err = (Silences{}).Prune(ctx, q, before); err != nil {
			return p, err
		}
	}
	return p, nil
}
