package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
)

// RelayOptions tune a Relay.
type RelayOptions struct {
	// Schema the service's outbox lives in.
	Schema string
	// BatchSize is the most events published in one round (default 500).
	BatchSize int
	// PollInterval is how often the outbox is read when no notification
	// arrives (default 1s); notifications make the usual case immediate.
	PollInterval time.Duration
	// Retention is how long processed_events rows are kept (default 7 days):
	// far longer than any redelivery can arrive.
	Retention time.Duration
}

// Relay publishes outbox rows in order and deletes them once JetStream has
// stored them. Replicas may run one each: rows are claimed with SKIP LOCKED.
// A crash between publish and delete republishes; the event id as
// Nats-Msg-Id and the consumers' inbox make that harmless.
type Relay struct {
	pool *pgxpool.Pool
	pub  *bus.Publisher
	opts RelayOptions
	log  *slog.Logger
}

// NewRelay returns a Relay; Run starts it.
func NewRelay(pool *pgxpool.Pool, pub *bus.Publisher, opts RelayOptions, log *slog.Logger) *Relay {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.Retention <= 0 {
		opts.Retention = 7 * 24 * time.Hour
	}
	return &Relay{pool: pool, pub: pub, opts: opts, log: log.With("component", "outbox-relay", "schema", opts.Schema)}
}

// Run publishes until ctx is cancelled.
func (r *Relay) Run(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	go r.listen(ctx, wake)
	pruned := make(chan struct{})
	go func() {
		defer close(pruned)
		_ = db.Retention{What: "processed events", Prune: r.prune, Log: r.log}.Run(ctx)
	}()
	defer func() { <-pruned }()
	failures := 0
	publishing := db.Failures{Log: r.log, Attrs: []any{"step", "publish"}}
	for {
		n, err := r.Flush(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			failures++
			delay := min(time.Duration(failures)*time.Second, 30*time.Second)
			publishing.Failed(ctx, err, delay)
			if !sleep(ctx, delay) {
				return nil
			}
			continue
		case n == r.opts.BatchSize:
			failures = 0
			publishing.Succeeded(ctx)
			continue // more is waiting
		}
		failures = 0
		publishing.Succeeded(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-time.After(r.opts.PollInterval):
		}
	}
}

// Flush publishes one batch of pending events and returns how many.
func (r *Relay) Flush(ctx context.Context) (int, error) {
	var n int
	err := db.InTx(ctx, r.pool, func(tx pgx.Tx) (err error) {
		n, err = r.flush(ctx, tx)
		return err
	})
	return n, err
}

// flush publishes the batch of pending events tx locks, and deletes them
// from the outbox.
func (r *Relay) flush(ctx context.Context, tx pgx.Tx) (int, error) {
	rows, err := tx.Query(ctx, `
		SELECT seq, event_id, subject, data, headers FROM outbox
		ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`, r.opts.BatchSize)
	if err != nil {
		return 0, fmt.Errorf("outbox: read: %w", err)
	}
	var seqs []int64
	var msgs []bus.Message
	for rows.Next() {
		var (
			seq     int64
			m       bus.Message
			headers []byte
		)
		if err := rows.Scan(&seq, &m.ID, &m.Subject, &m.Data, &headers); err != nil {
			rows.Close()
			return 0, fmt.Errorf("outbox: scan: %w", err)
		}
		if err := json.Unmarshal(headers, &m.Headers); err != nil {
			rows.Close()
			return 0, fmt.Errorf("outbox: headers of %s: %w", m.ID, err)
		}
		seqs = append(seqs, seq)
		msgs = append(msgs, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("outbox: read: %w", err)
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	if err := r.pub.PublishMessages(ctx, msgs...); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM outbox WHERE seq = ANY($1)`, seqs); err != nil {
		return 0, fmt.Errorf("outbox: delete published: %w", err)
	}
	return len(msgs), nil
}

// listen turns Postgres notifications from Add into wake-ups. When the
// connection fails it retries; polling covers the gap.
func (r *Relay) listen(ctx context.Context, wake chan<- struct{}) {
	listening := db.Failures{Log: r.log, Attrs: []any{"step", "listen"}}
	for ctx.Err() == nil {
		err := r.listenOnce(ctx, wake, func() { listening.Succeeded(ctx) })
		if ctx.Err() != nil {
			return
		}
		// Polling covers the gap.
		listening.Failed(ctx, err, 5*time.Second)
		if !sleep(ctx, 5*time.Second) {
			return
		}
	}
}

// listenOnce listens until the connection fails; listening is called once
// it does.
func (r *Relay) listenOnce(ctx context.Context, wake chan<- struct{}, listening func()) error {
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{notifyChannel(r.opts.Schema)}.Sanitize()); err != nil {
		return err
	}
	listening()
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			if errors.Is(err, context.Canceled) {
				// The connection may be mid-protocol: do not hand it back.
				_ = conn.Conn().Close(context.WithoutCancel(ctx))
			}
			return err
		}
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

// pruneBatch bounds each prune statement (db.DeleteInBatches).
const pruneBatch = 10000

// prune deletes the inbox's processed events past retention.
func (r *Relay) prune(ctx context.Context) (int64, error) {
	return db.DeleteInBatches(ctx, r.pool, pruneBatch, `DELETE FROM processed_events WHERE (consumer, event_id) IN (
		SELECT consumer, event_id FROM processed_events WHERE processed_at < now() - $1::interval LIMIT $2)`,
		r.opts.Retention.String())
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
