package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-ops/vigil/pkg/db"
)

// Reply is an event's message that answers another, the parent, which it
// names by its ref ("incident/<id>": a reply in the incident's thread;
// "card/<repair id>": a decision, which edits the card).
type Reply struct {
	EventID, Channel, Target string
	// Parent is the ref of the message it waits for.
	Parent string
	// Subject and Payload are the event, as the bus carried it, to draw
	// the reply again when it is due.
	Subject string
	Payload []byte
}

// Park looks up r's parent on r's channel, and parks r until the parent's
// delivery is recorded for good unless it is already: it returns the
// parent (sent, with its message id; or failed) and false, or true when
// r is parked. Redelivered, a parked reply stays parked once.
func (d *Deliveries) Park(ctx context.Context, r Reply) (Posted, bool, error) {
	var (
		p      Posted
		parked bool
	)
	err := db.InTx(ctx, d.pool, func(tx pgx.Tx) error {
		if err := lockParent(ctx, tx, r.Parent, r.Channel, r.Target); err != nil {
			return err
		}
		var err error
		if p, err = d.posted(ctx, tx, r.Parent, r.Channel, r.Target); err != nil {
			return err
		}
		if p.Status == "sent" || p.Status == "failed" {
			return nil
		}
		_, err = tx.Exec(ctx, `INSERT INTO parked_replies (event_id, channel, target, parent, subject, payload)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id, channel) DO NOTHING`,
			r.EventID, r.Channel, r.Target, r.Parent, r.Subject, r.Payload)
		if err != nil {
			return fmt.Errorf("park reply %s to %s: %w", r.EventID, r.Parent, err)
		}
		parked = true
		return nil
	})
	if err != nil {
		return Posted{}, false, err
	}
	return p, parked, nil
}

// lockParent serialises parking replies to a parent with recording the
// parent's delivery: without it, a reply could find its parent unsent,
// and park after the parent's record released the replies it knew of.
func lockParent(ctx context.Context, tx pgx.Tx, ref, channel, target string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
		"notify/parent/"+channel+"/"+target+"/"+ref); err != nil {
		return fmt.Errorf("lock %s: %w", ref, err)
	}
	return nil
}

// Parked is a parked reply that is due.
type Parked struct {
	EventID, Subject string
	Payload          []byte
	// Attempts are the delivery's attempts so far.
	Attempts int
}

// TakeDue takes up to limit parked replies on channel to target that are
// due -- their parent's delivery was recorded for good, or they waited
// longer than wait for it, or a retry's delay is over -- for lease: until
// then no other replica takes them. They come in the order they were
// parked.
func (d *Deliveries) TakeDue(ctx context.Context, channel, target string, wait, lease time.Duration, limit int) ([]Parked, error) {
	rows, err := d.pool.Query(ctx, `UPDATE parked_replies p SET due_at = now() + $3::float8 * interval '1 second'
		FROM (SELECT event_id, channel FROM parked_replies
			WHERE channel = $1 AND target = $2
				AND (due_at <= now() OR (due_at IS NULL AND parked_at <= now() - $4::float8 * interval '1 second'))
			ORDER BY parked_at LIMIT $5 FOR UPDATE SKIP LOCKED) due
		WHERE p.event_id = due.event_id AND p.channel = due.channel
		RETURNING p.event_id, p.subject, p.payload, p.parked_at,
			coalesce((SELECT attempts FROM deliveries x WHERE x.event_id = p.event_id AND x.channel = p.channel), 0)`,
		channel, target, lease.Seconds(), wait.Seconds(), limit)
	if err != nil {
		return nil, fmt.Errorf("take parked replies: %w", err)
	}
	type row struct {
		Parked
		at time.Time
	}
	var taken []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.EventID, &r.Subject, &r.Payload, &r.at, &r.Attempts); err != nil {
			rows.Close()
			return nil, fmt.Errorf("take parked replies: %w", err)
		}
		taken = append(taken, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("take parked replies: %w", err)
	}
	// RETURNING keeps no order.
	slices.SortStableFunc(taken, func(a, b row) int { return a.at.Compare(b.at) })
	out := make([]Parked, len(taken))
	for i, r := range taken {
		out[i] = r.Parked
	}
	return out, nil
}

// Postpone makes a parked reply due again after delay: sending it is to
// be retried.
func (d *Deliveries) Postpone(ctx context.Context, eventID, channel string, delay time.Duration) error {
	_, err := d.pool.Exec(ctx, `UPDATE parked_replies SET due_at = now() + $3::float8 * interval '1 second'
		WHERE event_id = $1 AND channel = $2`, eventID, channel, delay.Seconds())
	if err != nil {
		return fmt.Errorf("postpone parked reply %s: %w", eventID, err)
	}
	return nil
}

// PruneParked deletes the replies parked before before, and returns how
// many: they are due long since, so they are for a channel notify no
// longer writes to (its configuration changed), and nobody will send
// them.
func (d *Deliveries) PruneParked(ctx context.Context, before time.Time) (int64, error) {
	n, err := db.DeleteInBatches(ctx, d.pool, pruneChunk, `DELETE FROM parked_replies p USING (
			SELECT event_id, channel FROM parked_replies WHERE parked_at < $1
			LIMIT $2 FOR UPDATE SKIP LOCKED
		) old WHERE p.event_id = old.event_id AND p.channel = old.channel`, before)
	if err != nil {
		return n, fmt.Errorf("prune parked replies: %w", err)
	}
	return n, nil
}
