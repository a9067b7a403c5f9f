// Package postgres records notify's deliveries and every attempt at them,
// the replies parked until their parent is sent, and what its approval
// cards show, in its schema, "notify".
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-ops/vigil/pkg/db"
)

// Migrations are notify's schema migrations.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Outcome of one attempt.
type Outcome string

// Outcomes.
const (
	OutcomeSent   Outcome = "sent"
	OutcomeRetry  Outcome = "retry"
	OutcomeFailed Outcome = "failed"
)

// Attempt is one try at delivering an event to a channel.
type Attempt struct {
	EventID, Channel, Subject, Target string
	// IncidentID and RepairID are the incident and the repair the event
	// is about, if any.
	IncidentID, RepairID string
	// Ref is what later messages call this one ("" for nothing): see
	// Park.
	Ref        string
	Outcome    Outcome
	HTTPStatus int
	Error      string
	RetryAfter time.Duration
	MessageID  string
}

// Deliveries is the delivery log.
type Deliveries struct{ pool *pgxpool.Pool }

// NewDeliveries returns the delivery log over pool.
func NewDeliveries(pool *pgxpool.Pool) *Deliveries { return &Deliveries{pool: pool} }

// Sent reports whether the event already reached the channel: a redelivered
// event is then not sent twice.
func (d *Deliveries) Sent(ctx context.Context, eventID, channel string) (bool, error) {
	var status string
	err := d.pool.QueryRow(ctx, `SELECT status FROM deliveries WHERE event_id = $1 AND channel = $2`, eventID, channel).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("load delivery: %w", err)
	}
	return status == "sent", nil
}

// Done reports whether the event needs nothing more on the channel: sent,
// given up for good, or parked until its parent is sent.
func (d *Deliveries) Done(ctx context.Context, eventID, channel string) (bool, error) {
	var done bool
	err := d.pool.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM deliveries WHERE event_id = $1 AND channel = $2 AND status IN ('sent', 'failed'))
		OR EXISTS (SELECT 1 FROM parked_replies WHERE event_id = $1 AND channel = $2)`, eventID, channel).Scan(&done)
	if err != nil {
		return false, fmt.Errorf("load delivery: %w", err)
	}
	return done, nil
}

// Posted is what became of a message that later ones refer to: the
// message that announced an incident (its thread), an approval card.
type Posted struct {
	// Status is "sent", "retrying" or "failed"; empty when it was never
	// tried (notify was off, the event too old, the record pruned).
	Status string
	// MessageID is the chat's id for the message, once sent: a Telegram
	// message id, a Slack ts.
	MessageID string
}

// querier runs a query: the pool, or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Posted looks up the message called ref on channel to target.
func (d *Deliveries) Posted(ctx context.Context, ref, channel, target string) (Posted, error) {
	return d.posted(ctx, d.pool, ref, channel, target)
}

func (*Deliveries) posted(ctx context.Context, q querier, ref, channel, target string) (Posted, error) {
	var p Posted
	// An incident is opened once, a repair asks once (a second request,
	// after a kill switch, is a new card): the newest row wins should
	// there be two.
	err := q.QueryRow(ctx, `SELECT status, message_id FROM deliveries
		WHERE ref = $1 AND channel = $2 AND target = $3
		ORDER BY created_at DESC LIMIT 1`, ref, channel, target).Scan(&p.Status, &p.MessageID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Posted{}, nil
	}
	if err != nil {
		return Posted{}, fmt.Errorf("load %s: %w", ref, err)
	}
	if p.Status != "sent" {
		p.MessageID = ""
	}
	return p, nil
}

// Record stores an attempt and the delivery's new state in one
// transaction. When the delivery is final (sent, or failed for good), the
// reply it was parked as, if any, is gone; and when others refer to it
// (a.Ref), the replies parked for it on its channel become due: in the
// same transaction, under the lock Park takes, so that no reply parks
// after its parent was recorded and waits for nothing.
func (d *Deliveries) Record(ctx context.Context, a Attempt) error {
	status := map[Outcome]string{OutcomeSent: "sent", OutcomeRetry: "retrying", OutcomeFailed: "failed"}[a.Outcome]
	return db.InTx(ctx, d.pool, func(tx pgx.Tx) error {
		if a.Ref != "" {
			if err := lockParent(ctx, tx, a.Ref, a.Channel, a.Target); err != nil {
				return err
			}
		}
		var n int
		err := tx.QueryRow(ctx, `INSERT INTO deliveries (event_id, channel, subject, target, status, attempts, last_error, message_id, incident_id, repair_id, ref)
			VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $9, $10)
			ON CONFLICT (event_id, channel) DO UPDATE SET status = excluded.status,
				attempts = deliveries.attempts + 1, last_error = excluded.last_error,
				message_id = excluded.message_id, updated_at = now()
			RETURNING attempts`,
			a.EventID, a.Channel, a.Subject, a.Target, status, a.Error, a.MessageID, a.IncidentID, a.RepairID, a.Ref).Scan(&n)
		if err != nil {
			return fmt.Errorf("record delivery: %w", err)
		}
		var retryAfter *time.Duration
		if a.RetryAfter > 0 {
			retryAfter = &a.RetryAfter
		}
		_, err = tx.Exec(ctx, `INSERT INTO delivery_attempts (event_id, channel, attempt, outcome, http_status, error, retry_after)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, a.EventID, a.Channel, n, string(a.Outcome), a.HTTPStatus, a.Error, retryAfter)
		if err != nil {
			return fmt.Errorf("record attempt: %w", err)
		}
		if a.Outcome == OutcomeRetry {
			return nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM parked_replies WHERE event_id = $1 AND channel = $2`, a.EventID, a.Channel); err != nil {
			return fmt.Errorf("unpark delivery: %w", err)
		}
		if a.Ref == "" {
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE parked_replies SET due_at = now()
			WHERE parent = $1 AND channel = $2 AND target = $3 AND due_at IS NULL`, a.Ref, a.Channel, a.Target)
		if err != nil {
			return fmt.Errorf("release replies to %s: %w", a.Ref, err)
		}
		return nil
	})
}
