package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-ops/vigil/services/monitor/internal/incident"
)

// Teams keeps which team each app belongs to (app_teams): a projection of
// the deploy service's app events.
type Teams struct{}

// Set records that app belongs to team as of at, unless a newer event
// was applied already.
func (Teams) Set(ctx context.Context, q Execer, app, team string, at time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO app_teams (app, team, deleted, occurred_at) VALUES ($1, $2, false, $3)
		ON CONFLICT (app) DO UPDATE SET team = EXCLUDED.team, deleted = false, occurred_at = EXCLUDED.occurred_at
		WHERE app_teams.occurred_at <= EXCLUDED.occurred_at`, app, team, at)
	if err != nil {
		return fmt.Errorf("set team of app %s: %w", app, err)
	}
	return nil
}

// Delete records that app was deleted as of at.
func (Teams) Delete(ctx context.Context, q Execer, app string, at time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO app_teams (app, team, deleted, occurred_at) VALUES ($1, '', true, $2)
		ON CONFLICT (app) DO UPDATE SET team = '', deleted = true, occurred_at = EXCLUDED.occurred_at
		WHERE app_teams.occurred_at <= EXCLUDED.occurred_at`, app, at)
	if err != nil {
		return fmt.Errorf("delete app %s: %w", app, err)
	}
	return nil
}

// Of returns the team of app: "" when the app is unknown or deleted (it
// belongs to no team).
func (Teams) Of(ctx context.Context, q Querier, app string) (string, error) {
	if app == "" {
		return "", nil
	}
	var team string
	err := q.QueryRow(ctx, `SELECT team FROM app_teams WHERE app = $1 AND NOT deleted`, app).Scan(&team)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("team of app %s: %w", app, err)
	}
	return team, nil
}

// IncidentTeam returns the team of incident id's app.
func (Teams) IncidentTeam(ctx context.Context, q Querier, id string) (team string, err error) {
	err = q.QueryRow(ctx, `SELECT coalesce(t.team, '') FROM incidents i
		LEFT JOIN app_teams t ON t.app = i.app AND NOT t.deleted WHERE i.id = $1`, id).Scan(&team)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("incident %s: %w", id, incident.ErrNotFound)
	}
	return team, err
}
