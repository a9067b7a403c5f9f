package quiet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
)

// Rollout is what a deploy.* event says of an app's rollout.
type Rollout struct {
	App          string
	DeploymentID string
	// Revisions of an app only grow (a rollback is a new revision): an
	// event of an older revision than the window's is late and ignored.
	Revision int64
	// Outcome is Rolling for a start, else how it ended.
	Outcome string
	// At is when it started or ended.
	At time.Time
}

// Route adds the handlers of the deploy events deploy quiet needs to r.
func Route(r *bus.Router[pgx.Tx], opts Options) {
	opts = opts.withDefaults()
	at := func(m *eventsv1.EventMeta) time.Time {
		if m.GetOccurredAt() == nil {
			return time.Now()
		}
		return m.GetOccurredAt().AsTime()
	}
	bus.On(r, func(ctx context.Context, tx pgx.Tx, e *eventsv1.DeployRequested) error {
		if e.GetDeploymentId() == "" {
			// A request for the deploy service to record: the rollout
			// starts with the deploy.requested it then publishes.
			return nil
		}
		return Record(ctx, tx, Rollout{App: e.GetApp(), DeploymentID: e.GetDeploymentId(), Revision: e.GetRevision(), Outcome: Rolling, At: at(e.GetMeta())}, opts)
	})
	bus.On(r, func(ctx context.Context, tx pgx.Tx, e *eventsv1.DeploySucceeded) error {
		return Record(ctx, tx, Rollout{App: e.GetApp(), DeploymentID: e.GetDeploymentId(), Revision: e.GetRevision(), Outcome: Succeeded, At: at(e.GetMeta())}, opts)
	})
	bus.On(r, func(ctx context.Context, tx pgx.Tx, e *eventsv1.DeployFailed) error {
		return Record(ctx, tx, Rollout{App: e.GetApp(), DeploymentID: e.GetDeploymentId(), Revision: e.GetRevision(), Outcome: Failed, At: at(e.GetMeta())}, opts)
	})
	bus.On(r, func(ctx context.Context, tx pgx.Tx, e *eventsv1.DeployRolledBack) error {
		return Record(ctx, tx, Rollout{App: e.GetApp(), DeploymentID: e.GetDeploymentId(), Revision: e.GetRevision(), Outcome: RolledBack, At: at(e.GetMeta())}, opts)
	})
}

// Record moves the app's window by one rollout event, in one statement: a
// start opens it until the longest rollout; a success holds for the settle
// time after; a failure or a rollback releases at once. Events are applied
// whatever order they arrive in: a newer revision replaces the window, the
// end of the window's own rollout ends it, anything else is late.
func Record(ctx context.Context, tx pgx.Tx, r Rollout, opts Options) error {
	if r.App == "" || r.DeploymentID == "" {
		return bus.Permanent(errors.New("deploy event without app or deployment id"))
	}
	opts = opts.withDefaults()
	release := r.At
	switch r.Outcome {
	case Rolling:
		release = r.At.Add(opts.MaxRollout)
	case Succeeded:
		release = r.At.Add(opts.Settle)
	}
	var ended *time.Time
	if r.Outcome != Rolling {
		ended = &r.At
	}
	_, err := tx.Exec(ctx, `INSERT INTO deploy_windows AS w
			(app, deployment_id, revision, outcome, started_at, ended_at, release_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (app) DO UPDATE SET deployment_id = excluded.deployment_id, revision = excluded.revision,
			outcome = excluded.outcome, ended_at = excluded.ended_at, release_at = excluded.release_at,
			started_at = CASE WHEN w.deployment_id = excluded.deployment_id THEN w.started_at ELSE excluded.started_at END
		WHERE w.revision < excluded.revision
			OR (w.deployment_id = excluded.deployment_id AND w.ended_at IS NULL AND excluded.ended_at IS NOT NULL)`,
		r.App, r.DeploymentID, r.Revision, r.Outcome, r.At, ended, release)
	if err != nil {
		return fmt.Errorf("record rollout %s of %s: %w", r.DeploymentID, r.App, err)
	}
	return nil
}
