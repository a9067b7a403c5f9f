package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-ops/vigil/pkg/db"
)

// Incidents keeps what routes need to know of the incidents notify
// announced.
type Incidents struct{ pool *pgxpool.Pool }

// NewIncidents returns the routed incidents over pool.
func NewIncidents(pool *pgxpool.Pool) *Incidents { return &Incidents{pool: pool} }

// Incident is an incident as routes see it.
type Incident struct {
	ID, Title                                string
	Team, App, Namespace, Priority, Severity string
	Labels                                   map[string]string
	OpenedAt                                 time.Time
	Firing, Alerts                           int
	Acknowledged                             bool
	Resolved                                 bool
}

// routeFields are the columns' route document.
type routeFields struct {
	Team      string            `json:"team,omitempty"`
	App       string            `json:"app,omitempty"`
	Namespace string            `json:"namespace,omitempty"`
	Priority  string            `json:"priority,omitempty"`
	Severity  string            `json:"severity,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
}

// Track records inc as its latest event shows it. A resolved incident
// stays resolved: an update delivered after its resolution changes
// nothing.
func (s *Incidents) Track(ctx context.Context, inc Incident) error {
	data, err := json.Marshal(routeFields{
		Team: inc.Team, App: inc.App, Namespace: inc.Namespace, Priority: inc.Priority, Severity: inc.Severity, Labels: inc.Labels,
	})
	if err != nil {
		return fmt.Errorf("encode incident %s: %w", inc.ID, err)
	}
	var resolved *time.Time
	if inc.Resolved {
		now := time.Now()
		resolved = &now
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO routed_incidents
			(incident_id, route, title, opened_at, firing, alerts, acknowledged, resolved_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (incident_id) DO UPDATE SET route = excluded.route, title = excluded.title,
			firing = excluded.firing, alerts = excluded.alerts, acknowledged = excluded.acknowledged,
			resolved_at = coalesce(routed_incidents.resolved_at, excluded.resolved_at), updated_at = now()`,
		inc.ID, data, inc.Title, inc.OpenedAt, inc.Firing, inc.Alerts, inc.Acknowledged, resolved)
	if err != nil {
		return fmt.Errorf("track incident %s: %w", inc.ID, err)
	}
	return nil
}

const incidentColumns = `incident_id, route, title, opened_at, firing, alerts, acknowledged, resolved_at IS NOT NULL`

func scanIncident(row pgx.CollectableRow) (Incident, error) {
	var (
		inc  Incident
		data []byte
		f    routeFields
	)
	if err := row.Scan(&inc.ID, &data, &inc.Title, &inc.OpenedAt, &inc.Firing, &inc.Alerts, &inc.Acknowledged, &inc.Resolved); err != nil {
		return inc, err
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return inc, fmt.Errorf("decode incident %s: %w", inc.ID, err)
	}
	inc.Team, inc.App, inc.Namespace, inc.Priority, inc.Severity, inc.Labels = f.Team, f.App, f.Namespace, f.Priority, f.Severity, f.Labels
	return inc, nil
}

// Get is incident id, false when notify never saw it open.
func (s *Incidents) Get(ctx context.Context, id string) (Incident, bool, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+incidentColumns+` FROM routed_incidents WHERE incident_id = $1`, id)
	inc, err := pgx.CollectExactlyOneRow(rows, scanIncident)
	if errors.Is(err, pgx.ErrNoRows) {
		return Incident{}, false, nil
	}
	if err != nil {
		return Incident{}, false, fmt.Errorf("load incident %s: %w", id, err)
	}
	return inc, true, nil
}

// Firing are the incidents neither resolved nor acknowledged, opened
// since since, oldest first: one whose resolution notify missed is not
// repeated for ever.
func (s *Incidents) Firing(ctx context.Context, since time.Time) ([]Incident, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+incidentColumns+` FROM routed_incidents
		WHERE resolved_at IS NULL AND NOT acknowledged AND opened_at >= $1 ORDER BY opened_at LIMIT 1000`, since)
	out, err := pgx.CollectRows(rows, scanIncident)
	if err != nil {
		return nil, fmt.Errorf("firing incidents: %w", err)
	}
	return out, nil
}

// Prune deletes the incidents last touched before before, and returns
// how many.
func (s *Incidents) Prune(ctx context.Context, before time.Time) (int64, error) {
	n, err := db.DeleteInBatches(ctx, s.pool, pruneChunk, `DELETE FROM routed_incidents r USING (
			SELECT incident_id FROM routed_incidents WHERE updated_at < $1
			LIMIT $2 FOR UPDATE SKIP LOCKED
		) old WHERE r.incident_id = old.incident_id`, before)
	if err != nil {
		return n, fmt.Errorf("prune routed incidents: %w", err)
	}
	return n, nil
}
