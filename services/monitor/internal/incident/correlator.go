package incident

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/alertlabel"
	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/pkg/subject"
	"github.com/vigil-ops/vigil/services/monitor/internal/priority"
)

// Producer names monitor in the events it publishes.
const Producer = "monitor"

// Store keeps incidents and their alerts. Every method runs in the caller's
// transaction and does a constant number of statements whatever the number
// of alerts or groups it is given.
type Store interface {
	// LockGroups takes the groups' locks until the transaction ends, in
	// the order given (ascending: two transactions never wait on each
	// other in a cycle).
	LockGroups(ctx context.Context, tx pgx.Tx, ids []int64) error
	// Incidents returns, per group key, the group's unresolved incident,
	// or else its newest one resolved at or after reopenSince; each locked
	// for update. Groups with neither are absent.
	Incidents(ctx context.Context, tx pgx.Tx, keys []string, reopenSince time.Time) (map[string]*Record, error)
	// Alerts returns the stored alerts among refs.
	Alerts(ctx context.Context, tx pgx.Tx, refs []AlertRef) (map[AlertRef]*AlertRecord, error)
	// KnownResolutions returns the alert instances among is that are
	// known to have resolved.
	KnownResolutions(ctx context.Context, tx pgx.Tx, is []Instance) (map[Instance]bool, error)
	RecordResolutions(ctx context.Context, tx pgx.Tx, rs []Resolution) error
	// SaveIncidents inserts the new incidents and updates the others.
	SaveIncidents(ctx context.Context, tx pgx.Tx, inserted, updated []*Record) error
	// UpsertAlerts stores alerts of incidents, at most one per ref.
	UpsertAlerts(ctx context.Context, tx pgx.Tx, as []*AlertRecord) error
	// SilenceAlerts stores muted firings (adding to the count of a stored
	// silenced alert), marks silenced alerts resolved, and removes the
	// silenced copies of alerts that went to incidents (unmuted).
	SilenceAlerts(ctx context.Context, tx pgx.Tx, muted []*AlertRecord, resolved []Resolution, unmuted []string) error
	LockIncident(ctx context.Context, tx pgx.Tx, id string) (*Record, error)
	// DueIncidents returns up to limit incidents whose pending update is
	// due at or before now, locked, skipping those locked by others.
	DueIncidents(ctx context.Context, tx pgx.Tx, now time.Time, limit int) ([]*Record, error)
}

// Muter says which silence, if any, mutes an alert.
type Muter interface {
	Muting(labels map[string]string, now time.Time) string
}

// Silences loads the silences in force, once per transaction.
type Silences func(ctx context.Context, tx pgx.Tx, now time.Time) (Muter, error)

// Priorities loads the priority rules in force.
type Priorities func(ctx context.Context, tx pgx.Tx) (*priority.Set, error)

// Options tune grouping, deduplication and announcement.
type Options struct {
	// GroupBy are the labels that make an incident's group key (default
	// alertname, namespace; "..." groups by all labels).
	GroupBy []string
	// DedupWindow: an alert that fires again within this long after its
	// incident resolved reopens that incident instead of opening a new one
	// (default 10m).
	DedupWindow time.Duration
	// UpdateInterval is the least time between two events of an incident
	// for changes of its alerts (default 5s; negative: every batch).
	UpdateInterval time.Duration
	// Silences, when set, mutes alerts.
	Silences Silences
	// Holds, when set, loads once per transaction the rollouts that hold
	// their apps' alerts (deploy quiet, package quiet).
	Holds Holds
	// Inhibitor, when set, holds back inhibited firings.
	Inhibitor Inhibitor
	// Priorities, when set, loads the priority rules once per transaction
	// (default: the severity's priority, the default response targets).
	Priorities Priorities
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
	// Flapping marks incidents whose alerts flap (flap.go; zero: off).
	Flapping Flapping
}

// Correlator applies alert events and people's actions to incidents.
type Correlator struct {
	store Store
	opts  Options
	log   *slog.Logger
	now   func() time.Time
	// by and byNoNamespace are GroupBy with the subject's labels.
	by, byNoNamespace []string
}

// NewCorrelator returns a Correlator over store.
func NewCorrelator(store Store, opts Options, log *slog.Logger) *Correlator {
	if len(opts.GroupBy) == 0 {
		opts.GroupBy = []string{"alertname", "namespace"}
	}
	if opts.DedupWindow == 0 {
		opts.DedupWindow = 10 * time.Minute
	}
	switch {
	case opts.UpdateInterval == 0:
		opts.UpdateInterval = 5 * time.Second
	case opts.UpdateInterval < 0:
		opts.UpdateInterval = 0
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	// Whatever group_by says, alerts are grouped by what places their
	// subject too, so that an incident never mixes owners, whatever Vigil
	// learns between a firing and its resolution.
	by := append(slices.Clone(opts.GroupBy), subject.Placing...)
	return &Correlator{
		store: store, opts: opts, log: log.With("component", "correlator"), now: now,
		by: by, byNoNamespace: append(slices.Clone(by), alertlabel.AppLabels...),
	}
}

// Signal is one alert event to apply: a firing, or a resolution.
type Signal struct {
	Alert    *typesv1.Alert
	Resolved bool
	// Cause is the meta of the event that carried it.
	Cause *eventsv1.EventMeta
	// HeldBy is set on a held firing being released: it is not held
	// again, and its incident's alert names the rollout as evidence.
	HeldBy *typesv1.DeployHold

	key      string
	labels   map[string]string
	lockID   int64
	instance Instance
	subject  *typesv1.Subject
	cycles   int // a resolution's fire-resolve cycles (flap.go)
}

// ValidateAlert reports an alert no retry can make valid.
func ValidateAlert(a *typesv1.Alert) error {
	switch {
	case a == nil:
		return bus.Permanent(errors.New("event has no alert"))
	case a.GetFingerprint() == "":
		return bus.Permanent(errors.New("alert has no fingerprint"))
	case len(a.GetLabels()) == 0:
		return bus.Permanent(errors.New("alert has no labels"))
	}
	return nil
}

// Plan is signals sorted into the order they are applied: by group lock,
// and in arrival order within a group.
type Plan struct {
	Signals []*Signal
}

// groupBy is what an alert with labels is grouped by.
func (c *Correlator) groupBy(labels map[string]string) []string {
	if labels["namespace"] == "" {
		return c.byNoNamespace
	}
	return c.by
}

// NewPlan computes each signal's group and subject (against ix, what
// Vigil knows of the signals' namespaces and apps; nil: nothing) and
// orders them. Signals must be valid (ValidateAlert).
func (c *Correlator) NewPlan(signals []*Signal, ix *subject.Index) Plan {
	if ix == nil {
		ix = subject.NewIndex(nil, nil)
	}
	for _, s := range signals {
		s.key, s.labels = GroupKey(s.Alert.GetLabels(), c.groupBy(s.Alert.GetLabels()))
		s.subject = ix.Resolve(s.Alert.GetLabels())
		s.lockID = LockID(s.key)
		// Postgres keeps microseconds: compare instances as stored, or a
		// firing sent with nanoseconds would never match its resolution.
		startsAt := s.Alert.GetStartsAt().AsTime().Truncate(time.Microsecond)
		s.Alert.StartsAt = timestamppb.New(startsAt)
		s.instance = Instance{Fingerprint: s.Alert.GetFingerprint(), StartsAt: startsAt}
	}
	out := slices.Clone(signals)
	slices.SortStableFunc(out, func(a, b *Signal) int {
		return cmp.Or(cmp.Compare(a.lockID, b.lockID), cmp.Compare(a.key, b.key))
	})
	return Plan{Signals: out}
}

// Chunks splits the plan into runs of at most max signals, each a separate
// transaction's work. A group may span chunks; its signals stay in order.
func (p Plan) Chunks(maxSignals int) [][]*Signal {
	var out [][]*Signal
	for s := p.Signals; len(s) > 0; {
		n := min(maxSignals, len(s))
		out = append(out, s[:n])
		s = s[n:]
	}
	return out
}

// LockID is the advisory lock of a group key (FNV-1a, 64 bits).
func LockID(key string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return int64(h.Sum64()) //nolint:gosec // a lock id: any 64 bits will do
}

// incState is an incident being changed by a chunk.
type incState struct {
	rec    *Record
	isNew  bool
	dirty  bool
	opened bool // opened in this chunk, incident.opened not yet made
	urgent string
	change *eventsv1.IncidentChange
	// alerts by fingerprint as they stand, and the ones to write.
	alerts  map[string]*AlertRecord
	touched []*AlertRecord
	sample  []*typesv1.IncidentAlert
	events  []bus.Event
	cause   *eventsv1.EventMeta
}

// newState starts changing r, from the change it has waiting.
func newState(r *Record) *incState {
	st := &incState{rec: r, change: r.Pending}
	if st.change == nil {
		st.change = &eventsv1.IncidentChange{}
	}
	return st
}

// Apply applies signals (one chunk of a Plan, in its order) in tx: one lock
// per group, a constant number of statements, and at most one event per
// incident for its alerts' changes.
func (c *Correlator) Apply(ctx context.Context, tx pgx.Tx, signals []*Signal) error {
	if len(signals) == 0 {
		return nil
	}
	now := c.now().UTC()
	var (
		ids        []int64
		keys       []string
		fired      []Instance
		silenced   []*AlertRecord
		unmuted    []*Signal
		resolveAll []Resolution
	)
	prio, err := c.priorities(ctx, tx)
	if err != nil {
		return err
	}
	holder, err := c.holder(ctx, tx, signals, now)
	if err != nil {
		return err
	}
	var muter Muter
	if c.opts.Silences != nil {
		var err error
		if muter, err = c.opts.Silences(ctx, tx, now); err != nil {
			return err
		}
	}
	for _, s := range signals {
		if len(keys) == 0 || keys[len(keys)-1] != s.key {
			if len(ids) == 0 || ids[len(ids)-1] != s.lockID {
				ids = append(ids, s.lockID)
			}
			keys = append(keys, s.key)
		}
		if s.Resolved {
			resolveAll = append(resolveAll, Resolution{Instance: s.instance, EndsAt: endsAt(s.Alert, now)})
			unmuted = append(unmuted, s)
			continue
		}
		if muter != nil {
			if id := muter.Muting(s.Alert.GetLabels(), now); id != "" {
				silenced = append(silenced, firingRecord(s.Alert, "", 1, now, id))
				continue
			}
		}
		if held := hold(holder, s, now); held != nil {
			silenced = append(silenced, held)
			continue
		}
		fired = append(fired, s.instance)
		unmuted = append(unmuted, s)
	}
	if err := c.store.LockGroups(ctx, tx, ids); err != nil {
		return err
	}
	// Under the groups' locks: a resolution recorded by another replica
	// is seen here, or that replica sees ours.
	known, err := c.store.KnownResolutions(ctx, tx, fired)
	if err != nil {
		return err
	}
	if unmuted, silenced, err = c.inhibit(ctx, tx, signals, known, resolveAll, unmuted, silenced, now); err != nil {
		return err
	}
	if err := c.store.RecordResolutions(ctx, tx, resolveAll); err != nil {
		return err
	}
	if err := c.countCycles(ctx, tx, unmuted, now); err != nil {
		return err
	}
	incs, err := c.store.Incidents(ctx, tx, keys, now.Add(-c.opts.DedupWindow))
	if err != nil {
		return err
	}
	refs := make([]AlertRef, 0, len(unmuted))
	for _, s := range unmuted {
		if r := incs[s.key]; r != nil {
			refs = append(refs, AlertRef{IncidentID: r.GetId(), Fingerprint: s.Alert.GetFingerprint()})
		}
	}
	stored, err := c.store.Alerts(ctx, tx, refs)
	if err != nil {
		return err
	}

	byKey := make(map[string]*incState, len(incs))
	byID := make(map[string]*incState, len(incs))
	var states []*incState
	state := func(r *Record, isNew bool) *incState {
		st := newState(r)
		st.isNew, st.opened, st.alerts = isNew, isNew, map[string]*AlertRecord{}
		states = append(states, st)
		byKey[r.GetGroupKey()] = st
		byID[r.GetId()] = st
		return st
	}
	for _, r := range incs {
		state(r, false)
	}
	for _, a := range stored {
		if st := byID[a.IncidentID]; st != nil {
			st.alerts[a.GetAlert().GetFingerprint()] = a
		}
	}
	var unsilence []string
	for _, s := range unmuted {
		if s.Resolved {
			// A firing of this instance delivered late is stale now.
			known[s.instance] = true
			c.resolve(ctx, byKey[s.key], s, now)
			continue
		}
		if known[s.instance] {
			c.log.DebugContext(ctx, "fired after its own resolution, ignored", "fingerprint", s.Alert.GetFingerprint())
			continue
		}
		st := byKey[s.key]
		if st == nil || (st.rec.GetStatus() == typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED &&
			st.rec.GetResolvedAt().AsTime().Before(now.Add(-c.opts.DedupWindow))) {
			st = state(c.open(s, now, prio), true)
			st.cause = s.Cause
		}
		c.fire(st, s, now, prio)
		unsilence = append(unsilence, s.Alert.GetFingerprint())
	}

	var inserted, updated []*Record
	var alerts []*AlertRecord
	var events []bus.Event
	for _, st := range states {
		c.finish(st, now)
		if st.isNew {
			inserted = append(inserted, st.rec)
		} else if st.dirty {
			updated = append(updated, st.rec)
		}
		alerts = append(alerts, st.touched...)
		events = append(events, st.events...)
	}
	if err := c.store.SaveIncidents(ctx, tx, inserted, updated); err != nil {
		return err
	}
	if err := c.store.UpsertAlerts(ctx, tx, dedupAlerts(alerts)); err != nil {
		return err
	}
	if err := c.store.SilenceAlerts(ctx, tx, silenced, resolveAll, unsilence); err != nil {
		return err
	}
	return outbox.Add(ctx, tx, events...)
}

func endsAt(a *typesv1.Alert, now time.Time) time.Time {
	if a.GetEndsAt() != nil {
		return a.GetEndsAt().AsTime()
	}
	return now
}

// open makes a new incident for s's group.
func (c *Correlator) open(s *Signal, now time.Time, prio *priority.Set) *Record {
	a := s.Alert
	sev := SeverityOf(a.GetLabels())
	return &Record{
		Incident: &typesv1.Incident{
			Id:          bus.NewID(),
			GroupKey:    s.key,
			GroupLabels: s.labels,
			Title:       Title(s.labels, a.GetLabels()),
			Severity:    sev,
			Priority:    prio.Of(priorityInput(sev, a, s.subject)),
			Status:      typesv1.IncidentStatus_INCIDENT_STATUS_OPEN,
			OpenedAt:    timestamppb.New(now),
			UpdatedAt:   timestamppb.New(now),
			App:         s.subject.GetApp(),
			Namespace:   s.subject.GetNamespace(),
			Team:        s.subject.GetTeam(),
			Subject:     s.subject,
		},
		CorrelationID: s.Cause.GetCorrelationId(),
		LastEventAt:   now,
	}
}

// firingRecord stores a firing as it arrived. The alert is the decoded
// event's own, used by nothing else once handled: no copy.
func firingRecord(a *typesv1.Alert, incidentID string, count int32, now time.Time, silencedBy string) *AlertRecord {
	alert := a
	alert.Status = typesv1.AlertStatus_ALERT_STATUS_FIRING
	alert.EndsAt = nil
	return &AlertRecord{IncidentID: incidentID, IncidentAlert: &typesv1.IncidentAlert{
		Alert: alert, Count: count, FirstSeenAt: timestamppb.New(now), LastSeenAt: timestamppb.New(now),
		IncidentId: incidentID, SilencedBy: silencedBy,
	}}
}

// fire adds a firing alert to st's incident, reopening it if it resolved.
func (c *Correlator) fire(st *incState, s *Signal, now time.Time, prio *priority.Set) {
	inc := st.rec
	if inc.GetStatus() == typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED {
		inc.Status = typesv1.IncidentStatus_INCIDENT_STATUS_OPEN
		inc.ResolvedAt, inc.ResolvedBy = nil, ""
		st.note(ReasonReopened, s.Cause)
		st.urgent = ReasonReopened
		st.dirty = true
	}
	a := s.Alert
	existing := st.alerts[a.GetFingerprint()]
	rec := firingRecord(a, inc.GetId(), 1, now, "")
	rec.HeldBy = s.HeldBy
	switch {
	case existing == nil:
		inc.AlertCount++
		inc.FiringCount++
		st.change.AlertsAdded++
		st.note(ReasonAlertAdded, s.Cause)
		sampleAlert(&st.change.Added, rec.GetAlert())
		if st.opened && len(st.sample) < maxEventAlerts {
			st.sample = append(st.sample, rec.IncidentAlert)
		}
		st.dirty = true
	case existing.GetAlert().GetStatus() == typesv1.AlertStatus_ALERT_STATUS_RESOLVED:
		rec.Count = existing.GetCount() + 1
		rec.FirstSeenAt = existing.GetFirstSeenAt()
		inc.FiringCount++
		if c.flapChanged(st, now) {
			break
		}
		st.change.AlertsRefired++
		st.note(ReasonAlertRefired, s.Cause)
		sampleAlert(&st.change.Added, rec.GetAlert())
		st.dirty = true
	default:
		// A repeat of an alert that fires: counted, nothing to announce.
		rec.Count = existing.GetCount() + 1
		rec.FirstSeenAt = existing.GetFirstSeenAt()
	}
	st.alerts[a.GetFingerprint()] = rec
	st.touched = append(st.touched, rec)
	if sev := SeverityOf(a.GetLabels()); sev > inc.GetSeverity() {
		inc.Severity = sev
		st.note(ReasonSeverityRaised, s.Cause)
		st.dirty = true
		// Raised with its severity, never lowered by it; a priority a
		// person set stays.
		if p := prio.Of(priorityInput(sev, a, inc.GetSubject())); inc.PriorityBy == "" && priority.Higher(p, inc.GetPriority()) {
			inc.Priority = p
			st.note(ReasonPriorityRaised, s.Cause)
		}
	}
}

func priorityInput(sev typesv1.Severity, a *typesv1.Alert, subj *typesv1.Subject) priority.Incident {
	return priority.Incident{
		Severity: sev, Labels: a.GetLabels(),
		App: subj.GetApp(), Team: subj.GetTeam(), Namespace: subj.GetNamespace(),
	}
}

// defaultPriorities are the rules without any: priority from severity.
var defaultPriorities = func() *priority.Set {
	s, _ := priority.Compile(priority.Rules{}) // nothing to refuse
	return s
}()

func (c *Correlator) priorities(ctx context.Context, tx pgx.Tx) (*priority.Set, error) {
	if c.opts.Priorities == nil {
		return defaultPriorities, nil
	}
	return c.opts.Priorities(ctx, tx)
}

// resolve marks an alert of st's open incident resolved, and resolves the
// incident once none of its alerts fires.
func (c *Correlator) resolve(ctx context.Context, st *incState, s *Signal, now time.Time) {
	a := s.Alert
	if st == nil || st.rec.GetStatus() == typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED {
		c.log.DebugContext(ctx, "resolved alert has no open incident", "fingerprint", a.GetFingerprint())
		return
	}
	existing := st.alerts[a.GetFingerprint()]
	if existing == nil || existing.GetAlert().GetStatus() == typesv1.AlertStatus_ALERT_STATUS_RESOLVED {
		return
	}
	if existing.GetAlert().GetStartsAt().AsTime().After(s.instance.StartsAt) {
		// Resolves an earlier firing of an alert that has fired again since.
		return
	}
	if st.opened && st.rec.FiringCount == 1 {
		// Opened in this chunk and about to resolve: announce the opening
		// first, as it stood.
		st.flushOpened(now)
	}
	rec := &AlertRecord{IncidentID: existing.IncidentID, IncidentAlert: proto.Clone(existing.IncidentAlert).(*typesv1.IncidentAlert)}
	rec.Alert.Status = typesv1.AlertStatus_ALERT_STATUS_RESOLVED
	rec.Alert.EndsAt = timestamppb.New(endsAt(a, now))
	rec.LastSeenAt = timestamppb.New(now)
	st.alerts[a.GetFingerprint()] = rec
	st.touched = append(st.touched, rec)
	inc := st.rec
	inc.FiringCount--
	if c.flapResolved(ctx, st, s, now) {
		return
	}
	st.change.AlertsResolved++
	st.note(ReasonAlertResolved, s.Cause)
	sampleAlert(&st.change.Resolved, rec.GetAlert())
	st.dirty = true
	if inc.FiringCount > 0 {
		return
	}
	inc.UpdatedAt = timestamppb.New(now)
	inc.Status = typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED
	inc.ResolvedAt = timestamppb.New(now)
	inc.ResolvedBy = sourceName(a.GetSource())
	st.emit(now, s.Cause, func(meta *eventsv1.EventMeta, snap *typesv1.Incident, ch *eventsv1.IncidentChange) bus.Event {
		return &eventsv1.IncidentResolved{Meta: meta, Incident: snap, Change: ch}
	})
}

// finish makes the incident's events for the end of the chunk: opened if it
// opened, an update if one is due (or urgent), or else leaves the change
// pending until its interval passes.
func (c *Correlator) finish(st *incState, now time.Time) {
	inc := st.rec
	if st.opened {
		inc.UpdatedAt = timestamppb.New(now)
		st.flushOpened(now)
		return
	}
	if len(st.change.GetReasons()) == 0 {
		return
	}
	st.dirty = true
	inc.UpdatedAt = timestamppb.New(now)
	due := st.rec.LastEventAt.Add(c.opts.UpdateInterval)
	if st.urgent == "" && now.Before(due) {
		inc.Pending = st.change
		inc.UpdateDueAt = &due
		return
	}
	st.emitUpdate(now, st.urgent, st.cause)
}

func (st *incState) note(reason string, cause *eventsv1.EventMeta) {
	if !slices.Contains(st.change.Reasons, reason) {
		st.change.Reasons = append(st.change.Reasons, reason)
	}
	if st.cause == nil {
		st.cause = cause
	}
}

// flushOpened makes incident.opened once, counting every alert of the chunk
// so far; those alerts are not announced again.
func (st *incState) flushOpened(now time.Time) {
	if !st.opened {
		return
	}
	st.opened = false
	sample := st.sample
	st.emit(now, st.cause, func(meta *eventsv1.EventMeta, snap *typesv1.Incident, _ *eventsv1.IncidentChange) bus.Event {
		snap.Alerts = sample
		return &eventsv1.IncidentOpened{Meta: meta, Incident: snap}
	})
}

func (st *incState) emitUpdate(now time.Time, reason string, cause *eventsv1.EventMeta) {
	if reason == "" && len(st.change.GetReasons()) > 0 {
		reason = st.change.GetReasons()[0]
	}
	st.emit(now, cause, func(meta *eventsv1.EventMeta, snap *typesv1.Incident, ch *eventsv1.IncidentChange) bus.Event {
		return &eventsv1.IncidentUpdated{Meta: meta, Incident: snap, Reason: reason, Change: ch}
	})
}

// emit records an event of the incident as it stands, with the change since
// its previous event, and starts a new change.
func (st *incState) emit(now time.Time, cause *eventsv1.EventMeta,
	build func(*eventsv1.EventMeta, *typesv1.Incident, *eventsv1.IncidentChange) bus.Event,
) {
	inc := st.rec
	ch := st.change
	if !inc.LastEventAt.IsZero() {
		ch.Since = timestamppb.New(inc.LastEventAt)
	}
	st.events = append(st.events, build(eventMeta(inc, cause), snapshot(inc), ch))
	st.change = &eventsv1.IncidentChange{}
	st.urgent, st.cause = "", nil
	inc.LastEventAt = now
	inc.Pending, inc.UpdateDueAt = nil, nil
	st.dirty = true
}

func eventMeta(inc *Record, cause *eventsv1.EventMeta) *eventsv1.EventMeta {
	meta := bus.NewMeta(Producer, cause)
	meta.CorrelationId = inc.CorrelationID
	meta.App = inc.GetApp()
	return meta
}

// snapshot is the incident as events carry it: fields and counters, no
// alerts.
func snapshot(inc *Record) *typesv1.Incident {
	snap := proto.Clone(inc.Incident).(*typesv1.Incident)
	snap.Alerts = nil
	return snap
}

func sampleAlert(to *[]*typesv1.Alert, a *typesv1.Alert) {
	if len(*to) < maxEventAlerts {
		*to = append(*to, a)
	}
}

// dedupAlerts keeps the last record of each alert: a statement may change a
// row only once.
func dedupAlerts(as []*AlertRecord) []*AlertRecord {
	if len(as) < 2 {
		return as
	}
	last := make(map[AlertRef]int, len(as))
	for i, a := range as {
		last[AlertRef{IncidentID: a.IncidentID, Fingerprint: a.GetAlert().GetFingerprint()}] = i
	}
	out := make([]*AlertRecord, 0, len(last))
	for i, a := range as {
		if last[AlertRef{IncidentID: a.IncidentID, Fingerprint: a.GetAlert().GetFingerprint()}] == i {
			out = append(out, a)
		}
	}
	return out
}

// FlushDue announces the pending updates that are due, and settles the
// flapping incidents whose alerts stayed as they are (flap.go), up to
// limit each, and returns how many.
func (c *Correlator) FlushDue(ctx context.Context, tx pgx.Tx, limit int) (int, error) {
	now := c.now().UTC()
	settled, err := c.settleFlapping(ctx, tx, now, limit)
	if err != nil {
		return 0, err
	}
	recs, err := c.store.DueIncidents(ctx, tx, now, limit)
	if err != nil || len(recs) == 0 {
		return settled, err
	}
	var events []bus.Event
	for _, r := range recs {
		st := newState(r)
		st.emitUpdate(now, "", nil)
		events = append(events, st.events...)
	}
	if err := c.store.SaveIncidents(ctx, tx, nil, recs); err != nil {
		return 0, err
	}
	return settled + len(recs), outbox.Add(ctx, tx, events...)
}

// Acknowledge records that by is on the incident.
func (c *Correlator) Acknowledge(ctx context.Context, tx pgx.Tx, id, by string) (*typesv1.Incident, error) {
	inc, err := c.store.LockIncident(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	switch inc.GetStatus() {
	case typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED:
		return nil, fmt.Errorf("acknowledge %s: %w", id, ErrResolved)
	case typesv1.IncidentStatus_INCIDENT_STATUS_ACKNOWLEDGED:
		return snapshot(inc), nil
	}
	now := c.now().UTC()
	inc.Status = typesv1.IncidentStatus_INCIDENT_STATUS_ACKNOWLEDGED
	inc.AcknowledgedAt, inc.AcknowledgedBy, inc.UpdatedAt = timestamppb.New(now), by, timestamppb.New(now)
	return c.byHand(ctx, tx, inc, now, ReasonAcknowledged)
}

// SetPriority sets the incident's priority by hand: from then on alerts
// do not change it.
func (c *Correlator) SetPriority(ctx context.Context, tx pgx.Tx, id string, p typesv1.Priority, by string) (*typesv1.Incident, error) {
	inc, err := c.store.LockIncident(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if inc.GetStatus() == typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED {
		return nil, fmt.Errorf("set the priority of %s: %w", id, ErrResolved)
	}
	if inc.GetPriority() == p && inc.PriorityBy != "" {
		return snapshot(inc), nil
	}
	now := c.now().UTC()
	inc.Priority, inc.PriorityBy, inc.UpdatedAt = p, by, timestamppb.New(now)
	return c.byHand(ctx, tx, inc, now, ReasonPrioritySet)
}

// Resolve resolves the incident by hand, whatever its alerts say.
func (c *Correlator) Resolve(ctx context.Context, tx pgx.Tx, id, by string) (*typesv1.Incident, error) {
	inc, err := c.store.LockIncident(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if inc.GetStatus() == typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED {
		return snapshot(inc), nil
	}
	now := c.now().UTC()
	inc.Status = typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED
	inc.ResolvedAt, inc.ResolvedBy, inc.UpdatedAt = timestamppb.New(now), by, timestamppb.New(now)
	stopFlapping(inc)
	return c.byHand(ctx, tx, inc, now, "")
}

// byHand announces a person's change at once, folding in what was pending.
func (c *Correlator) byHand(ctx context.Context, tx pgx.Tx, inc *Record, now time.Time, reason string) (*typesv1.Incident, error) {
	st := newState(inc)
	if reason == "" {
		st.emit(now, nil, func(meta *eventsv1.EventMeta, snap *typesv1.Incident, ch *eventsv1.IncidentChange) bus.Event {
			return &eventsv1.IncidentResolved{Meta: meta, Incident: snap, Change: ch}
		})
	} else {
		st.change.Reasons = slices.Insert(slices.DeleteFunc(st.change.Reasons, func(r string) bool { return r == reason }), 0, reason)
		st.emitUpdate(now, reason, nil)
	}
	if err := c.store.SaveIncidents(ctx, tx, nil, []*Record{inc}); err != nil {
		return nil, err
	}
	if err := outbox.Add(ctx, tx, st.events...); err != nil {
		return nil, err
	}
	return snapshot(inc), nil
}

func sourceName(s typesv1.AlertSource) string {
	switch s {
	case typesv1.AlertSource_ALERT_SOURCE_ALERTMANAGER:
		return "alertmanager"
	case typesv1.AlertSource_ALERT_SOURCE_UNSPECIFIED:
		return "source"
	}
	return s.String()
}
