// Package postgres records notify's deliveries and every attempt at them,
// and what its approval cards show, in its schema, "notify".
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
	Outcome              Outcome
	HTTPStatus           int
	Error                string
	RetryAfter           time.Duration
	MessageID            string
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

// Status is what became of the event on the channel: "sent", "retrying"
// or "failed" (given up for good), and "" when it was never tried.
func (d *Deliveries) Status(ctx context.Context, eventID, channel string) (string, error) {
	var status string
	err := d.pool.QueryRow(ctx, `SELECT status FROM deliveries WHERE event_id = $1 AND channel = $2`, eventID, channel).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("load delivery: %w", err)
	}
	return status, nil
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

// Opening looks up the delivery of the event, of subject opened, that
// announced incidentID on channel to target.
func (d *Deliveries) Opening(ctx context.Context, incidentID, opened, channel, target string) (Posted, error) {
	// One incident is opened once; the newest row wins should it not be.
	return d.posted(ctx, `SELECT status, message_id FROM deliveries
		WHERE incident_id = $1 AND channel = $2 AND target = $3 AND subject = $4
		ORDER BY created_at DESC LIMIT 1`, "opening of incident "+incidentID, incidentID, channel, target, opened)
}

// Card looks up the delivery of the event, of subject requested, that
// put repairID's approval card on channel to target.
func (d *Deliveries) Card(ctx context.Context, repairID, requested, channel, target string) (Posted, error) {
	// A repair asks once (a second request, after a kill switch, is a new
	// card); the newest row wins.
	return d.posted(ctx, `SELECT status, message_id FROM deliveries
		WHERE repair_id = $1 AND channel = $2 AND target = $3 AND subject = $4
		ORDER BY created_at DESC LIMIT 1`, "approval card of repair "+repairID, repairID, channel, target, requested)
}

func (d *Deliveries) posted(ctx context.Context, query, what string, args ...any) (Posted, error) {
	var p Posted
	err := d.pool.QueryRow(ctx, query, args...).Scan(&p.Status, &p.MessageID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Posted{}, nil
	}
	if err != nil {
		return Posted{}, fmt.Errorf("load %s: %w", what, err)
	}
	if p.Status != "sent" {
		p.MessageID = ""
	}
	return p, nil
}

// Record stores an attempt and the delivery's new state in one transaction.
func (d *Deliveries) Record(ctx context.Context, a Attempt) error {
	status := map[Outcome]string{OutcomeSent: "sent", OutcomeRetry: "retrying", OutcomeFailed: "failed"}[a.Outcome]
	return db.InTx(ctx, d.pool, func(tx pgx.Tx) error {
		var n int
		err := tx.QueryRow(ctx, `INSERT INTO deliveries (event_id, channel, subject, target, status, attempts, last_error, message_id, incident_id, repair_id)
			VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $9)
			ON CONFLICT (event_id, channel) DO UPDATE SET status = excluded.status,
				attempts = deliveries.attempts + 1, last_error = excluded.last_error,
				message_id = excluded.message_id, updated_at = now()
			RETURNING attempts`,
			a.EventID, a.Channel, a.Subject, a.Target, status, a.Error, a.MessageID, a.IncidentID, a.RepairID).Scan(&n)
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
