// Package intake feeds batches of alert events to the correlator: it
// validates them, skips those this consumer already handled (the inbox),
// and applies the rest in chunks, one transaction each, the inbox rows in
// the transaction of their effect. Between chunks it stops when the
// consumer stops: what it did not do is redelivered, and the inbox makes
// what it did a no-op then.
package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-ops/vigil/pkg/appteam"
	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/services/monitor/internal/incident"
)

// DefaultChunk is the most alert events applied in one transaction: large
// enough that statements are amortised, small enough that a chunk commits
// in well under a second and shutdown never waits long for one.
const DefaultChunk = 2000

// Handler is the monitor consumer's bus.BatchHandler.
type Handler struct {
	pool     *pgxpool.Pool
	consumer string
	c        *incident.Correlator
	chunk    int
	log      *slog.Logger
}

// New returns a Handler applying alert events with c, recording them in
// the inbox as consumer; chunk <= 0 means DefaultChunk.
func New(pool *pgxpool.Pool, consumer string, c *incident.Correlator, chunk int, log *slog.Logger) *Handler {
	if chunk <= 0 {
		chunk = DefaultChunk
	}
	return &Handler{pool: pool, consumer: consumer, c: c, chunk: chunk, log: log.With("component", "intake")}
}

// item is a signal with the delivery it came in.
type item struct {
	sig   *incident.Signal
	index int
	id    string
}

// HandleBatch implements bus.BatchHandler.
func (h *Handler) HandleBatch(ctx context.Context, ds []*bus.Delivery) []error {
	results := make([]error, len(ds))
	signals := make([]*incident.Signal, 0, len(ds))
	owner := make(map[*incident.Signal]int, len(ds))
	for i, d := range ds {
		s := &incident.Signal{}
		switch e := d.Event.(type) {
		case *eventsv1.AlertFired:
			s.Alert, s.Cause = e.GetAlert(), e.GetMeta()
		case *eventsv1.AlertResolved:
			s.Alert, s.Cause, s.Resolved = e.GetAlert(), e.GetMeta(), true
		default:
			results[i] = bus.Permanent(fmt.Errorf("monitor does not handle %s", d.Subject))
			continue
		}
		if err := incident.ValidateAlert(s.Alert); err != nil {
			results[i] = err
			continue
		}
		owner[s] = i
		signals = append(signals, s)
	}
	// Whose each alert is: what Vigil knows of the batch's namespaces
	// and apps, read once for the batch.
	labels := make([]map[string]string, len(signals))
	for i, s := range signals {
		labels[i] = s.Alert.GetLabels()
	}
	ix, err := appteam.IndexFor(ctx, h.pool, labels...)
	if err != nil {
		if bus.Stopping(ctx) {
			// Left for redelivery, as between chunks.
			err = bus.ErrStopped
		}
		for _, s := range signals {
			results[owner[s]] = err
		}
		return results
	}
	plan := h.c.NewPlan(signals, ix)
	chunks := plan.Chunks(h.chunk)
	for n, chunk := range chunks {
		items := make([]item, len(chunk))
		for j, s := range chunk {
			i := owner[s]
			items[j] = item{sig: s, index: i, id: ds[i].Event.GetMeta().GetId()}
		}
		if bus.Stopping(ctx) {
			// Left unacknowledged: redelivered to a replica or the next
			// start; the chunks done so far are in the inbox.
			for _, c := range chunks[n:] {
				for _, s := range c {
					results[owner[s]] = bus.ErrStopped
				}
			}
			h.log.InfoContext(ctx, "stopping between chunks", "done", n, "left", len(chunks)-n)
			break
		}
		h.apply(ctx, items, results)
	}
	return results
}

// apply runs one chunk in a transaction. A chunk that fails is split in
// halves and each tried again, so one event that can never be applied
// fails alone instead of taking its chunk with it. A chunk that fails
// because Postgres is unavailable is not split: no event of it is to
// blame, and the consumer holds the whole of it until Postgres is back.
func (h *Handler) apply(ctx context.Context, items []item, results []error) {
	err := db.InTx(ctx, h.pool, func(tx pgx.Tx) error { return h.applyTx(ctx, tx, items) })
	if err == nil {
		return
	}
	if len(items) > 1 && ctx.Err() == nil && !errors.Is(err, context.Canceled) && !db.Unavailable(err) {
		h.log.WarnContext(ctx, "chunk failed, splitting it", "events", len(items), "error", err)
		half := len(items) / 2
		h.apply(ctx, items[:half], results)
		h.apply(ctx, items[half:], results)
		return
	}
	for _, it := range items {
		results[it.index] = err
	}
}

func (h *Handler) applyTx(ctx context.Context, tx pgx.Tx, items []item) error {
	ids := make([]string, len(items))
	subjects := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.id
		subjects[i] = bus.SubjectAlertFired
		if it.sig.Resolved {
			subjects[i] = bus.SubjectAlertResolved
		}
	}
	rows, err := tx.Query(ctx, `INSERT INTO processed_events (consumer, event_id, subject)
		SELECT $1, e, s FROM unnest($2::text[], $3::text[]) AS u(e, s)
		ON CONFLICT DO NOTHING RETURNING event_id`, h.consumer, ids, subjects)
	if err != nil {
		return fmt.Errorf("inbox: %w", err)
	}
	fresh := make(map[string]bool, len(items))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("inbox: %w", err)
		}
		fresh[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("inbox: %w", err)
	}
	unseen := make([]*incident.Signal, 0, len(fresh))
	for _, it := range items {
		// Handled before (a redelivery), or twice in this chunk: once.
		if fresh[it.id] {
			delete(fresh, it.id)
			unseen = append(unseen, it.sig)
		}
	}
	return h.c.Apply(ctx, tx, unseen)
}
