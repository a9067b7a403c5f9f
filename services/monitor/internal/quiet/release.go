package quiet

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/monitor/internal/incident"
)

// Clock tells the time; tests move a fake one.
type Clock interface{ Now() time.Time }

// Bounds of one release transaction: windows taken, and held alerts
// applied (the correlator's statements are constant per transaction).
const (
	windowsPerTx = 50
	alertsPerTx  = 500
)

// Releaser applies, as firings, the held alerts whose window ended: the
// rollout failed or rolled back, or the settle time after it passed.
// Replicas share the work: each takes due windows with SKIP LOCKED.
type Releaser struct {
	pool     *pgxpool.Pool
	c        *incident.Correlator
	clock    Clock
	interval time.Duration
	poke     chan struct{}
	log      *slog.Logger
}

// NewReleaser returns a Releaser looking for due windows every interval
// (default 1s) on clock.
func NewReleaser(pool *pgxpool.Pool, c *incident.Correlator, clock Clock, interval time.Duration, log *slog.Logger) *Releaser {
	if interval <= 0 {
		interval = time.Second
	}
	return &Releaser{
		pool: pool, c: c, clock: clock, interval: interval, poke: make(chan struct{}, 1),
		log: log.With("component", "quiet"),
	}
}

// Poke has the releaser look now rather than at its next tick: a rollout
// failed, and its held alerts open at once.
func (r *Releaser) Poke() {
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// Run releases due held alerts every interval, and when poked, until ctx
// ends.
func (r *Releaser) Run(ctx context.Context) error {
	return db.Sweep{
		What: "held alerts released", Every: r.interval, Poke: r.poke, Log: r.log,
		Pass: func(ctx context.Context) error {
			_, err := r.Tick(ctx)
			return err
		},
	}.Run(ctx)
}

// Tick releases every held alert due now, a bounded transaction at a
// time, and returns how many it applied.
func (r *Releaser) Tick(ctx context.Context) (int, error) {
	total := 0
	err := db.Drain(ctx, r.pool, func(ctx context.Context, tx pgx.Tx) (bool, error) {
		n, more, err := r.release(ctx, tx)
		total += n
		return more, err
	})
	return total, err
}

// held is a held alert as the releaser reads it.
type held struct {
	alert *typesv1.Alert
	app   string
}

// release applies the held alerts of due windows in tx; more says a
// bound was reached and another transaction may find more.
//
// Locks: the windows (SKIP LOCKED), then the alerts' groups (in Apply),
// then their rows. The intake takes a group, then its rows, and reads
// windows without locking them: no cycle. The held rows are read before
// their groups are locked, so what changed meanwhile is settled by Apply
// (a resolution recorded since makes the firing stale).
func (r *Releaser) release(ctx context.Context, tx pgx.Tx) (int, bool, error) {
	now := r.clock.Now().UTC()
	rows, err := tx.Query(ctx, `SELECT `+windowColumns+` FROM deploy_windows w
		WHERE release_at <= $1 AND app IN (SELECT held_by->>'app' FROM alerts
			WHERE incident_id IS NULL AND held_by IS NOT NULL AND status = 'firing')
		ORDER BY release_at FOR UPDATE SKIP LOCKED LIMIT $2`, now, windowsPerTx)
	if err != nil {
		return 0, false, fmt.Errorf("find due deploy windows: %w", err)
	}
	windows, err := pgx.CollectRows(rows, scanHold)
	if err != nil || len(windows) == 0 {
		return 0, false, err
	}
	apps := make([]string, len(windows))
	byApp := make(map[string]*typesv1.DeployHold, len(windows))
	for i, w := range windows {
		apps[i], byApp[w.GetApp()] = w.GetApp(), w
	}
	rows, err = tx.Query(ctx, `SELECT held_by->>'app', fingerprint, labels, annotations, source, starts_at,
			generator_url, external_url
		FROM alerts WHERE incident_id IS NULL AND held_by IS NOT NULL AND status = 'firing'
			AND held_by->>'app' = ANY($1)
		ORDER BY first_seen_at LIMIT $2`, apps, alertsPerTx)
	if err != nil {
		return 0, false, fmt.Errorf("load held alerts: %w", err)
	}
	alerts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (held, error) {
		h := held{alert: &typesv1.Alert{Status: typesv1.AlertStatus_ALERT_STATUS_FIRING}}
		var labels, annotations []byte
		var source int32
		var starts time.Time
		if err := row.Scan(&h.app, &h.alert.Fingerprint, &labels, &annotations, &source, &starts,
			&h.alert.GeneratorUrl, &h.alert.ExternalUrl); err != nil {
			return h, err
		}
		h.alert.Source, h.alert.StartsAt = typesv1.AlertSource(source), timestamppb.New(starts)
		if err := json.Unmarshal(labels, &h.alert.Labels); err != nil {
			return h, fmt.Errorf("labels of %s: %w", h.alert.GetFingerprint(), err)
		}
		return h, json.Unmarshal(annotations, &h.alert.Annotations)
	})
	if err != nil {
		return 0, false, fmt.Errorf("load held alerts: %w", err)
	}
	signals := make([]*incident.Signal, len(alerts))
	fps := make([]string, len(alerts))
	// One cause per transaction: the alerts a window releases together
	// share a correlation id, as one alert event's do.
	cause := bus.NewMeta(incident.Producer, nil)
	for i, h := range alerts {
		fps[i] = h.alert.GetFingerprint()
		by := proto.CloneOf(byApp[h.app])
		signals[i] = &incident.Signal{Alert: h.alert, Cause: cause, HeldBy: by}
	}
	if err := r.c.Reapply(ctx, tx, signals); err != nil {
		return 0, false, err
	}
	// Apply removed the held copies of the alerts it added to incidents;
	// what is left it found stale (resolved meanwhile): not held either.
	if _, err := tx.Exec(ctx, `DELETE FROM alerts WHERE incident_id IS NULL AND held_by IS NOT NULL
		AND status = 'firing' AND fingerprint = ANY($1)`, fps); err != nil {
		return 0, false, fmt.Errorf("drop released alerts: %w", err)
	}
	r.log.InfoContext(ctx, "held alerts released", "alerts", len(alerts), "windows", len(windows))
	return len(alerts), len(windows) == windowsPerTx || len(alerts) == alertsPerTx, nil
}
