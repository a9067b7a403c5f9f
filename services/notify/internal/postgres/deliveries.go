// Package postgres records notify's deliveries and every attempt at them
// in its schema, "notify".
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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
	// IncidentID is the incident the event is about, if any.
	IncidentID string
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

// Opening is what became of the message that announced an incident in a
// chat.
type Opening struct {
	// Status is "sent", "retrying" or "failed"; empty when it was never
	// tried (notify was off, the event too old, the record pruned).
	Status string
	// MessageID is the chat's id for the message, once sent.
	MessageID int64
}

// Opening looks up the delivery of the event, of subject opened, that
// announced incidentID on channel to target.
func (d *Deliveries) Opening(ctx context.Context, incidentID, opened, channel, target string) (Opening, error) {
	var (
		o  Opening
		id string
	)
	// One incident is opened once; the newest row wins should it not be.
	err := d.pool.QueryRow(ctx, `SELECT status, message_id FROM deliveries
		WHERE incident_id = $1 AND channel = $2 AND target = $3 AND subject = $4
		ORDER BY created_at DESC LIMIT 1`, incidentID, channel, target, opened).Scan(&o.Status, &id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Opening{}, nil
	}
	if err != nil {
		return Opening{}, fmt.Errorf("load opening of incident %s: %w", incidentID, err)
	}
	if o.Status == "sent" {
		if o.MessageID, err = strconv.ParseInt(id, 10, 64); err != nil {
			return Opening{}, fmt.Errorf("opening of incident %s: message id %q: %w", incidentID, id, err)
		}
	}
	return o, nil
}

// Record stores an attempt and the delivery's new state in one transaction.
func (d *Deliveries) Record(ctx context.Context, a Attempt) error {
	status := map[Outcome]string{OutcomeSent: "sent", OutcomeRetry: "retrying", OutcomeFailed: "failed"}[a.Outcome]
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		var n int
		err := tx.QueryRow(ctx, `INSERT INTO deliveries (event_id, channel, subject, target, status, attempts, last_error, message_id, incident_id)
			VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8)
			ON CONFLICT (event_id, channel) DO UPDATE SET status = excluded.status,
				attempts = deliveries.attempts + 1, last_error = excluded.last_error,
				message_id = excluded.message_id, updated_at = now()
			RETURNING attempts`,
			a.EventID, a.Channel, a.Subject, a.Target, status, a.Error, a.MessageID, a.IncidentID).Scan(&n)
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
		return nil
	})
}
