// Package postgres is the repair service's store, in its own schema
// "repair": repairs (and their work queue), their timelines, and the
// guardrails set through the API. A repair changes only through its
// repository, Repairs.Update, which writes the row, its timeline and its
// outbox rows in one transaction.
package postgres

import (
	"context"
	"embed"
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
	"github.com/vigil-ops/vigil/services/repair/internal/lifecycle"
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

// Row is a repair as the API shows it.
type Row struct {
	Repair *repairv1.Repair
}

// Status is a repair's status as the store names it.
func Status(s repairv1.RepairStatus) string {
	if s == repairv1.RepairStatus_REPAIR_STATUS_UNSPECIFIED {
		return "PROPOSED"
	}
	return s.String()[len("REPAIR_STATUS_"):]
}

// Lease takes the oldest repair with work to do that nobody holds (being
// decided, queued, running, verifying), for lease. It changes it only
// through Repairs.Update: the lease keeps other workers away, the row
// lock of Update the answers and the expiry.
func (s *Store) Lease(ctx context.Context, now time.Time, lease time.Duration) (*lifecycle.Repair, bool, error) {
	var id string
	err := s.pool.QueryRow(ctx, `UPDATE repairs SET locked_until = $1, attempts = attempts + 1, tries = tries + 1
		WHERE id = (SELECT id FROM repairs WHERE status IN ('PROPOSED', 'QUEUED', 'RUNNING', 'VERIFYING')
			AND (locked_until IS NULL OR locked_until < $2) ORDER BY updated_at LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING id::text`, now.Add(lease), now).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("lease a repair: %w", err)
	}
	r, err := load(ctx, s.pool, id, "")
	return r, err == nil, err
}

// Renew keeps holding a leased repair until at least until, while the
// worker that leased it as attempt still holds it: a worker whose lease
// ran out and was taken (attempts moved on) or that released it (NULL)
// never extends someone else's. held is false then.
func (s *Store) Renew(ctx context.Context, id string, attempt int, until time.Time) (held bool, err error) {
	tag, err := s.pool.Exec(ctx, `UPDATE repairs SET locked_until = GREATEST(locked_until, $3)
		WHERE id = $1 AND attempts = $2 AND locked_until IS NOT NULL`, id, attempt, until)
	return tag.RowsAffected() == 1, err
}

// Hold sets the lease of a repair that the worker of attempt still
// holds to end at until, sooner or later than now, after a try of its
// step that went well but must be made again (a verification not done
// yet): the failures in a row end.
func (s *Store) Hold(ctx context.Context, id string, attempt int, until time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE repairs SET locked_until = $3, failures = 0, tries = 0
		WHERE id = $1 AND attempts = $2 AND locked_until IS NOT NULL`, id, attempt, until)
	return err
}

// Failed records that the try of a repair's step by the worker of
// attempt failed, while that worker still holds it, and returns the
// failed tries of that step in a row. held is false (nothing recorded)
// when the lease ran out and another worker took the repair, or the
// repair was released: that try is not the step's now.
func (s *Store) Failed(ctx context.Context, id string, attempt int) (failures int, held bool, err error) {
	err = s.pool.QueryRow(ctx, `UPDATE repairs SET failures = failures + 1
		WHERE id = $1 AND attempts = $2 AND locked_until IS NOT NULL RETURNING failures`, id, attempt).Scan(&failures)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("record a failed try of repair %s: %w", id, err)
	}
	return failures, true, nil
}

// Get returns a repair (with its timeline when withSteps), read with q
// (the pool when nil), for the API.
func (s *Store) Get(ctx context.Context, q Querier, id string, withSteps bool) (Row, error) {
	if q == nil {
		q = s.pool
	}
	r, err := load(ctx, q, id, "")
	if err != nil {
		return Row{}, err
	}
	pb := r.Proto()
	if withSteps {
		if pb.Steps, err = steps(ctx, q, id); err != nil {
			return Row{}, err
		}
	}
	return Row{Repair: pb}, nil
}

// load reads a repair.
func load(ctx context.Context, q Querier, id, lock string) (*lifecycle.Repair, error) {
	p, st, err := read(ctx, q, id, lock)
	if err != nil {
		return nil, err
	}
	return lifecycle.Restore(p, st), nil
}

// read reads a repair's row (lock: "" or a locking clause).
func read(ctx context.Context, q Querier, id, lock string) (*repairv1.Repair, lifecycle.Stored, error) {
	var (
		st   lifecycle.Stored
		b    []byte
		team string
	)
	err := q.QueryRow(ctx, `SELECT r.repair, r.automatic, r.attempts, r.tries, r.result, `+appteam.OwnerOf("r.app", "r.team")+`
		FROM repairs r WHERE r.id = $1`+lock, id).Scan(&b, &st.Automatic, &st.Attempts, &st.Tries, &st.State, &team)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, st, fmt.Errorf("repair %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, st, fmt.Errorf("repair %s: %w", id, err)
	}
	p := &repairv1.Repair{}
	if err := proto.Unmarshal(b, p); err != nil {
		return nil, st, fmt.Errorf("repair %s: %w", id, err)
	}
	p.Team = team
	return p, st, nil
}

func steps(ctx context.Context, q Querier, id string) ([]*repairv1.RepairStep, error) {
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

// Expired returns the repairs waiting for a person past their deadline.
func (s *Store) Expired(ctx context.Context, now time.Time, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id::text FROM repairs WHERE status = 'PENDING_APPROVAL' AND expires_at < $1 ORDER BY expires_at LIMIT $2`, now, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Reminders returns the snoozed approvals due to be asked again: still
// waiting, and not past their expiry.
func (s *Store) Reminders(ctx context.Context, now time.Time, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id::text FROM repairs WHERE remind_at <= $1 AND status = 'PENDING_APPROVAL' AND expires_at > $1
		ORDER BY remind_at LIMIT $2`, now, limit)
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

// AddSubject records an incident's subject as the monitor announced it,
// with its priority then; the first announcement stands (an incident's
// subject never changes; SetPriority follows its priority).
func (s *Store) AddSubject(ctx context.Context, tx pgx.Tx, inc *typesv1.Incident, subj *typesv1.Subject, now time.Time) error {
	incidentID := inc.GetId()
	b, err := protojson.Marshal(subj)
	if err != nil {
		return fmt.Errorf("subject of incident %s: %w", incidentID, err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO incident_subjects (incident_id, subject, team, received_at, priority, priority_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (incident_id) DO NOTHING`, incidentID, b, subj.GetTeam(), now, int16(inc.GetPriority()), changedAt(inc))
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

// SetPriority records inc's priority as an incident.updated announced it,
// unless the record is of a newer announcement (events of one incident
// may be handled out of order). An incident this service never heard
// open is left alone: it has no subject, so no repair.
func (s *Store) SetPriority(ctx context.Context, tx pgx.Tx, inc *typesv1.Incident) error {
	_, err := tx.Exec(ctx, `UPDATE incident_subjects SET priority = $2, priority_at = $3
		WHERE incident_id = $1 AND (priority_at IS NULL OR priority_at <= $3)`,
		inc.GetId(), int16(inc.GetPriority()), changedAt(inc))
	if err != nil {
		return fmt.Errorf("priority of incident %s: %w", inc.GetId(), err)
	}
	return nil
}

// changedAt is when inc was last changed as its event says, nil when it
// does not say.
func changedAt(inc *typesv1.Incident) *time.Time {
	if inc.GetUpdatedAt() == nil {
		return nil
	}
	t := inc.GetUpdatedAt().AsTime()
	return &t
}

// priority is the priority of an incident as the monitor last announced
// it; unspecified when none reached this service.
func priority(ctx context.Context, q Querier, incidentID string) (typesv1.Priority, error) {
	var p int16
	err := q.QueryRow(ctx, `SELECT priority FROM incident_subjects WHERE incident_id = $1`, incidentID).Scan(&p)
	if errors.Is(err, pgx.ErrNoRows) {
		return typesv1.Priority_PRIORITY_UNSPECIFIED, nil
	}
	if err != nil {
		return 0, fmt.Errorf("priority of incident %s: %w", incidentID, err)
	}
	return typesv1.Priority(p), nil
}
