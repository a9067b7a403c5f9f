package incident

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-ops/vigil/pkg/appteam"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// Holder says which rollout, if any, holds a firing alert of subj with
// severity sev at now: held alerts are stored but open nothing until the
// rollout releases them (package quiet).
type Holder interface {
	Holding(subj *typesv1.Subject, sev typesv1.Severity, now time.Time) *typesv1.DeployHold
}

// Holds loads the rollouts in force, once per transaction.
type Holds func(ctx context.Context, tx pgx.Tx, now time.Time) (Holder, error)

// holder loads the rollouts in force for signals: not when none of them
// fires (only firings are held).
func (c *Correlator) holder(ctx context.Context, tx pgx.Tx, signals []*Signal, now time.Time) (Holder, error) {
	if c.opts.Holds == nil || !slices.ContainsFunc(signals, func(s *Signal) bool { return !s.Resolved }) {
		return nil, nil
	}
	return c.opts.Holds(ctx, tx, now)
}

// hold is the record of s held, or nil when nothing holds it. The subject
// is Vigil's (NewPlan), never the alert's own labels; a firing being
// released is not held again.
func hold(h Holder, s *Signal, now time.Time) *AlertRecord {
	if h == nil || s.HeldBy != nil {
		return nil
	}
	by := h.Holding(s.subject, SeverityOf(s.Alert.GetLabels()), now)
	if by == nil {
		return nil
	}
	rec := firingRecord(s.Alert, "", 1, now, "")
	rec.HeldBy = by
	return rec
}

// Reapply applies again, in tx, firings held back earlier (by a rollout,
// package quiet; by an inhibition, monitor's release loop): indexed by
// their subjects and planned as the intake's are.
func (c *Correlator) Reapply(ctx context.Context, tx pgx.Tx, signals []*Signal) error {
	labels := make([]map[string]string, len(signals))
	for i, s := range signals {
		labels[i] = s.Alert.GetLabels()
	}
	ix, err := appteam.IndexFor(ctx, tx, labels...)
	if err != nil {
		return err
	}
	return c.Apply(ctx, tx, c.NewPlan(signals, ix).Signals)
}
