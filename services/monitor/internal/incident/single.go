package incident

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-ops/vigil/pkg/appteam"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
)

// AlertFired applies one alert.fired on its own, as a batch of one.
func (c *Correlator) AlertFired(ctx context.Context, tx pgx.Tx, e *eventsv1.AlertFired) error {
	if err := ValidateAlert(e.GetAlert()); err != nil {
		return err
	}
	ix, err := appteam.IndexFor(ctx, tx, e.GetAlert().GetLabels())
	if err != nil {
		return err
	}
	return c.Apply(ctx, tx, c.NewPlan([]*Signal{{Alert: e.GetAlert(), Cause: e.GetMeta()}}, ix).Signals)
}

// AlertResolved applies one alert.resolved on its own, as a batch of one.
func (c *Correlator) AlertResolved(ctx context.Context, tx pgx.Tx, e *eventsv1.AlertResolved) error {
	if err := ValidateAlert(e.GetAlert()); err != nil {
		return err
	}
	ix, err := appteam.IndexFor(ctx, tx, e.GetAlert().GetLabels())
	if err != nil {
		return err
	}
	return c.Apply(ctx, tx, c.NewPlan([]*Signal{{Alert: e.GetAlert(), Resolved: true, Cause: e.GetMeta()}}, ix).Signals)
}
