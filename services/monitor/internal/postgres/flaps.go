package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-ops/vigil/services/monitor/internal/incident"
)

var _ incident.FlapStore = Store{}

// Cycles implements incident.FlapStore: one index range per fingerprint
// (alert_resolutions' key), in one statement. A cycle is a firing, known
// by its start, that is known to have resolved: a resolution delivered
// twice counts once.
func (Store) Cycles(ctx context.Context, tx pgx.Tx, fps []string, since time.Time) (map[string]int, error) {
	out := make(map[string]int, len(fps))
	if len(fps) == 0 {
		return out, nil
	}
	rows, err := tx.Query(ctx, `SELECT u.f, (SELECT count(*) FROM alert_resolutions r
		WHERE r.fingerprint = u.f AND r.starts_at >= $2) FROM unnest($1::text[]) AS u(f)`, fps, since)
	if err != nil {
		return nil, fmt.Errorf("count fire-resolve cycles: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			fp string
			n  int
		)
		if err := rows.Scan(&fp, &n); err != nil {
			return nil, fmt.Errorf("count fire-resolve cycles: %w", err)
		}
		out[fp] = n
	}
	return out, rows.Err()
}

// SettledFlapping implements incident.FlapStore.
func (Store) SettledFlapping(ctx context.Context, tx pgx.Tx, now time.Time, limit int) ([]*incident.Record, error) {
	return lockedIncidents(ctx, tx, "settled flapping incidents", `SELECT `+incidentColumns+` FROM incidents
		WHERE flap_until <= $1 ORDER BY flap_until LIMIT $2 FOR UPDATE SKIP LOCKED`, now, limit)
}
