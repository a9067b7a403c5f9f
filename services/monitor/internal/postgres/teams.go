package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-ops/vigil/pkg/appteam"
	"github.com/vigil-ops/vigil/services/monitor/internal/incident"
)

// Teams reads which team an incident belongs to: its subject's
// (pkg/subject; appteam.OwnerOf).
type Teams struct{}

// IncidentTeam returns the team of incident id.
func (Teams) IncidentTeam(ctx context.Context, q Querier, id string) (team string, err error) {
	err = q.QueryRow(ctx, `SELECT `+appteam.OwnerOf("i.app", "i.team")+` FROM incidents i WHERE i.id = $1`, id).Scan(&team)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("incident %s: %w", id, incident.ErrNotFound)
	}
	return team, err
}
