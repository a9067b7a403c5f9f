package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/services/repair/internal/lifecycle"
)

// DB is where a repository works: the pool, or a transaction (an inbox
// handler's), in which its own transactions are savepoints.
type DB interface {
	Querier
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Repairs is the repository of repairs (lifecycle.Repair).
type Repairs struct{ db DB }

// Repairs is the repository working in db.
func (s *Store) Repairs(db DB) *Repairs { return &Repairs{db: db} }

// Get reads a repair without locking it.
func (r *Repairs) Get(ctx context.Context, id string) (*lifecycle.Repair, error) {
	return load(ctx, r.db, id, "")
}

// Add records a new repair (lifecycle.Propose) with its timeline so
// far; created is false when its analysis already has one (a
// redelivery), and nothing is written then.
func (r *Repairs) Add(ctx context.Context, rp *lifecycle.Repair) (created bool, err error) {
	err = db.InTx(ctx, r.db, func(tx pgx.Tx) error {
		p := rp.Proto()
		b, err := marshal(p)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO repairs (id, analysis_id, incident_id, app, resource, action, status, created_at, updated_at, repair, team)
			VALUES ($1, $2, $3, $4, $5, $6, 'PROPOSED', $7, $7, $8, $9) ON CONFLICT (analysis_id) DO NOTHING`,
			p.GetId(), p.GetAnalysisId(), p.GetIncidentId(), p.GetApp(), rp.Resource(), p.GetProposal().GetAction().String(),
			p.GetCreateTime().AsTime(), b, p.GetTeam())
		if err != nil {
			return fmt.Errorf("insert repair: %w", err)
		}
		if created = tag.RowsAffected() == 1; !created {
			return nil
		}
		return record(ctx, tx, rp)
	})
	return created, err
}

// Update changes repair id in one transaction: it reads the row locked
// (an answer, the expiry and a worker cannot move it at once), lets fn
// apply the repair's transitions, and writes what they recorded — the
// row, the steps of its timeline and the events, in the outbox. When fn
// fails nothing is written. A repair not decided yet comes with the
// counts its decision is checked against, under the lock that
// serialises those decisions: with several replicas, two cannot both
// take the last automatic repair of the hour.
func (r *Repairs) Update(ctx context.Context, id string, fn func(*lifecycle.Repair) error) error {
	return db.InTx(ctx, r.db, func(tx pgx.Tx) error {
		p, st, err := read(ctx, tx, id, " FOR UPDATE OF r")
		if err != nil {
			return err
		}
		if p.GetStatus() == repairv1.RepairStatus_REPAIR_STATUS_UNSPECIFIED {
			if st.Recent, err = countAutomatic(ctx, tx, lifecycle.Resource(p.GetProposal().GetTarget()), time.Now()); err != nil {
				return err
			}
		}
		rp := lifecycle.Restore(p, st)
		if err := fn(rp); err != nil {
			return err
		}
		return record(ctx, tx, rp)
	})
}

// record writes what a repair's transitions recorded, in tx.
func record(ctx context.Context, tx pgx.Tx, rp *lifecycle.Repair) error {
	id, c := rp.ID(), rp.Changes()
	if c.Row {
		if err := save(ctx, tx, rp.Proto(), c); err != nil {
			return err
		}
	}
	for _, st := range c.Steps {
		kind := st.GetKind().String()[len("STEP_KIND_"):]
		if _, err := tx.Exec(ctx, `INSERT INTO repair_steps (repair_id, at, kind, actor, channel, message) VALUES ($1, $2, $3, $4, $5, $6)`,
			id, st.GetTime().AsTime(), kind, st.GetActor(), st.GetChannel(), st.GetMessage()); err != nil {
			return fmt.Errorf("add step to repair %s: %w", id, err)
		}
	}
	if len(c.Events) == 0 {
		return nil
	}
	for _, e := range c.Events {
		// The approval card's header shows the incident's priority as
		// this service last heard it, which a repair does not keep: it
		// may change while the repair waits.
		if ask, ok := e.(*eventsv1.RepairApprovalRequested); ok {
			p, err := priority(ctx, tx, ask.GetIncidentId())
			if err != nil {
				return err
			}
			ask.Priority = p
		}
	}
	return outbox.Add(ctx, tx, c.Events...)
}

// save writes a repair's message and the columns its transitions
// changed. A repair released to the workers for its next step starts
// counting that step's failures afresh, in the transaction that ends the
// step: a worker that leases it at once finds the count at zero. One
// that ended keeps the count it ended with.
func save(ctx context.Context, tx pgx.Tx, p *repairv1.Repair, c lifecycle.Changes) error {
	b, err := marshal(p)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE repairs SET status = $2, repair = $3, updated_at = $4,
		automatic = automatic OR $5,
		decided_at = coalesce($6, decided_at),
		expires_at = coalesce($7, expires_at),
		cooldown_until = coalesce($8, cooldown_until),
		result = coalesce($9, result),
		locked_until = CASE WHEN $10 THEN NULL ELSE locked_until END,
		failures = CASE WHEN $10 AND $2 IN ('PROPOSED', 'QUEUED', 'RUNNING', 'VERIFYING') THEN 0 ELSE failures END,
		tries = CASE WHEN $10 AND $2 IN ('PROPOSED', 'QUEUED', 'RUNNING', 'VERIFYING') THEN 0 ELSE tries END,
		remind_at = CASE WHEN $11 THEN NULL ELSE coalesce($12, remind_at) END
		WHERE id = $1`,
		p.GetId(), Status(p.GetStatus()), b, p.GetUpdateTime().AsTime(), c.Automatic, nullTime(c.DecidedAt), nullTime(c.ExpiresAt),
		nullTime(c.CooldownUntil), nullJSON(c.State), c.Release, c.NoReminder, nullTime(c.RemindAt))
	if err != nil {
		return fmt.Errorf("save repair %s: %w", p.GetId(), err)
	}
	return nil
}

// marshal is a repair's message as the row keeps it: without its
// timeline, which has its own table.
func marshal(p *repairv1.Repair) ([]byte, error) {
	steps := p.Steps
	p.Steps = nil
	defer func() { p.Steps = steps }()
	return proto.Marshal(p)
}

// automaticLock serialises the decisions that count automatic repairs.
const automaticLock = 0x7669_6769_6c72_7072 // "vigilrpr"

// countAutomatic takes the lock that serialises automatic decisions
// (held until tx ends) and counts, as of now.
func countAutomatic(ctx context.Context, tx pgx.Tx, resource string, now time.Time) (lifecycle.Counts, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(automaticLock)); err != nil {
		return lifecycle.Counts{}, err
	}
	var (
		c        lifecycle.Counts
		cooldown *time.Time
	)
	err := tx.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM repairs WHERE automatic AND decided_at > $2),
		(SELECT count(*) FROM repairs WHERE automatic AND resource = $1 AND decided_at > $2),
		(SELECT max(cooldown_until) FROM repairs WHERE resource = $1)`, resource, now.Add(-time.Hour)).
		Scan(&c.Overall, &c.OnResource, &cooldown)
	if err != nil {
		return lifecycle.Counts{}, fmt.Errorf("count repairs: %w", err)
	}
	if cooldown != nil {
		c.CooldownUntil = *cooldown
	}
	return c, nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func nullJSON(b json.RawMessage) any {
	if b == nil {
		return nil
	}
	return string(b)
}
