// Package postgres keeps the analysis schema: incidents as announced,
// analyses waiting to run (jobs), results, and the read model of recent
// deployments.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ops/vigil/pkg/appteam"
	analysisv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/analysis/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
)

// Migrations are the analysis schema's migrations.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// ErrNotFound is an incident or analysis the schema does not hold.
var ErrNotFound = errors.New("not found")

// Store is the analysis repository.
type Store struct{ pool *pgxpool.Pool }

// New returns a Store over pool (search_path: the analysis schema).
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// AddIncident records an incident and asks for its analysis, in tx.
func (s *Store) AddIncident(ctx context.Context, tx pgx.Tx, inc *typesv1.Incident, now time.Time) error {
	b, err := proto.Marshal(inc)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO incidents (id, app, event, opened_at, received_at, team) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO NOTHING`, inc.GetId(), inc.GetApp(), b, inc.GetOpenedAt().AsTime(), now, inc.GetTeam()); err != nil {
		return fmt.Errorf("add incident %s: %w", inc.GetId(), err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO jobs (incident_id, requested_at) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
		inc.GetId(), now); err != nil {
		return fmt.Errorf("queue analysis of %s: %w", inc.GetId(), err)
	}
	return nil
}

// Requeue asks for incidentID to be analysed again, in tx, unless it is
// unknown, already queued, or was analysed less than interval ago; it
// reports whether it did.
func (s *Store) Requeue(ctx context.Context, tx pgx.Tx, incidentID string, now time.Time, interval time.Duration) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO jobs (incident_id, requested_at)
		SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM incidents WHERE id = $1)
		AND NOT EXISTS (SELECT 1 FROM analyses WHERE incident_id = $1 AND created_at > $3)
		ON CONFLICT DO NOTHING`, incidentID, now, now.Add(-interval))
	if err != nil {
		return false, fmt.Errorf("queue analysis of %s again: %w", incidentID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Incident returns an incident as it was announced.
func (s *Store) Incident(ctx context.Context, id string) (*typesv1.Incident, error) {
	return incident(ctx, s.pool, id)
}

// IncidentTx is Incident inside tx: a transaction must not wait for a
// second connection of the pool (with every connection in a transaction,
// that waits forever).
func (s *Store) IncidentTx(ctx context.Context, tx pgx.Tx, id string) (*typesv1.Incident, error) {
	return incident(ctx, tx, id)
}

func incident(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, id string,
) (*typesv1.Incident, error) {
	var b []byte
	err := q.QueryRow(ctx, `SELECT event FROM incidents WHERE id = $1`, id).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("incident %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	inc := &typesv1.Incident{}
	return inc, proto.Unmarshal(b, inc)
}

// Job is an analysis to run.
type Job struct {
	IncidentID  string
	Engine      string
	RequestedAt time.Time
	Attempts    int
}

// Lease takes the oldest job nobody holds, for lease; ok false when
// there is none.
func (s *Store) Lease(ctx context.Context, now time.Time, lease time.Duration) (Job, bool, error) {
	var j Job
	err := s.pool.QueryRow(ctx, `UPDATE jobs SET locked_until = $1, attempts = attempts + 1
		WHERE incident_id = (SELECT incident_id FROM jobs WHERE locked_until IS NULL OR locked_until < $2
			ORDER BY requested_at LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING incident_id::text, engine, requested_at, attempts`, now.Add(lease), now).
		Scan(&j.IncidentID, &j.Engine, &j.RequestedAt, &j.Attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, false, nil
	}
	if err != nil {
		return Job{}, false, fmt.Errorf("lease a job: %w", err)
	}
	return j, true, nil
}

// Extend keeps holding a leased job until until.
func (s *Store) Extend(ctx context.Context, incidentID string, until time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE jobs SET locked_until = $2 WHERE incident_id = $1`, incidentID, until)
	return err
}

// Done removes a job, in tx.
func (s *Store) Done(ctx context.Context, tx pgx.Tx, incidentID string) error {
	_, err := tx.Exec(ctx, `DELETE FROM jobs WHERE incident_id = $1`, incidentID)
	return err
}

// Drop removes a job outside any result (stale, or failed too often).
func (s *Store) Drop(ctx context.Context, incidentID string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM jobs WHERE incident_id = $1`, incidentID)
	return err
}

// AddAnalysis stores a result, in tx.
func (s *Store) AddAnalysis(ctx context.Context, tx pgx.Tx, a *analysisv1.Analysis) error {
	b, err := proto.Marshal(a)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO analyses (id, incident_id, created_at, engine, analysis) VALUES ($1, $2, $3, $4, $5)`,
		a.GetId(), a.GetIncidentId(), a.GetCreateTime().AsTime(), a.GetEngine(), b)
	return err
}

// Analysis returns one result.
func (s *Store) Analysis(ctx context.Context, id string) (*analysisv1.Analysis, error) {
	var b []byte
	err := s.pool.QueryRow(ctx, `SELECT analysis FROM analyses WHERE id = $1`, id).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("analysis %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	a := &analysisv1.Analysis{}
	return a, proto.Unmarshal(b, a)
}

// Teams scopes a list to the analyses of these teams' apps (and, with
// Unowned, of apps of no team); the zero value lists every analysis.
type Teams struct {
	Scoped  bool
	Teams   []string
	Unowned bool
}

// Analyses returns results newest first (of one incident when incidentID
// is set), at most limit+1, after (createdAt, id).
func (s *Store) Analyses(ctx context.Context, incidentID string, t Teams, limit int, afterAt time.Time, afterID string) ([]*analysisv1.Analysis, error) {
	rows, err := s.pool.Query(ctx, `SELECT a.analysis FROM analyses a
		WHERE ($1 = '' OR a.incident_id::text = $1) AND ($3 = '' OR (a.created_at, a.id::text) < ($2, $3))
		AND (NOT $5 OR (SELECT `+appteam.OwnerOf("i.app", "i.team")+` FROM incidents i WHERE i.id = a.incident_id) = ANY($6))
		ORDER BY a.created_at DESC, a.id DESC LIMIT $4`, incidentID, afterAt, afterID, limit+1, t.Scoped, appteam.WithUnowned(t.Teams, t.Unowned))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*analysisv1.Analysis, error) {
		var b []byte
		if err := r.Scan(&b); err != nil {
			return nil, err
		}
		a := &analysisv1.Analysis{}
		return a, proto.Unmarshal(b, a)
	})
}

// IncidentTeam returns the team that owns an incident ("" for none).
func (s *Store) IncidentTeam(ctx context.Context, incidentID string) (string, error) {
	var team string
	err := s.pool.QueryRow(ctx, `SELECT `+appteam.OwnerOf("i.app", "i.team")+` FROM incidents i WHERE i.id = $1`, incidentID).Scan(&team)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("incident %s: %w", incidentID, ErrNotFound)
	}
	return team, err
}

// AddDeploy records (or updates) a deployment seen on deploy's events.
func (s *Store) AddDeploy(ctx context.Context, tx pgx.Tx, d evidence.Deploy, app string) error {
	_, err := tx.Exec(ctx, `INSERT INTO deploys (deployment_id, app, revision, image, status, at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (deployment_id) DO UPDATE SET
			revision = greatest(deploys.revision, EXCLUDED.revision),
			image = CASE WHEN EXCLUDED.image <> '' THEN EXCLUDED.image ELSE deploys.image END,
			status = CASE WHEN EXCLUDED.at >= deploys.at THEN EXCLUDED.status ELSE deploys.status END,
			at = greatest(deploys.at, EXCLUDED.at)`, d.ID, app, d.Revision, d.Image, d.Status, d.At)
	return err
}

// Deploys returns app's deployments since since, newest first.
func (s *Store) Deploys(ctx context.Context, app string, since time.Time) ([]evidence.Deploy, error) {
	rows, err := s.pool.Query(ctx, `SELECT deployment_id, revision, image, status, at FROM deploys
		WHERE app = $1 AND at >= $2 ORDER BY at DESC LIMIT 20`, app, since)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (evidence.Deploy, error) {
		var d evidence.Deploy
		err := r.Scan(&d.ID, &d.Revision, &d.Image, &d.Status, &d.At)
		return d, err
	})
}

// Prune deletes what is older than before: incidents (and their jobs),
// analyses, deployments.
func (s *Store) Prune(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	for _, q := range []string{
		`DELETE FROM analyses WHERE created_at < $1`,
		`DELETE FROM incidents WHERE received_at < $1`,
		`DELETE FROM deploys WHERE at < $1`,
	} {
		tag, err := s.pool.Exec(ctx, q, before)
		if err != nil {
			return n, err
		}
		n += tag.RowsAffected()
	}
	return n, nil
}
