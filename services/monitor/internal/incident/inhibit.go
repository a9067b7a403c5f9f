package incident

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// Inhibitor holds back the firings that another firing alert inhibits
// (Alertmanager's inhibit_rules: services/monitor/internal/inhibit).
type Inhibitor interface {
	// Inhibit runs in the chunk's transaction, in a constant number of
	// statements: it records the chunk's firings (sources, muted ones
	// too) and resolutions as inhibition sources, then returns for each
	// of targets what inhibits it, nil when nothing does.
	Inhibit(ctx context.Context, tx pgx.Tx, sources []*typesv1.Alert, resolved []Resolution, targets []*typesv1.Alert) ([]*Inhibition, error)
}

// Inhibition is what holds an alert back.
type Inhibition struct {
	// By is the fingerprint of the firing source alert.
	By string
	// Rule is the rule's id; Key the rule's key the two alerts share.
	Rule, Key string
}

// inhibit takes the inhibited firings out of unmuted and stores them as
// muted alerts, like silenced ones: they open no incident and join none
// until the sources that inhibit them resolve (and they are applied again:
// monitor's release loop). known are the stale firings (known resolved),
// which neither inhibit nor are inhibited.
func (c *Correlator) inhibit(ctx context.Context, tx pgx.Tx, signals []*Signal, known map[Instance]bool,
	resolved []Resolution, unmuted []*Signal, muted []*AlertRecord, now time.Time,
) ([]*Signal, []*AlertRecord, error) {
	if c.opts.Inhibitor == nil {
		return unmuted, muted, nil
	}
	// A firing resolved in the same chunk is no source: its resolution
	// may be applied before it.
	ended := make(map[string]time.Time, len(resolved))
	for _, r := range resolved {
		if t, ok := ended[r.Fingerprint]; !ok || r.StartsAt.After(t) {
			ended[r.Fingerprint] = r.StartsAt
		}
	}
	stale := func(s *Signal) bool {
		t, ok := ended[s.instance.Fingerprint]
		return s.Resolved || known[s.instance] || (ok && !s.instance.StartsAt.After(t))
	}
	var sources, targets []*typesv1.Alert
	var at []int
	for _, s := range signals {
		if !stale(s) {
			sources = append(sources, s.Alert)
		}
	}
	for i, s := range unmuted {
		if !s.Resolved && !known[s.instance] {
			targets = append(targets, s.Alert)
			at = append(at, i)
		}
	}
	held, err := c.opts.Inhibitor.Inhibit(ctx, tx, sources, resolved, targets)
	if err != nil {
		return nil, nil, err
	}
	drop := make(map[int]bool)
	for j, in := range held {
		if in == nil {
			continue
		}
		i := at[j]
		drop[i] = true
		rec := firingRecord(unmuted[i].Alert, "", 1, now, "")
		rec.InhibitedBy, rec.InhibitRule, rec.InhibitKey = in.By, in.Rule, in.Key
		muted = append(muted, rec)
	}
	if len(drop) == 0 {
		return unmuted, muted, nil
	}
	kept := make([]*Signal, 0, len(unmuted)-len(drop))
	for i, s := range unmuted {
		if !drop[i] {
			kept = append(kept, s)
		}
	}
	return kept, muted, nil
}
