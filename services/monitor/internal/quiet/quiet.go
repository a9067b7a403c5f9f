// Package quiet is deploy-driven quiet: while Vigil rolls out an app, and
// for a settle time after, the app's alerts below critical are held
// instead of opening incidents. A rollout that fails or rolls back
// releases them at once; alerts that still fire when the settle time ends
// are released then; both open incidents as usual, naming the rollout as
// evidence. Held alerts that resolve meanwhile resolve quietly.
//
// The rollouts come from deploy.* events (Record); the correlator asks a
// Set, loaded once per transaction, whether a firing is held; a Releaser
// applies the held alerts whose window ended.
package quiet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/monitor/internal/incident"
)

// Outcomes of a rollout, as deploy_windows and DeployHold.outcome say.
const (
	Rolling    = "rolling"
	Succeeded  = "succeeded"
	Failed     = "failed"
	RolledBack = "rolled_back"
)

// DefaultMaxRollout is how long a rollout that announces no end holds its
// app's alerts: a deploy service that stopped mid-rollout must not mute
// an app for ever.
const DefaultMaxRollout = 30 * time.Minute

// Options tune deploy quiet.
type Options struct {
	// Settle is how long after a successful rollout the app's alerts are
	// still held (must be positive: zero turns deploy quiet off, which
	// its caller does by not building it).
	Settle time.Duration
	// MaxRollout is the longest a rollout is waited for (default
	// DefaultMaxRollout).
	MaxRollout time.Duration
}

// Validate reports options a user must fix.
func (o Options) Validate() error {
	if o.Settle <= 0 {
		return errors.New("VIGIL_DEPLOY_QUIET: must be positive to hold alerts (0 turns deploy quiet off)")
	}
	if o.MaxRollout < 0 {
		return errors.New("deploy quiet: the longest rollout must not be negative")
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.MaxRollout == 0 {
		o.MaxRollout = DefaultMaxRollout
	}
	return o
}

// Set is the rollouts that hold their apps' alerts at one time, by app.
type Set struct {
	byApp map[string]*typesv1.DeployHold
}

// Load returns the windows that still hold at now. One row per app that
// rolls out or settles: small.
func Load(ctx context.Context, tx pgx.Tx, now time.Time) (*Set, error) {
	rows, err := tx.Query(ctx, `SELECT `+windowColumns+` FROM deploy_windows WHERE release_at > $1`, now)
	if err != nil {
		return nil, fmt.Errorf("load deploy windows: %w", err)
	}
	holds, err := pgx.CollectRows(rows, scanHold)
	if err != nil {
		return nil, fmt.Errorf("load deploy windows: %w", err)
	}
	s := &Set{byApp: make(map[string]*typesv1.DeployHold, len(holds))}
	for _, h := range holds {
		s.byApp[h.GetApp()] = h
	}
	return s, nil
}

const windowColumns = `app, deployment_id, revision, outcome, release_at`

func scanHold(row pgx.CollectableRow) (*typesv1.DeployHold, error) {
	h := &typesv1.DeployHold{}
	var until time.Time
	if err := row.Scan(&h.App, &h.DeploymentId, &h.Revision, &h.Outcome, &until); err != nil {
		return nil, err
	}
	h.Until = timestamppb.New(until)
	return h, nil
}

// Holding implements incident.Holder: an alert is held when Vigil placed
// it in an app (its subject, never a label on trust) whose window is open
// at now, unless it is critical.
func (s *Set) Holding(subj *typesv1.Subject, sev typesv1.Severity, now time.Time) *typesv1.DeployHold {
	if s == nil || sev >= typesv1.Severity_SEVERITY_CRITICAL || subj.GetApp() == "" {
		return nil
	}
	h := s.byApp[subj.GetApp()]
	if h == nil || !now.Before(h.GetUntil().AsTime()) {
		return nil
	}
	return h
}

// Holds is the correlator's loader of the windows in force.
func Holds(ctx context.Context, tx pgx.Tx, now time.Time) (incident.Holder, error) {
	return Load(ctx, tx, now)
}
