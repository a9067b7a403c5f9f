package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-ops/vigil/services/monitor/internal/incident"
)

// Teams reads which team an incident belongs to: its app's, from
// app_teams (pkg/appteam).
type Teams struct{}

// IncidentTeam returns the team of incident id's app.
func (Teams) IncidentTeam(ctx context.Context, q Querier, id string) (team string, err error) {
	err = q.QueryRow(ctx, `SELECT coalesce(t.team, '') FROM incidents i
		LEFT JOIN app_teams t ON t.app = i.app AND NOT t.deleted WHERE i.id = $1`, id).Scan(&team)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("incident %s: %w", id, incident.ErrNotFound)
	}
	return team, err
}
