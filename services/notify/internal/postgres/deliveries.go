// Package postgres keeps notify's deliveries -- one per event per
// channel, which is at once the channel's queue entry, the claim of the
// replica sending it and the record of what became of it -- every attempt
// at them, the channels paused by their provider's rate limit, and what
// its approval cards show, in its schema, "notify".
package postgres

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"slices"
	"strings"
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
	// OutcomeInDoubt: the provider may or may not have the message (its
	// sender gave up waiting after the request left, or the provider took
	// it with an answer that could not be read). The delivery is retried
	// at once, in doubt (Claimed.InDoubt): the provider is asked first
	// where it can tell.
	OutcomeInDoubt Outcome = "in_doubt"
)

// status is the delivery's state after an attempt with outcome o.
func (o Outcome) status() string {
	if o == OutcomeRetry || o == OutcomeInDoubt {
		return "retrying"
	}
	return string(o)
}

// Deliveries is the delivery queue and log.
type Deliveries struct{ pool *pgxpool.Pool }

// NewDeliveries returns the deliveries over pool.
func NewDeliveries(pool *pgxpool.Pool) *Deliveries { return &Deliveries{pool: pool} }

// Delivery is an event's message queued for a channel.
type Delivery struct {
	EventID, Channel, Subject, Target string
	// IncidentID and RepairID are the incident and the repair the event
	// is about, if any.
	IncidentID, RepairID string
	// Ref is what later messages call this one ("" for nothing): the
	// incident's message ("incident/<id>"), an approval card
	// ("card/<repair id>").
	Ref string
	// Parent is the ref of the message this one answers and waits for
	// ("" for none).
	Parent string
	// Payload is the event, as the bus carried it, to draw the message
	// when it is sent.
	Payload []byte
	// OccurredAt is when the event happened: one incident's messages on
	// a channel go out in this order, whichever replica queued them when.
	OccurredAt time.Time
	// Language and TimeZone are the locale it is drawn in, as its route
	// or channel said when it was queued ("": the defaults); Templates,
	// the template set.
	Language, TimeZone, Templates string
}

// Enqueue queues ds in tx, each unless its channel has the event already (a
// redelivered event, or one another replica took): each event reaches a
// channel once. A delivery a notify without a queue left retrying (with no
// payload, waiting for the bus's redelivery) is queued anew.
//
// They are queued in the order of their key (event, channel), whatever
// order they come in: two replicas queueing the same events (a redelivered
// copy, in batches of other orders) lock their rows in one order, so that
// one transaction waits for the other instead of each for the other -- a
// deadlock, which Postgres breaks only after a second by failing one
// batch, retried after a backoff, and dead-lettered when it recurs.
func (*Deliveries) Enqueue(ctx context.Context, tx pgx.Tx, ds ...Delivery) error {
	ds = slices.Clone(ds)
	slices.SortStableFunc(ds, func(a, b Delivery) int {
		return cmp.Or(strings.Compare(a.EventID, b.EventID), strings.Compare(a.Channel, b.Channel))
	})
	for _, d := range ds {
		_, err := tx.Exec(ctx, `INSERT INTO deliveries
				(event_id, channel, subject, target, status, incident_id, repair_id, ref, parent, payload, occurred_at, due_at,
				language, time_zone, templates)
			VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9, $10, now(), $11, $12, $13)
			ON CONFLICT (event_id, channel) DO UPDATE SET status = 'queued', parent = excluded.parent,
				payload = excluded.payload, due_at = now(), updated_at = now()
			WHERE deliveries.status = 'retrying' AND deliveries.payload IS NULL`,
			d.EventID, d.Channel, d.Subject, d.Target, d.IncidentID, d.RepairID, d.Ref, d.Parent, d.Payload, d.OccurredAt,
			d.Language, d.TimeZone, d.Templates)
		if err != nil {
			return fmt.Errorf("queue %s for %s: %w", d.EventID, d.Channel, err)
		}
	}
	return nil
}

// Claimed is a delivery a sender holds.
type Claimed struct {
	EventID, Subject string
	Payload          []byte
	// Attempts are the attempts recorded so far.
	Attempts int
	// QueuedAt is when the event was queued for the channel.
	QueuedAt time.Time
	// Language, TimeZone and Templates are the locale it was queued
	// with.
	Language, TimeZone, Templates string
	// Parent is the ref of the message it waits for, as decided when it
	// was queued ("" for none).
	Parent string
	// Parts are the parts of it accepted on earlier attempts (Accept).
	Parts []string
	// Stale: another sender claimed it and never recorded what became of
	// it (it died, or lost its database, with the request out or not).
	Stale bool
	// InDoubt: the provider may have its message from an earlier attempt
	// (Stale, or an attempt recorded in doubt); PostedAt is when the
	// first such attempt was claimed, the earliest the message can be
	// there.
	InDoubt  bool
	PostedAt time.Time
}

// claimedColumns are what a claim returns, in Claimed's scan order.
const claimedColumns = `d.event_id, d.subject, coalesce(d.payload, ''::bytea), d.attempts, d.created_at, d.language, d.time_zone,
	d.templates, d.parent, d.parts, d.in_doubt, coalesce(d.posted_at, d.created_at)`

func (c *Claimed) scan(row pgx.Row) error {
	return row.Scan(&c.EventID, &c.Subject, &c.Payload, &c.Attempts, &c.QueuedAt, &c.Language, &c.TimeZone, &c.Templates,
		&c.Parent, &c.Parts, &c.InDoubt, &c.PostedAt)
}

// ready is the condition, on a delivery q, that it may go now if it is
// due: it answers nothing, or its parent's delivery on its channel is
// final (its message id known, or it will never be), or it waited for
// the parent $wait seconds.
const ready = `(%[1]s.parent = '' OR %[1]s.created_at <= now() - $4::float8 * interval '1 second'
	OR EXISTS (SELECT 1 FROM deliveries p WHERE p.ref = %[1]s.parent AND p.channel = %[1]s.channel
		AND p.status IN ('sent', 'failed', 'unknown')))`

// claimSQL claims the channel's first due delivery, by when its event
// happened (then queue order), that no
// earlier message of its incident on the channel holds back: one that is
// being sent, or waits its turn (a retry's delay, a rate limit), or is
// ready. A reply still waiting for its parent holds nothing back, or the
// parent, queued after it, would wait for it; nor does a delivery an
// older notify left retrying (no due time, no event: the bus redelivers
// its event, which queues it anew).
var claimSQL = fmt.Sprintf(`UPDATE deliveries d SET status = 'sending', claimed_by = $2,
		lease_until = now() + $3::float8 * interval '1 second', updated_at = now(),
		posted_at = CASE WHEN d.in_doubt THEN d.posted_at ELSE now() END
	FROM (SELECT q.event_id, q.channel FROM deliveries q
		WHERE q.channel = $1 AND q.status IN ('queued', 'retrying') AND q.due_at <= now() AND `+ready+`
			AND NOT EXISTS (SELECT 1 FROM channel_pauses x WHERE x.channel = $1 AND x.until > now())
			AND NOT EXISTS (SELECT 1 FROM deliveries b
				WHERE q.incident_id <> '' AND b.incident_id = q.incident_id AND b.channel = q.channel
					AND (b.occurred_at, b.seq) < (q.occurred_at, q.seq)
					AND (b.status = 'sending' OR (b.status IN ('queued', 'retrying') AND b.due_at IS NOT NULL AND `+fmt.Sprintf(ready, "b")+`)))
		ORDER BY q.occurred_at, q.seq LIMIT 1 FOR UPDATE OF q SKIP LOCKED) c
	WHERE d.event_id = c.event_id AND d.channel = c.channel
	RETURNING `+claimedColumns, "q")

// Claim takes the channel's next delivery that is due, for replica, for
// lease: committed before the provider is called, so that neither a
// redelivered event nor another replica sends it again. It returns nil
// when none is due. A reply waits for its parent at most wait.
func (d *Deliveries) Claim(ctx context.Context, channel, replica string, lease, wait time.Duration) (*Claimed, error) {
	var c Claimed
	err := c.scan(d.pool.QueryRow(ctx, claimSQL, channel, replica, lease.Seconds(), wait.Seconds()))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim a delivery on %s: %w", channel, err)
	}
	return &c, nil
}

// ClaimStale takes over the channel's first delivery whose claim's lease
// ran out unrecorded, for replica, for lease; nil when there is none. It
// is in doubt: its sender may have posted it.
func (d *Deliveries) ClaimStale(ctx context.Context, channel, replica string, lease time.Duration) (*Claimed, error) {
	c := Claimed{Stale: true}
	err := c.scan(d.pool.QueryRow(ctx, `UPDATE deliveries d SET claimed_by = $2,
			lease_until = now() + $3::float8 * interval '1 second', updated_at = now()
		FROM (SELECT event_id, channel FROM deliveries
			WHERE channel = $1 AND status = 'sending' AND lease_until < now()
			ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) c
		WHERE d.event_id = c.event_id AND d.channel = c.channel
		RETURNING `+claimedColumns, channel, replica, lease.Seconds()))
	c.InDoubt = true
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim a stale delivery on %s: %w", channel, err)
	}
	return &c, nil
}

// Attempt is one try at a claimed delivery.
type Attempt struct {
	EventID, Channel string
	// Target is the conversation it went to.
	Target     string
	Outcome    Outcome
	HTTPStatus int
	Error      string
	RetryAfter time.Duration
	MessageID  string
	// DueIn is when a retry is due.
	DueIn time.Duration
	// InDoubt keeps a retry in doubt: the claim was (Claimed.InDoubt) and
	// this attempt did not settle it.
	InDoubt bool
}

// ErrClaimLost is Record's answer when the delivery is no longer the
// replica's (its lease ran out and another took it over): its attempt is
// not recorded.
var ErrClaimLost = errors.New("claim lost")

// Record stores an attempt at a delivery replica claimed, and the
// delivery's new state, in one transaction, ending the claim. A final
// delivery forgets its payload; one in doubt stays so until it is final.
func (d *Deliveries) Record(ctx context.Context, replica string, a Attempt) error {
	return db.InTx(ctx, d.pool, func(tx pgx.Tx) error {
		var n int
		err := tx.QueryRow(ctx, `UPDATE deliveries SET status = $4, attempts = attempts + 1, last_error = $5,
				message_id = $6, target = $7, claimed_by = '', lease_until = NULL,
				due_at = now() + $8::float8 * interval '1 second',
				payload = CASE WHEN $4 = 'retrying' THEN payload END, updated_at = now(),
				in_doubt = $4 = 'retrying' AND (in_doubt OR $9)
			WHERE event_id = $1 AND channel = $2 AND claimed_by = $3 AND status = 'sending'
			RETURNING attempts`,
			a.EventID, a.Channel, replica, a.Outcome.status(), a.Error, a.MessageID, a.Target, a.DueIn.Seconds(),
			a.Outcome == OutcomeInDoubt || a.InDoubt).Scan(&n)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("record %s on %s: %w", a.EventID, a.Channel, ErrClaimLost)
		}
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

// Release gives a claim back unsent and unrecorded: its send never
// started.
func (d *Deliveries) Release(ctx context.Context, replica, eventID, channel string) error {
	_, err := d.pool.Exec(ctx, `UPDATE deliveries SET status = CASE WHEN attempts = 0 THEN 'queued' ELSE 'retrying' END,
			claimed_by = '', lease_until = NULL, updated_at = now()
		WHERE event_id = $1 AND channel = $2 AND claimed_by = $3 AND status = 'sending'`, eventID, channel, replica)
	if err != nil {
		return fmt.Errorf("release %s on %s: %w", eventID, channel, err)
	}
	return nil
}

// Pause holds every delivery on channel until until, for every replica:
// its provider asked for it (a rate limit). A longer pause stands.
func (d *Deliveries) Pause(ctx context.Context, channel string, until time.Time, reason string) error {
	_, err := d.pool.Exec(ctx, `INSERT INTO channel_pauses (channel, until, reason) VALUES ($1, $2, $3)
		ON CONFLICT (channel) DO UPDATE SET until = greatest(channel_pauses.until, excluded.until),
			reason = excluded.reason, updated_at = now()`, channel, until, reason)
	if err != nil {
		return fmt.Errorf("pause %s: %w", channel, err)
	}
	return nil
}

// PausedFor is how long channel stays paused from now; 0 when it is not.
func (d *Deliveries) PausedFor(ctx context.Context, channel string) (time.Duration, error) {
	var secs float64
	err := d.pool.QueryRow(ctx, `SELECT coalesce(max(extract(epoch FROM until - now())), 0)::float8
		FROM channel_pauses WHERE channel = $1 AND until > now()`, channel).Scan(&secs)
	if err != nil {
		return 0, fmt.Errorf("load the pause of %s: %w", channel, err)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// Posted is what became of a message that later ones refer to: the
// message that announced an incident (its thread), an approval card.
type Posted struct {
	// Status is the delivery's status; empty when it was never queued
	// (notify was off, the event too old, the record pruned).
	Status string
	// MessageID is the chat's id for the message, once sent: a Telegram
	// message id, a Slack ts.
	MessageID string
}

// Posted looks up the message called ref on channel to target.
func (d *Deliveries) Posted(ctx context.Context, ref, channel, target string) (Posted, error) {
	var p Posted
	// An incident is opened once, a repair asks once (a second request,
	// after a kill switch, is a new card): the newest row wins should
	// there be two.
	err := d.pool.QueryRow(ctx, `SELECT status, message_id FROM deliveries
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

// Renew extends the lease of a claim replica holds while its send lasts.
func (d *Deliveries) Renew(ctx context.Context, replica, eventID, channel string, lease time.Duration) error {
	_, err := d.pool.Exec(ctx, `UPDATE deliveries SET lease_until = now() + $4::float8 * interval '1 second'
		WHERE event_id = $1 AND channel = $2 AND claimed_by = $3 AND status = 'sending'`,
		eventID, channel, replica, lease.Seconds())
	if err != nil {
		return fmt.Errorf("renew the claim of %s on %s: %w", eventID, channel, err)
	}
	return nil
}

// Accept records part of delivery eventID on channel as accepted by its
// provider (Claimed.Parts on a later claim), while replica holds its
// claim: ErrClaimLost when it does not any more.
func (d *Deliveries) Accept(ctx context.Context, replica, eventID, channel, part string) error {
	// One statement: a part recorded already leaves the row as it is,
	// and only a claim not held any more matches no row.
	tag, err := d.pool.Exec(ctx, `UPDATE deliveries
		SET parts = CASE WHEN $4 = ANY(parts) THEN parts ELSE array_append(parts, $4) END,
			updated_at = CASE WHEN $4 = ANY(parts) THEN updated_at ELSE now() END
		WHERE event_id = $1 AND channel = $2 AND claimed_by = $3 AND status = 'sending'`,
		eventID, channel, replica, part)
	if err == nil && tag.RowsAffected() == 0 {
		err = ErrClaimLost
	}
	if err != nil {
		return fmt.Errorf("record part %s of %s on %s: %w", part, eventID, channel, err)
	}
	return nil
}

// PendingChannels are the channels with deliveries not final yet.
func (d *Deliveries) PendingChannels(ctx context.Context) ([]string, error) {
	rows, err := d.pool.Query(ctx, `SELECT DISTINCT channel FROM deliveries WHERE status IN ('queued', 'sending', 'retrying')`)
	if err != nil {
		return nil, fmt.Errorf("list channels with deliveries: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list channels with deliveries: %w", err)
	}
	return names, nil
}

// Message is a delivery as the incident's page shows it.
type Message struct {
	// Seq orders an incident's messages as they were queued, and keys
	// the pages of the list.
	Seq                                                int64
	Channel, Subject, Target, Status, Error, MessageID string
	CreatedAt, UpdatedAt                               time.Time
}

// OfIncident are the messages about incident id, in the order they were
// queued, from the one after seq after on, at most limit.
func (d *Deliveries) OfIncident(ctx context.Context, id string, after int64, limit int) ([]Message, error) {
	rows, _ := d.pool.Query(ctx, `SELECT seq, channel, subject, target, status, last_error, message_id, created_at, updated_at
		FROM deliveries WHERE incident_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, id, after, limit)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Message, error) {
		var m Message
		err := row.Scan(&m.Seq, &m.Channel, &m.Subject, &m.Target, &m.Status, &m.Error, &m.MessageID, &m.CreatedAt, &m.UpdatedAt)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("list the messages of incident %s: %w", id, err)
	}
	return out, nil
}
