// Package postgres is the repair service's store, in its own schema
// "repair": repairs (and their work queue), their timelines, and the
// guardrails set through the API.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/appteam"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// Migrations create the schema.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// ErrNotFound means no such repair.
var ErrNotFound = errors.New("not found")

// Store reads and writes the repair schema.
type Store struct{ pool *pgxpool.Pool }

// New returns a store over pool (search_path: the repair schema).
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Querier reads: the pool or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Row is a repair with what the queue and the counters keep beside it.
type Row struct {
	Repair        *repairv1.Repair
	Resource      string
	Automatic     bool
	Attempts      int
	CooldownUntil time.Time
	// Result is what the executor returned (JSON), nil before.
	Result json.RawMessage
}

// Insert records a new repair in status PROPOSED, in tx; created is false
// when its analysis already has one (a redelivery).
func (s *Store) Insert(ctx context.Context, tx pgx.Tx, r *repairv1.Repair, resource string, now time.Time) (created bool, err error) {
	b, err := proto.Marshal(r)
	if err != nil {
		return false, err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO repairs (id, analysis_id, incident_id, app, resource, action, status, created_at, updated_at, repair, team)
		VALUES ($1, $2, $3, $4, $5, $6, 'PROPOSED', $7, $7, $8, $9) ON CONFLICT (analysis_id) DO NOTHING`,
		r.GetId(), r.GetAnalysisId(), r.GetIncidentId(), r.GetApp(), resource, r.GetProposal().GetAction().String(), now, b, r.GetTeam())
	if err != nil {
		return false, fmt.Errorf("insert repair: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Status is a repair's status as the store names it.
func Status(s repairv1.RepairStatus) string {
	if s == repairv1.RepairStatus_REPAIR_STATUS_UNSPECIFIED {
		return "PROPOSED"
	}
	return s.String()[len("REPAIR_STATUS_"):]
}

// Lease takes the oldest repair with work to do that nobody holds (being
// decided, queued, running, verifying), for lease.
func (s *Store) Lease(ctx context.Context, now time.Time, lease time.Duration) (Row, bool, error) {
	var id string
	err := s.pool.QueryRow(ctx, `UPDATE repairs SET locked_until = $1, attempts = attempts + 1
		WHERE id = (SELECT id FROM repairs WHERE status IN ('PROPOSED', 'QUEUED', 'RUNNING', 'VERIFYING')
			AND (locked_until IS NULL OR locked_until < $2) ORDER BY updated_at LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING id::text`, now.Add(lease), now).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Row{}, false, nil
	}
	if err != nil {
		return Row{}, false, fmt.Errorf("lease a repair: %w", err)
	}
	row, err := s.Get(ctx, s.pool, id, false)
	return row, err == nil, err
}

// Extend keeps holding a leased repair for lease more.
func (s *Store) Extend(ctx context.Context, id string, until time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE repairs SET locked_until = $2 WHERE id = $1`, id, until)
	return err
}

// Get returns a repair (with its timeline when steps), read with q (the
// pool when nil).
func (s *Store) Get(ctx context.Context, q Querier, id string, steps bool) (Row, error) {
	return s.get(ctx, q, id, steps, "")
}

// Lock returns a repair, locked until tx ends: an answer and a worker
// cannot both move it.
func (s *Store) Lock(ctx context.Context, tx pgx.Tx, id string) (Row, error) {
	return s.get(ctx, tx, id, false, " FOR UPDATE OF r")
}

func (s *Store) get(ctx context.Context, q Querier, id string, steps bool, lock string) (Row, error) {
	if q == nil {
		q = s.pool
	}
	var (
		row      Row
		b        []byte
		cooldown *time.Time
		team     string
	)
	err := q.QueryRow(ctx, `SELECT r.repair, r.resource, r.automatic, r.attempts, r.cooldown_until, r.result, `+appteam.OwnerOf("r.app", "r.team")+`
		FROM repairs r WHERE r.id = $1`+lock, id).Scan(&b, &row.Resource, &row.Automatic, &row.Attempts, &cooldown, &row.Result, &team)
	if errors.Is(err, pgx.ErrNoRows) {
		return Row{}, fmt.Errorf("repair %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Row{}, fmt.Errorf("repair %s: %w", id, err)
	}
	row.Repair = &repairv1.Repair{}
	if err := proto.Unmarshal(b, row.Repair); err != nil {
		return Row{}, err
	}
	row.Repair.Team = team
	if cooldown != nil {
		row.CooldownUntil = *cooldown
	}
	if steps {
		if row.Repair.Steps, err = s.steps(ctx, q, id); err != nil {
			return Row{}, err
		}
	}
	return row, nil
}

func (s *Store) steps(ctx context.Context, q Querier, id string) ([]*repairv1.RepairStep, error) {
	rows, err := q.Query(ctx, `SELECT at, kind, actor, channel, message FROM repair_steps WHERE repair_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*repairv1.RepairStep, error) {
		var (
			at   time.Time
			kind string
			st   repairv1.RepairStep
		)
		if err := r.Scan(&at, &kind, &st.Actor, &st.Channel, &st.Message); err != nil {
			return nil, err
		}
		st.Time = timestamppb.New(at)
		st.Kind = repairv1.StepKind(repairv1.StepKind_value["STEP_KIND_"+kind])
		return &st, nil
	})
}

// Update is a change to a repair.
type Update struct {
	// Automatic marks it executed without a person (counted by the
	// hourly limits from DecidedAt).
	Automatic bool
	DecidedAt time.Time
	// ExpiresAt: the approval's deadline.
	ExpiresAt     time.Time
	CooldownUntil time.Time
	Result        json.RawMessage
	// Release lets workers take it again at once (its lease ends).
	Release bool
}

// Save writes r (its status, fields) and u, in tx.
func (s *Store) Save(ctx context.Context, tx pgx.Tx, r *repairv1.Repair, u Update, now time.Time) error {
	steps := r.Steps
	r.Steps = nil
	b, err := proto.Marshal(r)
	r.Steps = steps
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE repairs SET status = $2, repair = $3, updated_at = $4,
		automatic = automatic OR $5,
		decided_at = coalesce($6, decided_at),
		expires_at = coalesce($7, expires_at),
		cooldown_until = coalesce($8, cooldown_until),
		result = coalesce($9, result),
		locked_until = CASE WHEN $10 THEN NULL ELSE locked_until END
		WHERE id = $1`,
		r.GetId(), Status(r.GetStatus()), b, now, u.Automatic, nullTime(u.DecidedAt), nullTime(u.ExpiresAt), nullTime(u.CooldownUntil), nullJSON(u.Result), u.Release)
	if err != nil {
		return fmt.Errorf("save repair %s: %w", r.GetId(), err)
	}
	return nil
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

// AddStep appends to a repair's timeline, in tx.
func (s *Store) AddStep(ctx context.Context, tx pgx.Tx, id string, st *repairv1.RepairStep) error {
	kind := st.GetKind().String()[len("STEP_KIND_"):]
	_, err := tx.Exec(ctx, `INSERT INTO repair_steps (repair_id, at, kind, actor, channel, message) VALUES ($1, $2, $3, $4, $5, $6)`,
		id, st.GetTime().AsTime(), kind, st.GetActor(), st.GetChannel(), st.GetMessage())
	if err != nil {
		return fmt.Errorf("add step to repair %s: %w", id, err)
	}
	return nil
}

// automaticLock serialises the decisions that count automatic repairs:
// with several replicas, two cannot both take the last one of the hour.
const automaticLock = 0x7669_6769_6c72_7072 // "vigilrpr"

// Counts are what the limits and the cooldown are checked against.
type Counts struct {
	// Automatic repairs decided in the last hour: overall, of the
	// resource.
	Overall, OnResource int
	// The resource rests until then (after a failed repair).
	CooldownUntil time.Time
}

// CountAutomatic takes the lock that serialises automatic decisions (held
// until tx ends) and counts, as of now.
func (s *Store) CountAutomatic(ctx context.Context, tx pgx.Tx, resource string, now time.Time) (Counts, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(automaticLock)); err != nil {
		return Counts{}, err
	}
	var (
		c        Counts
		cooldown *time.Time
	)
	err := tx.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM repairs WHERE automatic AND decided_at > $2),
		(SELECT count(*) FROM repairs WHERE automatic AND resource = $1 AND decided_at > $2),
		(SELECT max(cooldown_until) FROM repairs WHERE resource = $1)`, resource, now.Add(-time.Hour)).
		Scan(&c.Overall, &c.OnResource, &cooldown)
	if err != nil {
		return Counts{}, fmt.Errorf("count repairs: %w", err)
	}
	if cooldown != nil {
		c.CooldownUntil = *cooldown
	}
	return c, nil
}

// Expired returns the repairs waiting for a person past their deadline.
func (s *Store) Expired(ctx context.Context, now time.Time, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id::text FROM repairs WHERE status = 'PENDING_APPROVAL' AND expires_at < $1 ORDER BY expires_at LIMIT $2`, now, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Filter selects repairs for a list; the zero value selects all.
type Filter struct {
	IncidentID string
	Status     string
	// Scoped: only the repairs of apps of Teams (and, with Unowned, of
	// no team).
	Scoped  bool
	Teams   []string
	Unowned bool
}

// List returns repairs newest first, at most limit+1, after (createdAt, id).
func (s *Store) List(ctx context.Context, f Filter, limit int, afterAt time.Time, afterID string) ([]*repairv1.Repair, error) {
	rows, err := s.pool.Query(ctx, `SELECT r.repair, `+appteam.OwnerOf("r.app", "r.team")+` FROM repairs r
		WHERE ($1 = '' OR r.incident_id::text = $1) AND ($2 = '' OR r.status = $2)
		AND ($4 = '' OR (r.created_at, r.id::text) < ($3, $4))
		AND (NOT $6 OR `+appteam.OwnerOf("r.app", "r.team")+` = ANY($7))
		ORDER BY r.created_at DESC, r.id DESC LIMIT $5`,
		f.IncidentID, f.Status, afterAt, afterID, limit+1, f.Scoped, appteam.WithUnowned(f.Teams, f.Unowned))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*repairv1.Repair, error) {
		var (
			b    []byte
			team string
		)
		if err := r.Scan(&b, &team); err != nil {
			return nil, err
		}
		rp := &repairv1.Repair{}
		if err := proto.Unmarshal(b, rp); err != nil {
			return nil, err
		}
		rp.Team = team
		return rp, nil
	})
}

// Guardrails returns the guardrails set for scope (nil when none are).
func (s *Store) Guardrails(ctx context.Context, q Querier, scope string) (*repairv1.Guardrails, error) {
	var b []byte
	err := q.QueryRow(ctx, `SELECT guardrails FROM guardrails WHERE scope = $1`, scope).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("guardrails of %s: %w", scope, err)
	}
	g := &repairv1.Guardrails{}
	return g, proto.Unmarshal(b, g)
}

// SetGuardrails replaces the guardrails of g's scope, in tx.
func (s *Store) SetGuardrails(ctx context.Context, tx pgx.Tx, g *repairv1.Guardrails, by string, now time.Time) error {
	b, err := proto.Marshal(g)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO guardrails (scope, guardrails, updated_at, updated_by) VALUES ($1, $2, $3, $4)
		ON CONFLICT (scope) DO UPDATE SET guardrails = EXCLUDED.guardrails, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by`,
		g.GetScope(), b, now, by)
	if err != nil {
		return fmt.Errorf("set guardrails of %s: %w", g.GetScope(), err)
	}
	return nil
}

// Prune deletes finished repairs older than before.
func (s *Store) Prune(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM repairs WHERE created_at < $1
		AND status NOT IN ('PROPOSED', 'PENDING_APPROVAL', 'QUEUED', 'RUNNING', 'VERIFYING')`, before)
	if err != nil {
		return 0, err
	}
	subjects, err := s.pool.Exec(ctx, `DELETE FROM incident_subjects s WHERE received_at < $1
		AND NOT EXISTS (SELECT 1 FROM repairs r WHERE r.incident_id = s.incident_id)`, before)
	return tag.RowsAffected() + subjects.RowsAffected(), err
}

// AddSubject records an incident's subject as the monitor announced it;
// the first announcement stands (an incident's subject never changes).
func (s *Store) AddSubject(ctx context.Context, tx pgx.Tx, incidentID string, subj *typesv1.Subject, now time.Time) error {
	b, err := protojson.Marshal(subj)
	if err != nil {
		return fmt.Errorf("subject of incident %s: %w", incidentID, err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO incident_subjects (incident_id, subject, team, received_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (incident_id) DO NOTHING`, incidentID, b, subj.GetTeam(), now)
	if err != nil {
		return fmt.Errorf("subject of incident %s: %w", incidentID, err)
	}
	return nil
}

// Subject is the subject of an incident as the monitor announced it;
// ErrNotFound when no announcement reached this service.
func (s *Store) Subject(ctx context.Context, q Querier, incidentID string) (*typesv1.Subject, error) {
	var b []byte
	err := q.QueryRow(ctx, `SELECT subject FROM incident_subjects WHERE incident_id = $1`, incidentID).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("subject of incident %s: %w", incidentID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("subject of incident %s: %w", incidentID, err)
	}
	subj := &typesv1.Subject{}
	if err := protojson.Unmarshal(b, subj); err != nil {
		return nil, fmt.Errorf("subject of incident %s: %w", incidentID, err)
	}
	return subj, nil
}
