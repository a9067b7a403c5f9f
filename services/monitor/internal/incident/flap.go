package incident

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
)

// Flapping is how the correlator treats an alert that fires and resolves
// over and over, which would otherwise resolve, reopen and announce its
// incident each time, and have it analysed and repaired again each time.
// Once one of its alerts has gone through more than Threshold
// fire-resolve cycles within Window, the incident is marked flapping and
// announced once (incident.updated, reason "flapping"); from then on its
// alerts' fires and resolutions are counted but neither resolve, reopen
// nor announce it. It settles once none of its alerts has changed for
// Window: resolved then if none fires (incident.resolved), an ordinary
// open incident again otherwise (incident.updated, reason
// "flapping_stopped").
//
// A cycle is a firing that started within the window and is known to
// have resolved (alert_resolutions, by fingerprint and start): shared by
// replicas, and a resolution delivered twice counts once.
type Flapping struct {
	// Threshold is how many cycles within Window an alert may go through
	// before it flaps (0: flapping is never detected).
	Threshold int
	Window    time.Duration
	// Store counts cycles and finds the incidents that settled (nil:
	// flapping is off).
	Store FlapStore
}

// FlapStore is what flapping needs of the store, in the caller's
// transaction, with a constant number of statements.
type FlapStore interface {
	// Cycles returns, per fingerprint of fps, how many of its firings
	// that started at or after since are known to have resolved.
	Cycles(ctx context.Context, tx pgx.Tx, fps []string, since time.Time) (map[string]int, error)
	// SettledFlapping returns up to limit flapping incidents whose alerts
	// have not changed since before now minus the window, locked,
	// skipping those locked by others.
	SettledFlapping(ctx context.Context, tx pgx.Tx, now time.Time, limit int) ([]*Record, error)
}

// Reasons of the incident.updated that flapping makes.
const (
	ReasonFlapping        = "flapping"
	ReasonFlappingStopped = "flapping_stopped"
)

// resolvedBySettling is who resolved an incident that stopped flapping
// with none of its alerts firing.
const resolvedBySettling = "monitor"

// countCycles sets, on each resolution among signals (one chunk, its
// resolutions recorded already), how many cycles its alert has gone
// through up to and including it.
func (c *Correlator) countCycles(ctx context.Context, tx pgx.Tx, signals []*Signal, now time.Time) error {
	f := c.opts.Flapping
	if f.Store == nil || f.Threshold <= 0 {
		return nil
	}
	since := now.Add(-f.Window)
	// The firings each alert resolves in this chunk, in order: the count
	// after the chunk includes them all, and the first of them came
	// before the others.
	inChunk := map[string][]time.Time{}
	var fps []string
	for _, s := range signals {
		if !s.Resolved || s.instance.StartsAt.Before(since) {
			continue
		}
		fp, starts := s.instance.Fingerprint, inChunk[s.instance.Fingerprint]
		if starts == nil {
			fps = append(fps, fp)
		}
		if !slices.Contains(starts, s.instance.StartsAt) {
			inChunk[fp] = append(starts, s.instance.StartsAt)
		}
	}
	if len(fps) == 0 {
		return nil
	}
	counts, err := f.Store.Cycles(ctx, tx, fps, since)
	if err != nil {
		return err
	}
	for _, s := range signals {
		if starts := inChunk[s.instance.Fingerprint]; s.Resolved && len(starts) > 0 {
			if i := slices.Index(starts, s.instance.StartsAt); i >= 0 {
				s.cycles = counts[s.instance.Fingerprint] - (len(starts) - 1 - i)
			}
		}
	}
	return nil
}

// flapResolved is the hook of an alert of st's incident that resolved:
// true when the incident flaps (or starts to with this resolution), and
// so is neither resolved nor told of it.
func (c *Correlator) flapResolved(ctx context.Context, st *incState, s *Signal, now time.Time) bool {
	if c.flapChanged(st, now) {
		return true
	}
	if c.opts.Flapping.Threshold <= 0 || s.cycles <= c.opts.Flapping.Threshold {
		return false
	}
	// An incident opened in this chunk is announced as it opened, then
	// as flapping: the opening does not carry the change.
	st.flushOpened(now)
	inc := st.rec
	inc.Flapping, inc.FlappingSince = true, timestamppb.New(now)
	st.note(ReasonFlapping, s.Cause)
	st.urgent = ReasonFlapping
	c.flapChanged(st, now)
	c.log.InfoContext(ctx, "incident flaps", "incident_id", inc.GetId(), "fingerprint", s.instance.Fingerprint, "cycles", s.cycles)
	return true
}

// flapChanged is the hook of an alert of st's incident that changed:
// while the incident flaps, the change pushes back when it settles, and
// the caller says nothing of it.
func (c *Correlator) flapChanged(st *incState, now time.Time) bool {
	if !st.rec.GetFlapping() {
		return false
	}
	until := now.Add(c.opts.Flapping.Window)
	st.rec.FlapUntil = &until
	st.dirty = true
	return true
}

// stopFlapping clears inc's flapping.
func stopFlapping(inc *Record) {
	inc.Flapping, inc.FlappingSince, inc.FlapUntil = false, nil, nil
}

// settleFlapping ends the flapping of up to limit incidents whose alerts
// stayed as they are for the window: resolved if none of them fires, an
// ordinary open incident otherwise; each announced once, with what was
// pending.
func (c *Correlator) settleFlapping(ctx context.Context, tx pgx.Tx, now time.Time, limit int) (int, error) {
	if c.opts.Flapping.Store == nil {
		return 0, nil
	}
	recs, err := c.opts.Flapping.Store.SettledFlapping(ctx, tx, now, limit)
	if err != nil || len(recs) == 0 {
		return 0, err
	}
	var events []bus.Event
	for _, r := range recs {
		stopFlapping(r)
		if r.GetStatus() == typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED {
			continue // resolved by a person or a repair meanwhile: told then
		}
		st := newState(r)
		r.UpdatedAt = timestamppb.New(now)
		if r.GetFiringCount() > 0 {
			st.note(ReasonFlappingStopped, nil)
			st.emitUpdate(now, ReasonFlappingStopped, nil)
		} else {
			r.Status = typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED
			r.ResolvedAt, r.ResolvedBy = timestamppb.New(now), resolvedBySettling
			st.emit(now, nil, func(meta *eventsv1.EventMeta, snap *typesv1.Incident, ch *eventsv1.IncidentChange) bus.Event {
				return &eventsv1.IncidentResolved{Meta: meta, Incident: snap, Change: ch}
			})
		}
		c.log.InfoContext(ctx, "incident stopped flapping", "incident_id", r.GetId(), "firing", r.GetFiringCount())
		events = append(events, st.events...)
	}
	if err := c.store.SaveIncidents(ctx, tx, nil, recs); err != nil {
		return 0, err
	}
	return len(recs), outbox.Add(ctx, tx, events...)
}
