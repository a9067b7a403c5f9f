package escalation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	"github.com/vigil-ops/vigil/services/monitor/internal/priority"
)

// Querier runs statements: a pool or a transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Document is a named, team-owned API message.
type Document interface {
	proto.Message
	GetName() string
	GetTeam() string
}

// Stored is a named document kept as its API message: on-call schedules
// and escalation policies.
type Stored[T Document] struct {
	table string
	kind  string
	new   func() T
	// out sets the output-only fields of a read document.
	out func(v T, fromFile bool, at time.Time, by string)
}

// Schedules are the on-call schedules.
var Schedules = Stored[*monitorv1.OnCallSchedule]{
	table: "oncall_schedules", kind: "schedule",
	new: func() *monitorv1.OnCallSchedule { return &monitorv1.OnCallSchedule{} },
	out: func(v *monitorv1.OnCallSchedule, fromFile bool, at time.Time, by string) {
		v.FromFile, v.UpdatedAt, v.UpdatedBy = fromFile, timestamppb.New(at), by
	},
}

// Policies are the escalation policies.
var Policies = Stored[*monitorv1.EscalationPolicy]{
	table: "escalation_policies", kind: "escalation policy",
	new: func() *monitorv1.EscalationPolicy { return &monitorv1.EscalationPolicy{} },
	out: func(v *monitorv1.EscalationPolicy, fromFile bool, at time.Time, by string) {
		v.FromFile, v.UpdatedAt, v.UpdatedBy = fromFile, timestamppb.New(at), by
	},
}

// columns are what scan reads.
const columns = `spec, from_file, updated_at, updated_by`

func (s Stored[T]) scan(row pgx.Row) (T, error) {
	var (
		spec     []byte
		fromFile bool
		at       time.Time
		by       string
	)
	v := s.new()
	if err := row.Scan(&spec, &fromFile, &at, &by); err != nil {
		return v, err
	}
	if err := protojson.Unmarshal(spec, v); err != nil {
		return v, fmt.Errorf("decode %s: %w", s.kind, err)
	}
	s.out(v, fromFile, at, by)
	return v, nil
}

// Get returns the document named name, or ErrNotFound.
func (s Stored[T]) Get(ctx context.Context, q Querier, name string) (T, error) {
	v, err := s.scan(q.QueryRow(ctx, `SELECT `+columns+` FROM `+s.table+` WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return v, fmt.Errorf("%s %q: %w", s.kind, name, ErrNotFound)
	}
	return v, err
}

// List returns the documents of team (all when team is "*"), by name.
func (s Stored[T]) List(ctx context.Context, q Querier, team string) ([]T, error) {
	rows, err := q.Query(ctx, `SELECT `+columns+` FROM `+s.table+`
		WHERE $1 = '*' OR team = $1 ORDER BY name`, team)
	if err != nil {
		return nil, fmt.Errorf("list %ss: %w", s.kind, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := s.scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Put creates (create) or replaces the document. Replacing one the file
// defines is ErrFromFile unless fromFile; a document's team does not
// change.
func (s Stored[T]) Put(ctx context.Context, tx pgx.Tx, v T, create, fromFile bool, by string, now time.Time) (T, error) {
	var zero T
	spec, err := encode(v)
	if err != nil {
		return zero, err
	}
	if create {
		out, err := s.scan(tx.QueryRow(ctx, `INSERT INTO `+s.table+` (name, team, spec, from_file, updated_at, updated_by)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+columns, v.GetName(), v.GetTeam(), spec, fromFile, now, by))
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return zero, fmt.Errorf("%s %q: %w", s.kind, v.GetName(), ErrExists)
		}
		if err != nil {
			return zero, fmt.Errorf("create %s %q: %w", s.kind, v.GetName(), err)
		}
		return out, nil
	}
	var team string
	var wasFile bool
	err = tx.QueryRow(ctx, `SELECT team, from_file FROM `+s.table+` WHERE name = $1 FOR UPDATE`, v.GetName()).Scan(&team, &wasFile)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return zero, fmt.Errorf("%s %q: %w", s.kind, v.GetName(), ErrNotFound)
	case err != nil:
		return zero, fmt.Errorf("load %s %q: %w", s.kind, v.GetName(), err)
	case wasFile && !fromFile:
		return zero, fmt.Errorf("%s %q: %w", s.kind, v.GetName(), ErrFromFile)
	case team != v.GetTeam():
		return zero, fmt.Errorf("%s %q belongs to team %q, not %q: %w", s.kind, v.GetName(), team, v.GetTeam(), ErrTeamChange)
	}
	out, err := s.scan(tx.QueryRow(ctx, `UPDATE `+s.table+` SET spec = $2, from_file = $3, updated_at = $4, updated_by = $5
		WHERE name = $1 RETURNING `+columns, v.GetName(), spec, fromFile, now, by))
	if err != nil {
		return zero, fmt.Errorf("update %s %q: %w", s.kind, v.GetName(), err)
	}
	return out, nil
}

// Delete deletes the document (ErrNotFound, ErrFromFile).
func (s Stored[T]) Delete(ctx context.Context, tx pgx.Tx, name string) error {
	var fromFile bool
	err := tx.QueryRow(ctx, `DELETE FROM `+s.table+` WHERE name = $1 RETURNING from_file`, name).Scan(&fromFile)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%s %q: %w", s.kind, name, ErrNotFound)
	case err != nil:
		return fmt.Errorf("delete %s %q: %w", s.kind, name, err)
	case fromFile:
		return fmt.Errorf("%s %q: %w", s.kind, name, ErrFromFile)
	}
	return nil
}

// Team returns the team of the document named name, or ErrNotFound.
func (s Stored[T]) Team(ctx context.Context, q Querier, name string) (string, error) {
	var team string
	err := q.QueryRow(ctx, `SELECT team FROM `+s.table+` WHERE name = $1`, name).Scan(&team)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("%s %q: %w", s.kind, name, ErrNotFound)
	}
	return team, err
}

// encode stores a document without its output-only fields.
func encode(m proto.Message) ([]byte, error) {
	c := proto.Clone(m)
	switch v := c.(type) {
	case *monitorv1.OnCallSchedule:
		v.FromFile, v.UpdatedAt, v.UpdatedBy = false, nil, ""
	case *monitorv1.EscalationPolicy:
		v.FromFile, v.UpdatedAt, v.UpdatedBy = false, nil, ""
	case *monitorv1.PriorityRules:
		v.FromFile = false
	}
	return protojson.Marshal(c)
}

// GetRules returns the priority rules (none: the defaults).
func GetRules(ctx context.Context, q Querier) (*monitorv1.PriorityRules, error) {
	var spec []byte
	var fromFile bool
	err := q.QueryRow(ctx, `SELECT spec, from_file FROM priority_rules WHERE id = 1`).Scan(&spec, &fromFile)
	if errors.Is(err, pgx.ErrNoRows) {
		return &monitorv1.PriorityRules{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load priority rules: %w", err)
	}
	r := &monitorv1.PriorityRules{}
	if err := protojson.Unmarshal(spec, r); err != nil {
		return nil, fmt.Errorf("decode priority rules: %w", err)
	}
	r.FromFile = fromFile
	return r, nil
}

// SetRules replaces the priority rules (ErrFromFile when the file defines
// them and this is not the file).
func SetRules(ctx context.Context, tx pgx.Tx, r *monitorv1.PriorityRules, fromFile bool, by string, now time.Time) error {
	spec, err := encode(r)
	if err != nil {
		return err
	}
	var wasFile bool
	err = tx.QueryRow(ctx, `SELECT from_file FROM priority_rules WHERE id = 1 FOR UPDATE`).Scan(&wasFile)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("load priority rules: %w", err)
	}
	if wasFile && !fromFile {
		return fmt.Errorf("priority rules: %w", ErrFromFile)
	}
	_, err = tx.Exec(ctx, `INSERT INTO priority_rules (id, spec, from_file, updated_at, updated_by) VALUES (1, $1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET spec = $1, from_file = $2, updated_at = $3, updated_by = $4`, spec, fromFile, now, by)
	if err != nil {
		return fmt.Errorf("save priority rules: %w", err)
	}
	return nil
}

// LoadPriorities returns the priority rules in force, compiled: the
// correlator's incident.Priorities.
func LoadPriorities(ctx context.Context, tx pgx.Tx) (*priority.Set, error) {
	r, err := GetRules(ctx, tx)
	if err != nil {
		return nil, err
	}
	return CompileRules(r, "")
}
